"""A torch-benchmark calibration carries over to llama.cpp, Ollama and vLLM; a busy machine is measured
with interleaved repeats and retries, and a meaningless fit is refused (issue 10, item 4)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from planner.calibrate import bench
from planner.calibrate.host_cpu import parse_cpuinfo, simd_isa
from planner.calibrate.store import Calibration, default_path, efficiency_for, save
from planner.kernels import robust
from planner.physics import cpu
from planner.physics.efficiency import Efficiency, _data, default_efficiency
from planner.physics.quant import Engine
from planner.spec import catalog
from planner.spec.schema import HardwareProfile

TORCH_EFF = Efficiency(weight_bandwidth={"float": 0.5}, kv_bandwidth=0.5, compute={"float": 0.2}, step_overhead_s=0.0,
                       prefill_overhead_s=0.1, source="test fit", origin="calibrated")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def measured_cpu(bandwidth_gb_s: float = 10.0) -> HardwareProfile:
    """What `planner calibrate --device cpu` stores for a 2-core AVX2 machine."""
    return HardwareProfile.model_validate({
        "id": "local", "name": "Test EPYC", "vendor": "cpu", "kind": "cpu",
        "memory": {"source": "measured", "capacity_gib": 16, "bandwidth_gb_per_s": bandwidth_gb_s},
        "compute": {"source": "measured", "fp32_tflops": 0.05},
        "cpu": {"source": "measured", "physical_cores": 2, "threads": 2, "simd": "avx2", "clock_ghz": 2.0,
                "measured_threads": 1, "measured_float_vector_ops_per_s": 2e9, "measured_int_vector_ops_per_s": 1e9},
    })


def torch_calibration(hardware: HardwareProfile | None = None, device_key: str = "local") -> Calibration:
    return Calibration(device_key=device_key, device_name="test", engine="torch", hardware=hardware,
                       efficiency=TORCH_EFF, fit_median_abs_pct_error=3.0, n_fit=6,
                       roofs={"read_bytes_per_s": 1e10}, source="planner calibrate: torch decode benchmark on cpu")


def test_plan_llama_cpp_on_a_torch_calibration_uses_the_measured_roofs(cli, tmp_path):
    path = save(torch_calibration(measured_cpu()), tmp_path / "cal.json")
    args = ["plan", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "llama.cpp", "--threads", "2", "--prompt", "0",
            "--gen", "1", "--calibration", str(path), "--json"]
    q4 = json.loads(cli(*args, "-q", "q4_0").out)["performance"]
    assert q4["efficiency_source"] == "calibrated-roofs" and q4["bound"] == "compute"
    # Q4_0 step by hand: SIMD work / the larger measured rate (fp32: 2e9 per thread x 2 threads) + 1 ms.
    ops = 357_826_560 * 13 / 32 + 151_936 * 896 * 9 / 32
    entry = _data()["measured_roofs"]["llama.cpp"]["cpu"]
    assert q4["step_ms_first"] == pytest.approx(1e3 * (entry["step_overhead_s"] + ops / 4e9), rel=1e-3)
    f16 = json.loads(cli(*args, "-q", "f16").out)["performance"]
    assert f16["bound"] == "memory"
    memory_s = f16["weight_read_bytes_per_step"] / (10e9 * entry["weight_bandwidth"]["float"])
    kv_s = f16["step_ms_first"] / 1e3 - entry["step_overhead_s"] - memory_s
    assert 0 <= kv_s < 1e-4  # an empty context reads (almost) no KV


def test_ollama_and_vllm_carry_the_roofs_too(tmp_path):
    path = str(save(torch_calibration(measured_cpu()), tmp_path / "cal.json"))
    assert efficiency_for("local", "ollama", path).origin == "calibrated-roofs"
    vllm = efficiency_for("local", "vllm", path)
    assert vllm.origin == "calibrated-roofs" and vllm.weight_bandwidth == TORCH_EFF.weight_bandwidth
    assert efficiency_for("local", "torch", path) == TORCH_EFF


def test_cached_torch_calibration_is_found_for_gpu_local_and_llama_cpp(cli, cache):
    save(torch_calibration(measured_cpu()), default_path("local", "torch"))
    out = cli("plan", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "llama.cpp", "-q", "q8_0", "--json")
    assert out.code == 0, out.err
    assert json.loads(out.out)["performance"]["efficiency_source"] == "calibrated-roofs"
    rec = cli("recommend", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "llama.cpp", "--json")
    assert rec.code in (0, 1), rec.err


def test_compare_and_check_take_the_local_device(cli, cache, tmp_path, monkeypatch):
    import planner.calibrate.detect as detect

    monkeypatch.setattr(detect, "detect_gpus", lambda nvml=None: detect.DetectionResult(message="none"))
    save(torch_calibration(measured_cpu()), default_path("local", "torch"))
    cmp = cli("compare", "-m", "qwen2.5-0.5b", "--gpus", "local,rtx4090", "-e", "llama.cpp", "--ctx", "2048", "--json")
    assert cmp.code in (0, 1), cmp.err
    assert {r["gpu"] for r in json.loads(cmp.out)["rows"]} == {"local", "rtx4090"}
    deploy = tmp_path / "deploy.yaml"
    deploy.write_text("deployments:\n  - name: laptop\n    model: qwen2.5-0.5b\n    gpu: local\n"
                      "    engine: llama.cpp\n    quant: q4_0\n    ctx: 2048\n    slo:\n      min_decode_tok_s: 1\n")
    check = cli("check", str(deploy))
    assert check.code in (0, 1), check.err


def test_a_llama_bench_calibration_stays_the_source_for_llama_cpp(cache):
    own = TORCH_EFF.model_copy(update={"source": "llama-bench fit"})
    save(torch_calibration(measured_cpu()), default_path("local", "torch"))
    save(Calibration(device_key="local", device_name="test", engine="llama.cpp", efficiency=own,
                     fit_median_abs_pct_error=2.0, n_fit=2, source="llama-bench"), default_path("local", "llama.cpp"))
    assert efficiency_for("local", "llama.cpp", None) == own
    assert efficiency_for("local", "ollama", None) == own


def test_a_catalog_gpu_scales_engine_defaults_by_its_torch_deviation(tmp_path):
    hw = catalog.load_hardware("rtx4090")
    path = str(save(torch_calibration(None, device_key="rtx4090"), tmp_path / "gpu.json"))
    eff = efficiency_for("rtx4090", "vllm", path)
    torch_default, vllm_default = default_efficiency(Engine.torch, hw), default_efficiency(Engine.vllm, hw)
    ratio = 0.5 / torch_default.weight_bandwidth["float"]
    assert eff.origin == "calibrated-roofs"
    assert eff.weight_bandwidth["float"] == pytest.approx(min(1.0, vllm_default.weight_bandwidth["float"] * ratio))
    assert eff.step_overhead_s == vllm_default.step_overhead_s


def test_an_engine_calibration_without_roofs_cannot_serve_another_engine(cli, tmp_path):
    path = save(Calibration(device_key="rtx4090", device_name="x", engine="vllm", efficiency=TORCH_EFF,
                            fit_median_abs_pct_error=1.0, n_fit=2, source="csv"), tmp_path / "vllm.json")
    result = cli("plan", "-m", "llama3-8b", "-g", "rtx4090", "-q", "q4_k_m", "--calibration", str(path))
    assert result.code == 2 and "measured no device roofs" in result.err


# Busy machines --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeRun:  # the fields robust.decode_passes reads from a DecodeRun
    n_layers: int
    batch: int
    context_tokens: int
    seconds_per_step: float
    prefill_seconds: float = 1.0


def test_decode_passes_retry_disagreeing_points_and_keep_the_fastest():
    timings = {(1, 1, 128): iter([0.010, 0.030, 0.020, 0.011]), (1, 2, 128): iter([0.020, 0.021])}
    calls = []

    def run_grid(only):
        calls.append(only)
        keys = sorted(only) if only is not None else sorted(timings)
        return [FakeRun(*k, next(timings[k])) for k in keys]

    noise = robust.Noise()
    runs = robust.decode_passes(run_grid, 2, noise)
    # 0.010 and 0.030 disagree, so does the retry's 0.020; the second retry's 0.011 agrees with 0.010.
    assert calls == [None, None, {(1, 1, 128)}, {(1, 1, 128)}]
    assert [r.seconds_per_step for r in runs] == [0.010, 0.020]
    assert noise.spreads["decode L1 B1 ctx128"] == pytest.approx(0.1)  # (0.011 - 0.010) / 0.010
    assert noise.noisy == [] and noise.retried == ["decode L1 B1 ctx128"] * 2


def test_a_point_whose_fastest_repeats_never_agree_stays_noisy():
    seconds = iter([1.0, 2.0, 3.0, 4.0])
    noise = robust.Noise()
    best = robust.interleaved({"x": lambda: next(seconds)}, lambda s: s, 2, noise)
    assert best == {"x": 1.0} and noise.noisy == ["x"] and noise.spreads["x"] == pytest.approx(1.0)


def test_interleaved_rounds_alternate_and_keep_the_fastest():
    order = []
    seconds = {"a": iter([1.0, 1.1, 1.05]), "b": iter([2.0, 4.0, 3.0, 2.6, 2.45])}

    def measure(name):
        def run():
            order.append(name)
            return next(seconds[name])
        return run

    noise = robust.Noise()
    best = robust.interleaved({"a": measure("a"), "b": measure("b")}, lambda s: s, 3, noise)
    assert order[:6] == ["a", "b", "a", "b", "a", "b"]
    assert best == {"a": 1.0, "b": 2.0}
    # b: 2.0 vs 3.0 disagree (50%), the retry's 2.6 too (30%); the second retry's 2.45 agrees within 25%.
    assert noise.retried == ["b", "b"] and noise.noisy == []
    assert noise.spreads["b"] == pytest.approx(0.225)


def test_a_busy_machine_or_a_meaningless_fit_is_refused():
    quiet = {"spreads": {"x": 0.05, "y": 0.1, "z": 0.3}, "noisy": ["z"], "load_before": 1.0}
    assert bench.rejection(quiet, 12.0) is None
    busy = {"spreads": {"x": 0.5, "y": 0.9, "z": 0.1}, "noisy": ["x", "y"], "load_before": 7.5}
    reason = bench.rejection(busy, 12.0)
    assert "too busy (load average 7.5)" in reason and "2 of 3" in reason and "worst: y, 90%" in reason
    assert "median error of 42%" in bench.rejection(quiet, 42.0)


def test_calibrate_exits_1_and_saves_nothing_when_refused(cli, cache, monkeypatch):
    def refuse(*args, **kwargs):
        raise bench.CalibrationRejected("the machine was too busy (load average 9.0): 5 of 8 measurements ...")

    monkeypatch.setattr(bench, "calibrate_with_benchmark", refuse)
    out = cache / "cal.json"
    result = cli("calibrate", "--device", "cpu", "--quick", "--out", str(out))
    assert result.code == 1 and not out.exists()
    assert result.err_lines[-1].startswith("error: not saved: the machine was too busy")


# The local CPU ---------------------------------------------------------------------------------------


def test_cpuinfo_gives_cores_threads_isa_and_clock():
    text = "".join(f"processor\t: {i}\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 1996.{i}\nphysical id\t: 0\n"
                   f"core id\t\t: {i // 2}\nflags\t\t: fpu sse2 avx avx2 fma\n\n" for i in range(4))
    block = parse_cpuinfo(text, "x86_64", 4)
    assert (block["physical_cores"], block["threads"], block["simd"]) == (2, 4, "avx2")
    assert block["clock_ghz"] == pytest.approx(1.9963) and block["model"] == "AMD EPYC"
    assert simd_isa({"avx512f", "amx_tile"}, "x86_64") == "amx" and simd_isa(set(), "arm64") == "neon"
    assert cpu.threads_used(HardwareProfile.model_validate({**measured_cpu().model_dump(), "id": "x"}).cpu,
                            None) == 2
