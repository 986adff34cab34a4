"""check learns traffic: a deployment with `traffic` is simulated (planner.serving) and gated on its p95
latencies and goodput, next to the single-request checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from planner.check.deploy import check_file
from planner.estimate import plan, resolve
from planner.physics.workload import Workload

BASE = {"model": "llama3.1-8b", "gpu": "h100-sxm", "engine": "vllm", "quant": "bf16", "ctx": 4096,
        "concurrency": 64}


def _write(tmp_path: Path, **deployment) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump({"deployments": [{"name": "d", **BASE, **deployment}]}), encoding="utf-8")
    return path


def _checks(result) -> dict:
    return {c.check: c for c in result.deployments[0].checks}


def test_light_traffic_meets_percentiles_close_to_the_single_request_plan(tmp_path):
    path = _write(tmp_path, slo={"prompt_tokens": 1000, "gen_tokens": 300, "ttft_p95_s": 2.0, "tpot_p95_s": 0.05},
                  traffic={"rps": 0.2, "duration_s": 300})
    result = check_file(path)
    checks = _checks(result)
    assert result.passed and {"ttft_p95_s", "tpot_p95_s"} <= set(checks)
    one = plan(resolve("llama3.1-8b", "h100-sxm", quant="bf16", engine="vllm",
                       workload=Workload(ctx=4096, prompt_tokens=1000, gen_tokens=300)))[0]
    # one request at a time almost always: the p95 TTFT is the single-request plan's, give or take an overlap
    assert one.performance.ttft_s * 0.99 <= checks["ttft_p95_s"].predicted <= one.performance.ttft_s * 2


def test_traffic_beyond_capacity_fails_on_goodput_and_latency(tmp_path):
    path = _write(tmp_path, engine="llama.cpp", quant="q4_k_m", gpu="rtx4090", concurrency=4,
                  slo={"prompt_tokens": 1000, "gen_tokens": 300, "ttft_p95_s": 2.0, "min_goodput_rps": 5.0},
                  traffic={"rps": 5.0, "duration_s": 120})
    result = check_file(path)
    checks = _checks(result)
    assert not result.passed
    assert not checks["goodput_rps"].passed and checks["goodput_rps"].predicted < 5.0
    assert not checks["ttft_p95_s"].passed


def test_without_traffic_no_percentile_is_gated(tmp_path):
    result = check_file(_write(tmp_path, slo={"ttft_p95_s": 0.001}))
    assert "ttft_p95_s" not in _checks(result) and result.passed


def test_a_trace_outside_the_repository_is_refused_before_it_is_read(cli, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    path = _write(repo, traffic={"trace": "../../etc/passwd.csv"})
    res = cli("check", str(path), "--root", str(repo))
    assert res.code == 2 and len(res.err_lines) == 1 and "outside the repository root" in res.err_lines[0]


def test_unknown_traffic_keys_and_two_load_modes_are_bad_input(cli, tmp_path):
    assert cli("check", str(_write(tmp_path, traffic={"rps": 1, "burst": 2}))).code == 2
    res = cli("check", str(_write(tmp_path, traffic={"rps": 1, "concurrency": 4})))
    assert res.code == 2 and len(res.err_lines) == 1
