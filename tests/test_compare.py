"""planner compare: per-device rows, JSON keys, sorting, exit codes, plot and markdown (issue 5)."""

from __future__ import annotations

import json

import pytest

from planner.estimate import plan, resolve
from planner.physics.workload import Workload

ROW_KEYS = {"gpu", "fits", "best_quant", "decode_tok_s", "ttft_s", "max_ctx", "max_concurrency",
            "num_gpus_needed", "price_per_tok_s"}


def test_json_rows_and_keys(cli):
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090,h100-sxm,t4", "--ctx", "8192", "--json")
    assert res.code == 0
    rows = json.loads(res.out)["rows"]
    assert [r["gpu"] for r in rows] == ["h100-sxm", "rtx4090", "t4"]  # --sort tok_s by default
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert r["fits"] and r["num_gpus_needed"] == 1 and r["max_ctx"] >= 8192
    by = {r["gpu"]: r for r in rows}
    assert by["rtx4090"]["price_per_tok_s"] == pytest.approx(1599 / by["rtx4090"]["decode_tok_s"])
    assert by["h100-sxm"]["price_per_tok_s"] is None  # no launch price in the profile


def test_row_matches_plan(cli):
    rows = json.loads(cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--ctx", "8192", "--json").out)
    r = rows["rows"][0]
    e = plan(resolve("llama3.1-8b", "rtx4090", quant=r["best_quant"], kv_dtype=r["kv_dtype"],
             workload=Workload(ctx=r["max_ctx"])))[0]
    assert e.memory.fits
    assert r["decode_tok_s"] == pytest.approx(e.performance.decode_tok_s, rel=1e-6)
    assert r["ttft_s"] == pytest.approx(e.performance.ttft_s, rel=1e-6)


def test_gpus_needed_for_a_big_model(cli):
    data = json.loads(cli("compare", "--model", "llama3.1-70b", "--gpus", "rtx4090", "--quant", "q8_0",
                          "--ctx", "8192", "--json").out)
    r = data["rows"][0]
    assert r["fits"] and r["num_gpus_needed"] == 4
    e = plan(resolve("llama3.1-70b", "rtx4090", quant="q8_0", num_gpus=3, workload=Workload(ctx=8192)))[0]
    assert not (e.memory.fits and e.memory.headroom_bytes >= 0.1 * e.memory.device_bytes)


def test_exit_1_when_nothing_fits(cli):
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--min-tok-s", "100000")
    assert res.code == 1 and "min_tok_s" in res.out


def test_sort_price_and_memory(cli):
    gpus = "rtx4090,rtx3090,rtx4060ti-16gb,h100-sxm"
    price = json.loads(cli("compare", "--model", "llama3.1-8b", "--gpus", gpus, "--sort", "price", "--json").out)
    values = [r["price_per_tok_s"] for r in price["rows"] if r["price_per_tok_s"] is not None]
    assert values == sorted(values) and price["rows"][-1]["price_per_tok_s"] is None
    mem = cli("compare", "--model", "llama3.1-8b", "--gpus", gpus, "--sort", "memory", "--json")
    assert json.loads(mem.out)["rows"][0]["gpu"] == "h100-sxm"
    bad = cli("compare", "--model", "llama3.1-8b", "--gpus", gpus, "--sort", "colour")
    assert bad.code == 2 and len(bad.err_lines) == 1


def test_all_devices_and_markdown(cli):
    res = cli("compare", "--model", "llama3.2-1b", "--all", "--markdown")
    assert res.code == 0
    assert res.out.startswith("### `llama3.2-1b` across devices") and "| rtx4090" in res.out
    assert "ddr5" not in res.out  # host-memory profiles are not devices to buy


def test_input_errors(cli):
    assert cli("compare", "--model", "llama3.1-8b").code == 2
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4099")
    assert res.code == 2 and res.err_lines == ["error: unknown GPU 'rtx4099'; did you mean: rtx4090, rtx4080?"] \
        or res.err_lines[0].startswith("error: unknown GPU 'rtx4099'")


def test_plot(cli, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "cmp.png"
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090,t4", "--plot", str(out))
    assert res.code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_plot_and_markdown(cli, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plan.png"
    res = cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--quant", "q4_k_m", "--plot", str(out))
    assert res.code == 0 and out.stat().st_size > 10_000
    md = cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--markdown")
    assert md.code == 0 and md.out.startswith("### `llama3.1-8b` on rtx4090") and "| q4_k_m" in md.out


def test_plot_without_matplotlib(cli, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--plot", str(tmp_path / "x.png"))
    assert res.code == 2 and res.err_lines == ["error: --plot needs matplotlib: pip install 'planner[plot]'"]


def test_quant_the_engine_cannot_run_is_an_input_error_like_plan(cli):
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--engine", "vllm", "--quant", "q4_k_m")
    assert res.code == 2 and res.out == "" and len(res.err_lines) == 1
    plan_res = cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--engine", "vllm", "--quant", "q4_k_m")
    assert res.err_lines == plan_res.err_lines
    assert res.err_lines[0].startswith("error: engine vllm does not run quant 'q4_k_m'; choose one of: ")


def test_each_device_is_compared_once_however_often_it_is_named(cli):
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090,rtx4090,t4,4090,RTX 4090", "--json")
    assert res.code == 0
    assert [r["gpu"] for r in json.loads(res.out)["rows"]] == ["rtx4090", "t4"]


def test_json_and_markdown_together_is_an_input_error(cli):
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--json", "--markdown")
    assert res.code == 2 and res.out == ""
    assert res.err_lines == ["error: choose one of --json and --markdown"]


def test_ctx_above_the_trained_context_is_an_input_error_naming_it(cli):
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--ctx", "200000")
    assert res.code == 2
    assert res.err_lines == ["error: --ctx 200,000 is above llama3.1-8b's trained context of 131,072 tokens"]


def test_min_quality_compares_every_device_at_a_comparable_format(cli):
    """Issue 11: without a floor the RTX 5090 ranked first with q2_k on one card; with the default floor
    (4-bit K-quant class) it takes a second card instead, like the RTX 4090."""
    args = ("compare", "--model", "llama3.1-70b", "--gpus", "rtx4090,rtx5090", "--json")
    rows = {r["gpu"]: r for r in json.loads(cli(*args).out)["rows"]}
    from planner.search.compare import QUALITY_RANK

    for r in rows.values():
        assert QUALITY_RANK[r["best_quant"]] >= QUALITY_RANK["q4_k_m"]
    assert rows["rtx5090"]["num_gpus_needed"] == 2
    anyq = {r["gpu"]: r for r in json.loads(cli(*args, "--min-quality", "any").out)["rows"]}
    assert QUALITY_RANK[anyq["rtx5090"]["best_quant"]] < QUALITY_RANK["q4_k_m"]
    assert anyq["rtx5090"]["num_gpus_needed"] == 1


def test_min_quality_is_said_in_the_header_and_bad_values_exit_2(cli):
    res = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--min-quality", "q8_0")
    assert res.code == 0 and "quality class q8_0 or better" in res.out.splitlines()[0]
    bad = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--min-quality", "q9_x")
    assert bad.code == 2 and len(bad.err_lines) == 1


def test_cost_and_energy_per_million_tokens_follow_price_and_power(cli):
    rows = json.loads(cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090,h100-sxm", "--json").out)["rows"]
    for r in rows:
        agg = r["decode_tok_s"]  # concurrency 1
        from planner.spec import catalog

        hw = catalog.load_hardware(r["gpu"])
        g = r["num_gpus_needed"]
        assert r["usd_per_million_tokens"] == pytest.approx(hw.cloud_price.usd_per_gpu_hour * g / (agg * 3600) * 1e6)
        assert r["energy_kwh_per_million_tokens"] == pytest.approx(hw.power.board_watts * g / 1000 / (agg * 3600) * 1e6)
    over = json.loads(cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090", "--usd-per-gpu-hour", "2",
                          "--sort", "cost", "--json").out)["rows"][0]
    assert over["usd_per_million_tokens"] == pytest.approx(2 / (over["decode_tok_s"] * 3600) * 1e6)
