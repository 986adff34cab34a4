"""Calibrations: files in the user cache, untrusted-input checks, `plan` picking them up, and
`planner calibrate` from llama-bench output, from a CSV and from the real torch benchmark on this CPU.

Issue 4, items 3-5. Torch is never mocked: the one benchmark test runs the real `--quick` suite on CPU
(about 20-25 s on 2 cores).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from planner.calibrate import store as cal_mod
from planner.spec import safeio
from planner.spec import catalog
from planner.calibrate.store import Calibration, default_path, load, save
from planner.physics.efficiency import Efficiency
from planner.errors import InputError, SpecFileError
from planner.estimate import ResolvedModel, deployment, get_engine
from planner.physics.performance import performance
from planner.physics.quant import get_quant
from planner.physics.workload import Workload

EFFICIENCY = Efficiency(weight_bandwidth={"float": 0.7, "kquant": 0.5}, kv_bandwidth=0.3,
                        compute={"float": 0.6, "kquant": 0.5}, step_overhead_s=1e-3, layer_overhead_s=1e-5,
                        prefill_overhead_s=5e-3, source="tests/test_calibration.py", origin="calibrated")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty user cache for the test (PLANNER_CACHE_DIR)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(path))
    return path


def make_calibration(device_key: str = "rtx4090", engine: str = "llama.cpp", **kw) -> Calibration:
    return Calibration(device_key=device_key, device_name="NVIDIA GeForce RTX 4090", engine=engine,
                       efficiency=EFFICIENCY, fit_median_abs_pct_error=1.5, n_fit=4, source="test", **kw)


def perf_json(result) -> dict:
    assert result.code in (0, 1), result.err
    return json.loads(result.out)["performance"]


PLAN_4090 = ("plan", "-m", "llama3-8b", "-g", "rtx4090", "-q", "q4_k_m", "--json")


# Files ------------------------------------------------------------------------------------------------


def test_save_writes_to_the_cache_and_loads_back(cache):
    cal = make_calibration(driver_version="550.54.14", dtype="float16", shapes=[{"layers": [1, 2]}])
    path = save(cal)
    assert path == cache / "calibrations" / "rtx4090--llama.cpp.json" == default_path("rtx4090", "llama.cpp")
    assert load(path) == cal
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_save_to_an_explicit_path_replaces_the_old_file(tmp_path):
    path = tmp_path / "sub" / "cal.json"
    save(make_calibration(), path)
    save(make_calibration(engine="vllm"), path)
    assert load(path).engine == "vllm"
    assert sorted(p.name for p in path.parent.iterdir()) == ["cal.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "cal.json"
    save(make_calibration(), path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safeio.os, "replace", broken_replace)  # the one safe writer
    with pytest.raises(InputError, match=f"cannot write {path}: No space left on device"):  # names the path
        save(make_calibration(engine="vllm"), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.json"]


def test_cache_dir_falls_back_to_xdg(monkeypatch, tmp_path):
    monkeypatch.delenv("PLANNER_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cal_mod.cache_dir() == tmp_path / "xdg" / "planner"


def write(tmp_path: Path, text: str | bytes, name: str = "cal.json") -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


def test_invalid_json_names_file_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "device_key": "rtx4090",\n  oops\n}')
    with pytest.raises(SpecFileError, match=rf"^{path}:3:3: invalid JSON: Expecting property name"):
        load(path)


def test_oversized_calibration_is_rejected_before_parsing(tmp_path):
    path = write(tmp_path, " " * (cal_mod.MAX_CALIBRATION_BYTES + 1))
    with pytest.raises(InputError, match=rf"^{path}: file is larger than {cal_mod.MAX_CALIBRATION_BYTES:,} bytes$"):
        load(path)


def test_a_device_as_calibration_file_is_refused_at_once():
    with pytest.raises(InputError, match=r"^/dev/zero: cannot read file: not a regular file$"):
        load("/dev/zero")


def test_deeply_nested_calibration_json_is_one_line_not_a_recursion_error(tmp_path):
    path = write(tmp_path, "[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match=r"nesting deeper than 64 levels"):
        load(path)


@pytest.mark.parametrize(("change", "field"), [
    ({"efficiency": {**EFFICIENCY.model_dump(), "kv_bandwidth": 1.5}}, "efficiency.kv_bandwidth"),
    ({"efficiency": {**EFFICIENCY.model_dump(), "kv_bandwith": 0.5}}, "efficiency.kv_bandwith"),  # typo: extra key
    ({"n_fit": "many"}, "n_fit"),
    ({"surprise": 1}, "surprise"),
])
def test_schema_invalid_calibration_is_one_line_naming_the_field(tmp_path, change, field):
    data = {**make_calibration().model_dump(mode="json"), **change}
    path = write(tmp_path, json.dumps(data))
    with pytest.raises(InputError) as info:
        load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: ") and "\n" not in message


def test_non_utf8_and_missing_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"not UTF-8"):
        load(write(tmp_path, b"\xff\xfe{}"))
    with pytest.raises(InputError, match=r"missing\.json: cannot read file: No such file or directory$"):
        load(tmp_path / "missing.json")


def test_plan_with_a_bad_calibration_file_exits_2(cli, tmp_path):
    path = write(tmp_path, "[1, 2")
    result = cli(*PLAN_4090, "--calibration", str(path))
    assert result.code == 2 and result.out == ""
    assert len(result.err_lines) == 1 and result.err_lines[0].startswith(f"error: {path}:1:")


# plan uses calibrations ----------------------------------------------------------------------------


def test_plan_with_calibration_file_uses_its_efficiencies(cli, cache, tmp_path):
    path = save(make_calibration(), tmp_path / "mine.json")
    p = perf_json(cli(*PLAN_4090, "--calibration", str(path)))
    assert p["efficiency_source"] == "calibrated"
    d = deployment(ResolvedModel(spec=catalog.load_model("llama3-8b")), catalog.load_hardware("rtx4090"),
                   get_engine("llama.cpp"), get_quant("q4_k_m"), "f16", Workload(),
                   host=catalog.load_hardware("ddr5-6000-2ch"))
    assert p["decode_tok_s"] == pytest.approx(performance(d, EFFICIENCY).decode_tok_s, rel=1e-12)
    assert p["decode_tok_s"] != pytest.approx(performance(d).decode_tok_s, rel=1e-3)
    assert perf_json(cli(*PLAN_4090))["efficiency_source"] == "default"  # nothing cached


def test_cached_calibration_is_picked_up_for_its_device_and_engine(cli, cache):
    save(make_calibration())
    assert perf_json(cli(*PLAN_4090))["efficiency_source"] == "calibrated"
    # The device may be named by an alias: the cache is keyed by the catalog id.
    by_alias = ("plan", "-m", "llama3-8b", "-g", "NVIDIA GeForce RTX 4090", "-q", "q4_k_m", "--json")
    assert perf_json(cli(*by_alias))["efficiency_source"] == "calibrated"
    # Another engine or another device keeps the defaults.
    other_engine = ("plan", "-m", "llama3-8b", "-g", "rtx4090", "-e", "vllm", "-q", "bf16", "--json")
    assert perf_json(cli(*other_engine))["efficiency_source"] == "default"
    other_gpu = ("plan", "-m", "llama3-8b", "-g", "rtx3090", "-q", "q4_k_m", "--json")
    assert perf_json(cli(*other_gpu))["efficiency_source"] == "default"


def test_engine_mismatch_without_device_roofs_exits_2(cli, tmp_path):
    path = save(make_calibration(engine="vllm"), tmp_path / "vllm.json")
    result = cli(*PLAN_4090, "--calibration", str(path))
    assert result.code == 2 and result.out == ""
    assert result.err_lines == [f"error: calibration {path} was fitted for engine vllm and measured no device roofs, "
                                "so it says nothing about llama.cpp; run `planner calibrate` for the device roofs"]


def local_cpu_profile() -> dict:
    return {"id": "local", "name": "Test CPU", "vendor": "cpu", "kind": "cpu",
            "memory": {"source": "test", "capacity_gib": 64, "bandwidth_gb_per_s": 40},
            "compute": {"source": "test", "fp32_tflops": 0.5}}


def test_gpu_local_uses_the_cached_local_calibration(cli, cache):
    from planner.spec.schema import HardwareProfile

    save(make_calibration(device_key="local", engine="torch",
                          hardware=HardwareProfile.model_validate(local_cpu_profile())))
    result = cli("plan", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "torch", "-q", "f32", "--json")
    data = json.loads(result.out)
    assert result.code == 0, result.err
    assert data["gpu"] == "local" and data["performance"]["efficiency_source"] == "calibrated"


def test_gpu_local_without_a_calibration_says_what_to_do(cli, cache, monkeypatch):
    import planner.calibrate.detect

    monkeypatch.setattr(planner.calibrate.detect, "detect_gpus", lambda nvml=None: planner.calibrate.detect.DetectionResult(message="x"))
    result = cli("plan", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "torch", "-q", "f32")
    assert result.code == 2
    assert result.err_lines == ["error: no local calibration found; run `planner calibrate` first (or name a --gpu)"]


def test_gpu_local_with_a_calibration_file_outside_the_cache(cli, cache, tmp_path):
    from planner.spec.schema import HardwareProfile

    path = save(make_calibration(device_key="local", engine="torch",
                                 hardware=HardwareProfile.model_validate(local_cpu_profile())), tmp_path / "cpu.json")
    result = cli("plan", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "torch", "-q", "f32", "--calibration", str(path),
                 "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["performance"]["efficiency_source"] == "calibrated"


# planner calibrate --from-llama-bench ---------------------------------------------------------------

# The example output in ggml-org/llama.cpp tools/llama-bench/README.md ("Output formats" → JSON and JSONL,
# build 8cf427ff, 2025-04-24): Qwen2.5-7B-Instruct-Q4_K_M on an NVIDIA GeForce RTX 4080, pp512 and tg128.
README_COMMON = {
    "build_commit": "8cf427ff", "build_number": 5163, "cpu_info": "AMD Ryzen 7 7800X3D 8-Core Processor",
    "gpu_info": "NVIDIA GeForce RTX 4080", "backends": "CUDA",
    "model_filename": "models/Qwen2.5-7B-Instruct-Q4_K_M.gguf", "model_type": "qwen2 7B Q4_K - Medium",
    "model_size": 4677120000, "model_n_params": 7615616512, "n_batch": 2048, "n_ubatch": 512, "n_threads": 8,
    "cpu_mask": "0x0", "cpu_strict": False, "poll": 50, "type_k": "f16", "type_v": "f16", "n_gpu_layers": 99,
    "split_mode": "layer", "main_gpu": 0, "no_kv_offload": False, "flash_attn": False, "tensor_split": "0.00",
    "use_mmap": True, "embeddings": False,
}
README_JSON = [
    {**README_COMMON, "n_prompt": 512, "n_gen": 0, "n_depth": 0, "test_time": "2025-04-24T11:58:50Z",
     "avg_ns": 72135640, "stddev_ns": 1453752, "avg_ts": 7100.002165, "stddev_ts": 140.341520,
     "samples_ns": [74601900, 71632900, 71745200, 71952700, 70745500],
     "samples_ts": [6863.1, 7147.55, 7136.37, 7115.79, 7237.21]},
    {**README_COMMON, "n_prompt": 0, "n_gen": 128, "n_depth": 0, "test_time": "2025-04-24T11:58:51Z",
     "avg_ns": 1076767880, "stddev_ns": 9449585, "avg_ts": 118.881588, "stddev_ts": 1.041811,
     "samples_ns": [1075361300, 1065089400, 1071761200, 1081934900, 1089692600],
     "samples_ts": [119.03, 120.178, 119.43, 118.307, 117.464]},
]
README_JSONL = [
    {**README_COMMON, "n_prompt": 512, "n_gen": 0, "n_depth": 0, "test_time": "2025-04-24T11:59:33Z",
     "avg_ns": 70497220, "stddev_ns": 883196, "avg_ts": 7263.609157, "stddev_ts": 90.940578,
     "samples_ns": [71551000, 71222800, 70364100, 69439100, 69909100],
     "samples_ts": [7155.74, 7188.71, 7276.44, 7373.37, 7323.8]},
    {**README_COMMON, "n_prompt": 0, "n_gen": 128, "n_depth": 0, "test_time": "2025-04-24T11:59:33Z",
     "avg_ns": 1068078400, "stddev_ns": 6279455, "avg_ts": 119.844681, "stddev_ts": 0.699739,
     "samples_ns": [1066331700, 1064864900, 1079042600, 1063328400, 1066824400],
     "samples_ts": [120.038, 120.203, 118.624, 120.377, 119.982]},
]


def calibrate_and_check(cli, tmp_path, bench: Path, pp512: float, tg128: float):
    out = tmp_path / "qwen.json"
    result = cli("calibrate", "--from-llama-bench", str(bench), "--out", str(out), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["device_key"], data["engine"], data["path"]) == ("rtx4080", "llama.cpp", str(out))
    cal = load(out)
    assert {(m["model"], m["quant"]) for m in cal.measurements} == {("qwen2.5-7b", "q4_k_m")}
    assert cal.efficiency.origin == "calibrated"
    # Two points, enough free parameters: the calibrated model reproduces both measurements.
    base = ("plan", "-m", "qwen2.5-7b", "-g", "rtx4080", "-q", "q4_k_m", "--calibration", str(out), "--json")
    tg = perf_json(cli(*base, "--prompt", "0", "--gen", "128", "--ctx", "128"))
    pp = perf_json(cli(*base, "--prompt", "512", "--gen", "1", "--ctx", "513"))
    assert tg["efficiency_source"] == pp["efficiency_source"] == "calibrated"
    assert tg["decode_tok_s"] == pytest.approx(tg128, rel=0.02)
    assert pp["prefill_tok_s"] == pytest.approx(pp512, rel=0.02)


def test_calibrate_from_llama_bench_json(cli, cache, tmp_path):
    bench = write(tmp_path, json.dumps(README_JSON, indent=2), "bench.json")
    calibrate_and_check(cli, tmp_path, bench, pp512=7100.002165, tg128=118.881588)


def test_calibrate_from_llama_bench_jsonl(cli, cache, tmp_path):
    bench = write(tmp_path, "\n".join(json.dumps(r) for r in README_JSONL) + "\n", "bench.jsonl")
    calibrate_and_check(cli, tmp_path, bench, pp512=7263.609157, tg128=119.844681)


def test_calibrate_from_llama_bench_writes_to_the_cache_by_default(cli, cache, tmp_path):
    bench = write(tmp_path, json.dumps(README_JSON), "bench.json")
    result = cli("calibrate", "--from-llama-bench", str(bench))
    assert result.code == 0, result.err
    assert str(default_path("rtx4080", "llama.cpp")) in result.out
    p = perf_json(cli("plan", "-m", "qwen2.5-7b", "-g", "rtx4080", "-q", "q4_k_m", "--json"))
    assert p["efficiency_source"] == "calibrated"


@pytest.mark.parametrize(("text", "message"), [
    ("[{\"n_prompt\": 512, \"n_gen\": 0}]", "avg_ts: Field required"),
    ("{\"n_prompt\": 512, \"n_gen\": 0, \"avg_ts\": -1}\n", ":1: avg_ts: Input should be greater than 0"),
    ("{\"n_prompt\": 0, \"n_gen\": 128, \"avg_ts\": 1}\nnot json\n", "invalid JSON: Expecting value"),
    ("[]", "no llama-bench results in the file"),
])
def test_bad_llama_bench_file_exits_2(cli, cache, tmp_path, text, message):
    bench = write(tmp_path, text, "bad.json")
    result = cli("calibrate", "--from-llama-bench", str(bench))
    assert result.code == 2
    assert len(result.err_lines) == 1 and message in result.err and str(bench) in result.err


def test_bad_jsonl_line_is_reported_at_its_file_line(cli, cache, tmp_path):
    bench = write(tmp_path, json.dumps(README_JSONL[0]) + "\nnot json\n", "bad.jsonl")
    result = cli("calibrate", "--from-llama-bench", str(bench))
    assert result.code == 2
    assert result.err_lines[0].startswith(f"error: {bench}:2:1: invalid JSON")


def test_unknown_llama_bench_model_asks_for_model(cli, cache, tmp_path):
    rows = [{**r, "model_n_params": 123_456_789} for r in README_JSON]
    bench = write(tmp_path, json.dumps(rows), "bench.json")
    result = cli("calibrate", "--from-llama-bench", str(bench))
    assert result.code == 2
    assert result.err_lines == [("error: no catalog model has 123,456,789 parameters (qwen2 7B Q4_K - Medium); "
                                 "name it with --model")]


# planner calibrate --from-csv ---------------------------------------------------------------------

CSV_HEADER = "engine,model,quant,gpu,num_gpus,batch,prompt_tokens,gen_tokens,decode_tok_s,prefill_tok_s,source\n"
XD = "https://github.com/XiongjieDai/GPU-Benchmarks-on-LLM-Inference"
# XiongjieDai (May 2024), RTX 4090, llama.cpp: Llama-3-8B Q4_K_M and F16 tg512 / pp512 (docs/physics.md §4.2, §5).
CSV_4090 = (CSV_HEADER
            + f"llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,130.6,,{XD}\n"
            + f"llama.cpp,llama3-8b,f16,rtx4090,1,1,0,512,54.8,,{XD}\n"
            + f"llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,512,0,,7139,{XD}\n"
            + f"llama.cpp,llama3-8b,f16,rtx4090,1,1,512,0,,9382,{XD}\n")


def test_calibrate_from_csv(cli, cache, tmp_path):
    path = write(tmp_path, CSV_4090, "m.csv")
    result = cli("calibrate", "--from-csv", str(path), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["device_key"], data["engine"]) == ("rtx4090", "llama.cpp")
    assert data["n_fit"] + data["n_heldout"] == 4
    assert Path(data["path"]) == default_path("rtx4090", "llama.cpp")
    assert perf_json(cli(*PLAN_4090))["efficiency_source"] == "calibrated"


def test_calibrate_from_csv_with_two_devices_cannot_write_one_out_file(cli, cache, tmp_path):
    path = write(tmp_path, CSV_4090 + f"llama.cpp,llama3-8b,q4_k_m,rtx3090,1,1,0,512,111.7,,{XD}\n", "m.csv")
    result = cli("calibrate", "--from-csv", str(path), "--out", str(tmp_path / "one.json"))
    assert result.code == 2
    assert result.err_lines == ["error: --out names one file but the measurements cover 2 device/engine pairs"]
    assert not (tmp_path / "one.json").exists()


def test_calibrate_with_both_sources_exits_2(cli, cache, tmp_path):
    result = cli("calibrate", "--from-csv", "a.csv", "--from-llama-bench", "b.json")
    assert result.code == 2
    assert result.err_lines == ["error: give --from-llama-bench or --from-csv, not both"]


def test_error_band_brackets_the_held_out_measurements(cli, cache, tmp_path):
    # Rows 1-2 are fitted; row 3 (every third row is held out) repeats row 1's configuration at half the speed.
    path = write(tmp_path, CSV_HEADER
                 + f"llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,130.6,,{XD}\n"
                 + f"llama.cpp,llama3-8b,f16,rtx4090,1,1,0,512,54.8,,{XD}\n"
                 + f"llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,65.3,,{XD}\n", "m.csv")
    out = tmp_path / "band.json"
    assert cli("calibrate", "--from-csv", str(path), "--out", str(out)).code == 0
    p = perf_json(cli("plan", "-m", "llama3-8b", "-g", "rtx4090", "-q", "q4_k_m", "--prompt", "0", "--gen", "512",
                      "--ctx", "512", "--calibration", str(out), "--json"))
    assert p["decode_tok_s"] == pytest.approx(130.6, rel=0.01)  # the fitted row
    # The held-out run of this very configuration measured 65.3 tok/s: the band must reach down to it.
    assert p["decode_tok_s_low"] <= 65.3 * 1.01


# planner calibrate on this CPU, for real ------------------------------------------------------------


def test_calibrate_cpu_quick_runs_the_torch_benchmark_and_plan_uses_it(cli, cache):
    out = default_path("local", "torch")  # where `plan --gpu local` looks for the local device
    result = cli("calibrate", "--device", "cpu", "--quick", "--json", "--out", str(out))
    if result.code == 1:  # a machine too busy for a meaningful fit: refused with the reason, nothing saved
        assert result.err_lines[-1].startswith("error: not saved: ") and not out.exists()
        pytest.skip(result.err_lines[-1])
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["path"] == str(out) and out.is_file()
    assert (data["device_key"], data["engine"], data["dtype"]) == ("local", "torch", "float32")
    assert data["torch_version"].startswith("2.")
    for key in ("heldout_median_abs_pct_error", "fit_median_abs_pct_error"):
        assert isinstance(data[key], float) and data[key] >= 0, key
    assert data["n_fit"] > 0 and data["n_heldout"] > 0
    cal = load(out)
    assert cal.hardware is not None and cal.hardware.kind.value == "cpu" and cal.hardware.bandwidth_bytes_per_s > 0
    assert cal.hardware.cpu is not None and cal.hardware.cpu.measured_int_vector_ops_per_s > 0
    assert {"read_bytes_per_s", "int_vector_ops_per_s_per_thread"} <= set(cal.roofs) and cal.noise["spreads"]
    assert cal.measurements and all(m["device"] == "cpu" for m in cal.measurements)
    eff = cal.efficiency
    assert all(0 < v <= 1 for v in [*eff.weight_bandwidth.values(), *eff.compute.values(), eff.kv_bandwidth])
    plan = cli("plan", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "torch", "-q", "f32", "--json")
    assert plan.code == 0, plan.err
    planned = json.loads(plan.out)
    assert planned["gpu"] == "local"
    assert planned["performance"]["efficiency_source"] == "calibrated"
    assert planned["performance"]["decode_tok_s"] > 0
    carried = cli("plan", "-m", "qwen2.5-0.5b", "-g", "local", "-e", "llama.cpp", "-q", "q4_0", "--json")
    assert carried.code == 0, carried.err
    assert json.loads(carried.out)["performance"]["efficiency_source"] == "calibrated-roofs"
    assert os.listdir(out.parent) == [out.name]


def test_a_calibration_from_one_measurement_is_refused(cli, cache, tmp_path):
    path = write(tmp_path, CSV_HEADER + f"llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,100000,,{XD}\n", "one.csv")
    result = cli("calibrate", "--from-csv", str(path))
    assert result.code == 2
    assert len(result.err_lines) == 1 and "calibrating needs at least 2" in result.err_lines[0]


def test_measurements_the_model_cannot_explain_are_refused_not_saved(cli, cache, tmp_path):
    rows = "".join(f"llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,{n},100000,,{XD}\n" for n in (128, 256, 512))
    result = cli("calibrate", "--from-csv", str(write(tmp_path, CSV_HEADER + rows, "absurd.csv")))
    assert result.code == 2
    assert "do not fit the latency model" in result.err_lines[0]
    assert not default_path("rtx4090", "llama.cpp").exists()


def test_an_empty_measurements_file_is_an_input_error(cli, cache, tmp_path):
    result = cli("calibrate", "--from-csv", str(write(tmp_path, CSV_HEADER, "empty.csv")))
    assert result.code == 2
    assert result.err_lines[0].endswith("empty.csv: no measurements in the file")
