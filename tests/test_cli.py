"""The command line contract: exit codes 0/1/2, one-line errors, JSON that reloads, no torch import."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from planner.spec import catalog
from planner.estimate import Estimate
from planner.physics.quant import Engine, quants_for

PLAN_8B = ("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--ctx", "4096")
MEMORY_KEYS = {"weights_bytes", "device_weights_bytes", "kv_cache_bytes", "overhead_bytes", "total_bytes",
               "device_bytes", "fits", "headroom_bytes"}
INT_MEMORY_KEYS = MEMORY_KEYS - {"fits"}


def test_plan_lists_a_row_for_every_llama_cpp_quant(cli):
    result = cli(*PLAN_8B)
    assert result.code == 0, result.err
    assert result.err == ""
    expected = [q.id for q in quants_for(Engine.llama_cpp, catalog.load_model("llama3.1-8b"))]
    assert "q4_k_m" in expected and "mxfp4" not in expected  # mxfp4 is for MoE models only
    rows = [line.split()[0] for line in result.out.splitlines() if re.match(r"^[a-z0-9_-]+\s+\d", line)]
    assert rows == expected


def test_plan_with_quant_json_is_one_object_with_the_documented_keys(cli):
    result = cli(*PLAN_8B, "--quant", "q4_k_m", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert isinstance(data, dict)
    assert {"model", "gpu", "engine", "quant", "kv_dtype", "ctx", "batch", "memory", "warnings"} <= set(data)
    assert (data["model"], data["gpu"], data["engine"], data["quant"], data["kv_dtype"]) == (
        "llama3.1-8b", "rtx4090", "llama.cpp", "q4_k_m", "f16")
    assert (data["ctx"], data["batch"]) == (4096, 1)
    assert MEMORY_KEYS <= set(data["memory"])
    for key in INT_MEMORY_KEYS:
        assert type(data["memory"][key]) is int, key
    assert data["memory"]["fits"] is True
    assert data["memory"]["kv_cache_bytes"] == 512 * 2**20
    assert isinstance(data["warnings"], list)


def test_plan_json_reloads_into_the_estimate_model(cli):
    result = cli(*PLAN_8B, "--quant", "q4_k_m", "--json")
    estimate = Estimate.model_validate(json.loads(result.out))
    assert estimate.memory.total_bytes == (
        estimate.memory.device_weights_bytes + estimate.memory.kv_cache_bytes + estimate.memory.overhead_bytes
    )


def test_plan_without_quant_json_is_a_list_of_estimates(cli):
    result = cli(*PLAN_8B, "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert isinstance(data, list) and len(data) > 1
    estimates = [Estimate.model_validate(item) for item in data]
    assert [e.quant for e in estimates] == [q.id for q in quants_for(Engine.llama_cpp, catalog.load_model("llama3.1-8b"))]


def test_plan_exits_1_when_nothing_fits(cli):
    result = cli("plan", "--model", "llama3.1-405b", "--gpu", "rtx3060-12gb")
    assert result.code == 1
    assert result.err == ""
    assert "NO" in result.out


def test_plan_json_exits_1_when_it_does_not_fit(cli):
    result = cli("plan", "-m", "llama3.1-405b", "-g", "rtx3060-12gb", "-q", "q4_k_m", "--json")
    assert result.code == 1
    assert json.loads(result.out)["memory"]["fits"] is False


@pytest.mark.parametrize(
    "args, pattern",
    [
        (("-m", "llama3.1-8c", "-g", "rtx4090"), r"^error: unknown model 'llama3\.1-8c'; did you mean: llama3\.1-8b"),
        (("-m", "llama3.1-8b", "-g", "rtx4009"), r"^error: unknown GPU 'rtx4009'; did you mean: rtx4090"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "-q", "q4_k_x"), r"^error: unknown quant 'q4_k_x'; did you mean: q4_k_m"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "--ctx", "0"), r"^error: .*--ctx"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "--batch", "0"), r"^error: .*--batch"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "--ctx", "lots"), r"^error: .*--ctx"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "-e", "vllm", "--kv-dtype", "q8_0"),
         r"^error: engine vllm does not support kv dtype 'q8_0'"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "-e", "tensorrt"), r"^error: unknown engine 'tensorrt'"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "-e", "vllm", "-q", "q4_k_m"),
         r"^error: engine vllm does not run quant 'q4_k_m'"),
        (("-m", "llama3.1-8b", "-g", "rtx4090", "-q", "mxfp4"), r"^error: quant 'mxfp4' applies to mixture-of-experts"),
        (("-m", "llama3.1-8b",), r"^error: .*--gpu"),
    ],
    ids=["unknown-model", "unknown-gpu", "unknown-quant", "ctx-0", "batch-0", "ctx-not-a-number",
         "vllm-kv-q8_0", "unknown-engine", "vllm-gguf-quant", "mxfp4-dense", "missing-gpu"],
)
def test_bad_input_exits_2_with_one_stderr_line(cli, args, pattern):
    result = cli("plan", *args)
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert re.match(pattern, result.err_lines[0]), result.err
    assert "Traceback" not in result.err + result.out
    assert result.out == ""


def test_malformed_model_yaml_exits_2_naming_file_line_and_column(cli, write_yaml):
    path = write_yaml("broken.yaml", "id: x\narchitecture: [1, 2\nname: y\n")
    result = cli("plan", "--model", path, "--gpu", "rtx4090")
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert re.match(rf"^error: {re.escape(str(path))}:\d+:\d+: invalid YAML", result.err_lines[0]), result.err
    assert "Traceback" not in result.err


def test_model_yaml_with_schema_error_exits_2_naming_the_field(cli, model_data, write_yaml):
    data = model_data()
    data["architecture"]["n_layer"] = 2
    path = write_yaml("typo.yaml", data)
    result = cli("plan", "--model", path, "--gpu", "rtx4090")
    assert result.code == 2
    line = path.read_text().splitlines().index("  n_layer: 2") + 1
    assert result.err_lines == [f"error: {path}:{line}: architecture.n_layer: unknown key"]


def test_ctx_above_the_trained_context_warns_and_exits_0(cli):
    result = cli("plan", "-m", "llama2-7b", "-g", "rtx4090", "-q", "q4_k_m", "--ctx", "8192")
    assert result.code == 0, result.err
    assert "warning: ctx 8192 exceeds llama2-7b's trained context of 4096 tokens" in result.out
    data = json.loads(cli("plan", "-m", "llama2-7b", "-g", "rtx4090", "-q", "q4_k_m", "--ctx", "8192", "--json").out)
    assert any("trained context" in w for w in data["warnings"])


def test_models_json_lists_ids_aliases_and_parameter_counts(cli):
    result = cli("models", "--json")
    assert result.code == 0, result.err
    rows = {r["id"]: r for r in json.loads(result.out)}
    assert set(rows) == set(catalog.models().ids())
    for row in rows.values():
        assert {"id", "aliases", "params", "active_params"} <= set(row)
        assert type(row["params"]) is int and type(row["active_params"]) is int
        assert 0 < row["active_params"] <= row["params"]
    assert rows["llama3.1-8b"]["params"] == 8_030_261_248
    assert rows["llama3.1-8b"]["active_params"] == rows["llama3.1-8b"]["params"]
    assert rows["mixtral-8x7b"]["active_params"] < rows["mixtral-8x7b"]["params"] / 3
    assert "meta-llama/Llama-3.1-8B" in rows["llama3.1-8b"]["aliases"]


def test_gpus_json_lists_memory_and_bandwidth_in_bytes(cli):
    result = cli("gpus", "--json")
    assert result.code == 0, result.err
    rows = {r["id"]: r for r in json.loads(result.out)}
    assert set(rows) == set(catalog.hardware().ids())
    for row in rows.values():
        assert {"id", "aliases", "memory_bytes", "bandwidth_bytes_per_s"} <= set(row)
        assert type(row["memory_bytes"]) is int and row["memory_bytes"] > 0
    assert rows["rtx4090"]["memory_bytes"] == 24564 * 2**20
    assert rows["rtx4090"]["bandwidth_bytes_per_s"] == 1008e9


def test_models_and_gpus_tables_exit_0(cli):
    assert cli("models").code == 0
    result = cli("gpus")
    assert result.code == 0 and "rtx4090" in result.out


def test_importing_the_cli_and_planning_does_not_import_torch():
    code = (
        "import sys\n"
        "import planner.cli\n"
        "assert 'torch' not in sys.modules, 'import planner.cli imported torch'\n"
        "rc = planner.cli.run(planner.cli.app, ['plan', '-m', 'llama3.1-8b', '-g', 'rtx4090', '--json'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules, 'planner plan imported torch'\n"
        "assert 'numpy' not in sys.modules, 'planner plan imported numpy (80 ms of start-up)'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_plan_app_prints_what_planner_plan_prints(cli):
    from planner.cli.plan import plan_app

    args = ["--model", "llama3.1-8b", "--gpu", "rtx4090", "--ctx", "8192"]
    expected = cli("plan", *args)
    in_process = cli(*args, typer_app=plan_app)
    assert (in_process.code, in_process.out, in_process.err) == (expected.code, expected.out, expected.err)


def test_plan_console_script_prints_what_planner_plan_prints():
    plan_script, planner_script = shutil.which("plan"), shutil.which("planner")
    if plan_script is None or planner_script is None:
        pytest.skip("the console scripts are not installed (pip install -e .)")
    args = ["--model", "llama3.1-8b", "--gpu", "rtx4090", "--ctx", "8192"]
    via_plan = subprocess.run([plan_script, *args], check=False, capture_output=True, text=True, timeout=60)
    via_planner = subprocess.run([planner_script, "plan", *args], check=False, capture_output=True, text=True,
                                 timeout=60)
    assert via_plan.returncode == via_planner.returncode == 0, via_plan.stderr + via_planner.stderr
    assert via_plan.stdout == via_planner.stdout
    assert "q4_k_m" in via_plan.stdout


def test_plan_console_script_maps_bad_input_to_exit_2(cli):
    from planner.cli.plan import plan_app

    result = cli("--model", "llama3.1-8b", "--gpu", "rtx4009", typer_app=plan_app)
    assert result.code == 2
    assert result.err_lines == ["error: unknown GPU 'rtx4009'; did you mean: rtx4090, rtx4080, rtx4070?"]


def test_host_must_be_a_host_memory_profile(cli):
    result = cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--host", "rtx4090")
    assert result.code == 2
    assert result.err_lines[0].startswith("error: --host takes a host memory profile (")
    assert result.err_lines[0].endswith("'rtx4090' is a gpu")


def test_an_unknown_engine_lists_the_engines(cli):
    result = cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--engine", "foo")
    assert result.err_lines == ["error: unknown engine 'foo'; choose one of: llama.cpp, ollama, vllm, torch, transformers"]


def test_engine_and_device_mismatches_are_warned(cli):
    import json

    mac = json.loads(cli("plan", "-m", "llama3.1-8b", "-g", "m3-max", "-e", "vllm", "-q", "bf16", "--json").out)
    assert any("no Apple GPU (Metal) backend" in w for w in mac["warnings"])
    t4 = json.loads(cli("plan", "-m", "llama3.1-8b", "-g", "t4", "-e", "vllm", "-q", "fp8", "--json").out)
    assert any("no FP8 tensor cores" in w for w in t4["warnings"])


def test_plan_refuses_json_and_markdown_together(cli):
    result = cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--json", "--markdown")
    assert (result.code, result.err_lines) == (2, ["error: choose one of --json and --markdown"])


def test_command_modules_import_on_their_own():
    import subprocess
    import sys

    for module in ("plan", "recommend", "compare", "check", "calibrate", "validate"):
        code = f"import planner.cli.{module}"
        assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0, module
