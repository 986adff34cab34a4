"""planner fleet: the JSON contract, exit codes, fixed layouts, rate sweep and plot (issue 11)."""

from __future__ import annotations

import json

import pytest

from planner.serving.fleet import ROW_KEYS

BASE = ("fleet", "--model", "llama3.1-8b", "--prompt", "1000", "--gen", "300", "--duration", "60")


def test_done_when_command_prints_layout_gpus_goodput_cost_and_exits_0(cli):
    res = cli(*BASE, "--gpus", "h100-sxm,l40s,rtx4090", "--rps", "20", "--ttft-p95", "2", "--tpot-p95", "0.05")
    assert res.code == 0
    assert "h100-sxm" in res.out and "USD/Mtok" in res.out and "vllm serve" in res.out


def test_json_rows_carry_exactly_the_contract_keys(cli):
    res = cli(*BASE, "--gpus", "h100-sxm,rtx4090", "--rps", "10", "--ttft-p95", "2", "--tpot-p95", "0.05", "--json")
    assert res.code == 0
    data = json.loads(res.out)
    assert set(data) >= {"rows", "workload"}
    for r in data["rows"]:
        assert tuple(r) == ROW_KEYS
        assert r["meets_slo"] is True
        assert r["gpus"] == r["tp"] * r["pp"] * r["replicas"]
        assert r["ttft_p95_s"] <= 2 and r["tpot_p95_s"] <= 0.05
        assert r["ttft_p50_s"] <= r["ttft_p95_s"] <= r["ttft_p99_s"]
        assert r["usd_per_million_tokens"] == pytest.approx(r["usd_per_hour"] / (r["throughput_tok_s"] * 3600) * 1e6)
        assert r["commands"] and r["manifests"][0]["kind"] == "Deployment"
    w = data["workload"]
    assert w["rps"] == 10 and w["prompt"] == "1000" and w["slo"]["tpot_p95_s"] == 0.05


def test_price_override_scales_cost(cli):
    args = (*BASE, "--gpus", "h100-sxm", "--rps", "5", "--tpot-p95", "0.05", "--json")
    a = json.loads(cli(*args).out)["rows"][0]
    b = json.loads(cli(*args, "--usd-per-gpu-hour", "1.0").out)["rows"][0]
    assert b["usd_per_hour"] == pytest.approx(1.0 * b["gpus"])
    assert a["usd_per_hour"] == pytest.approx(3.78 * a["gpus"])  # the catalog's cited price


def test_impossible_slo_keeps_the_closest_row_and_exits_1(cli):
    res = cli(*BASE, "--gpus", "rtx4090", "--rps", "5", "--tpot-p95", "0.0001", "--json")
    assert res.code == 1
    row = json.loads(res.out)["rows"][0]
    assert row["gpu"] == "rtx4090" and row["meets_slo"] is False


def test_fixed_layout_is_simulated_as_given(cli):
    res = cli(*BASE, "--gpus", "h100-sxm", "--rps", "8", "--tp", "2", "--replicas", "3", "--quant", "fp8",
              "--tpot-p95", "0.05", "--json")
    row = json.loads(res.out)["rows"][0]
    assert (row["quant"], row["tp"], row["pp"], row["replicas"], row["gpus"]) == ("fp8", 2, 1, 3, 6)


def test_closed_loop_and_llama_server(cli):
    res = cli(*BASE, "--gpus", "rtx4090", "--engine", "llama.cpp", "--concurrency", "4", "--tpot-p95", "0.1",
              "--json")
    assert res.code in (0, 1)
    row = json.loads(res.out)["rows"][0]
    assert row["quant"] is not None and any("llama-server" in c for c in row["commands"])


def test_sweep_and_plot(cli, tmp_path):
    png = tmp_path / "sweep.png"
    res = cli(*BASE, "--gpus", "h100-sxm", "--rps", "6", "--tpot-p95", "0.05", "--sweep-rps", "--plot", str(png))
    assert res.code == 0
    assert "Rate sweep on h100-sxm" in res.out and "knee" in res.out
    assert png.stat().st_size > 1000


@pytest.mark.parametrize("args", [
    ("--gpus", "h100-sxm", "--rps", "5", "--prompt", "lognormal:mean=5"),
    ("--gpus", "h100-sxm", "--rps", "5", "--concurrency", "3"),
    ("--gpus", "h100-sxm"),
    ("--gpus", "nope-gpu", "--rps", "5"),
    ("--gpus", "h100-sxm", "--rps", "-1"),
    ("--gpus", "h100-sxm", "--rps", "5", "--engine", "torch"),
    ("--gpus", "h100-sxm", "--rps", "5", "--lb", "random"),
    ("--gpus", "h100-sxm", "--rps", "5", "--trace", "/nonexistent.csv"),
    ("--gpus", "h100-sxm", "--concurrency", "2", "--sweep-rps"),
    ("--gpus", "h100-sxm", "--rps", "5", "--burstiness", "0"),
    ("--gpus", "h100-sxm", "--rps", "1e9"),
])
def test_bad_input_is_one_line_and_exit_2(cli, args):
    res = cli("fleet", "--model", "llama3.1-8b", "--duration", "30", *args)
    assert res.code == 2
    assert len(res.err_lines) == 1 and res.err_lines[0].startswith("error:")


def test_fleet_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from planner.cli.app import run, app; "
            "run(app, ['fleet','--model','llama3.1-8b','--gpus','l4','--rps','1','--duration','30','--json']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_an_azure_trace_is_replayed_and_rates_are_per_second_of_the_trace(cli, tmp_path):
    trace = tmp_path / "azure.csv"
    rows = [f"2023-11-16 18:{15 + i // 60:02d}:{i % 60:02d}.5000000,{300 + 7 * i},{20 + i % 50}" for i in range(0, 120, 2)]
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n")
    res = cli("fleet", "--model", "llama3.1-8b", "--gpus", "h100-sxm", "--trace", str(trace), "--tpot-p95", "0.05",
              "--json")
    assert res.code == 0
    data = json.loads(res.out)
    row = data["rows"][0]
    assert data["workload"]["prompt"] == "trace"
    assert row["goodput_rps"] == pytest.approx(0.5, rel=0.02)  # 60 requests, one every 2 s
