"""One regression test per defect class of the hostile-input review (docs/security.md): numbers at the
edges of their types, cost bounded by input size, output other tools parse, files planner writes,
layouts the engines refuse, and the smaller start-up and reader cases."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from planner.errors import InputError
from planner.spec.paths import HARDWARE_DIR, MODEL_SPECS_DIR
from planner.spec.safeio import remove_stale, write_bytes_atomic, write_text_atomic

RTX4090 = yaml.safe_load((HARDWARE_DIR / "rtx4090.yaml").read_text())
QWEN = yaml.safe_load((MODEL_SPECS_DIR / "qwen2.5-0.5b.yaml").read_text())


def _yaml(tmp_path: Path, name: str, data: dict, **memory) -> Path:
    data = json.loads(json.dumps(data))
    data["memory"].update(memory)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def one_error_line(result) -> str:
    assert result.code == 2 and len(result.err_lines) == 1 and result.err_lines[0].startswith("error: "), result
    assert "Traceback" not in result.err
    return result.err_lines[0]


# 1. numbers at the edges of their types ---------------------------------------------------------------


@pytest.mark.parametrize("field, value, message", [
    ("usable_mib", 1.0e308, "memory.usable_mib: Input should be less than or equal to"),
    ("capacity_gib", float("inf"), "memory.capacity_gib: Input should be"),
    ("capacity_gib", True, "memory.capacity_gib: Input should be a valid number"),
    ("capacity_gib", "24", "memory.capacity_gib: Input should be a valid number"),
    ("bandwidth_gb_per_s", 0, "memory.bandwidth_gb_per_s: Input should be greater than 0"),
    ("bandwidth_gb_per_s", -1008, "memory.bandwidth_gb_per_s: Input should be greater than 0"),
])
def test_hardware_numbers_out_of_physical_bounds_are_one_line_exit_2(cli, tmp_path, field, value, message):
    gpu = _yaml(tmp_path, "gpu.yaml", RTX4090, **{field: value})
    line = one_error_line(cli("plan", "-m", "llama3.1-8b", "-g", gpu, "-q", "q4_k_m"))
    assert message in line and str(gpu) in line


def test_integer_spec_fields_refuse_bools_strings_and_floats(make_model, model_data):
    from pydantic import ValidationError

    for value in (True, "32", 32.0):
        with pytest.raises(ValidationError):
            make_model(architecture={"n_layers": value})


def test_calibration_promising_more_than_the_bandwidth_limit_is_refused(cli, tmp_path):
    from planner.calibrate.store import Calibration, save
    from planner.physics.efficiency import Efficiency, default_efficiency
    from planner.physics.quant import Engine
    from planner.spec import catalog

    base = default_efficiency(Engine.llama_cpp, catalog.load_hardware("rtx4090")).model_dump()
    for bad in ({"weight_bandwidth": {"float": -1.0}}, {"weight_bandwidth": {"float": 2.0}},
                {"error_band": (1.5, 0.5)}):
        with pytest.raises(ValueError):
            Efficiency.model_validate({**base, **bad})
    good = Calibration(device_key="rtx4090", device_name="x", engine="llama.cpp", efficiency=Efficiency(**base),
                       fit_median_abs_pct_error=1.0, n_fit=2, source="test")
    path = save(good, tmp_path / "cal.json")
    data = json.loads(path.read_text())
    data["efficiency"]["error_band"] = [2.0, 0.5]
    path.write_text(json.dumps(data))
    line = one_error_line(cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "-q", "q4_k_m", "--calibration", path))
    assert "error_band low 2 exceeds high 0.5" in line
    path.write_text(path.read_text().replace('"fit_median_abs_pct_error": 1.0', '"fit_median_abs_pct_error": NaN'))
    assert "NaN is not a JSON number" in one_error_line(
        cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "-q", "q4_k_m", "--calibration", path))


# 2. cost bounded by the input's size -----------------------------------------------------------------


def test_a_sparse_gguf_claiming_a_huge_string_array_is_skipped_quickly(tmp_path):
    import struct

    from planner.spec.readers.gguf_header import MAX_STRING_ARRAY_ITEMS, read_gguf_header

    key = b"general.architecture"
    path = tmp_path / "sparse.gguf"
    with open(path, "wb") as fh:  # one u8 array of 2^26 items, then a string array at the limit
        fh.write(b"GGUF" + struct.pack("<IQQ", 3, 0, 2))
        fh.write(struct.pack("<Q", 5) + b"x.u8s" + struct.pack("<IIQ", 9, 0, 2**26))
        fh.seek(fh.tell() + 2**26)
        fh.write(struct.pack("<Q", 5) + b"x.str" + struct.pack("<IIQ", 9, 8, MAX_STRING_ARRAY_ITEMS))
        fh.truncate(2**40)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    header = read_gguf_header(path)
    assert header.metadata["x.u8s"].count == 2**26 and header.metadata["x.str"].count == MAX_STRING_ARRAY_ITEMS
    assert resource.getrusage(resource.RUSAGE_SELF).ru_utime - before < 5.0
    del key


def test_validate_costs_milliseconds_per_row(tmp_path):
    from planner.calibrate.validate import validate
    from planner.spec.paths import MEASUREMENTS_FILE

    lines = MEASUREMENTS_FILE.read_text().splitlines()
    path = tmp_path / "m.csv"
    path.write_text("\n".join([lines[0], *lines[1:101] * 3]) + "\n")  # 300 rows
    before = resource.getrusage(resource.RUSAGE_SELF).ru_utime
    assert len(validate(path).rows) == 300
    assert resource.getrusage(resource.RUSAGE_SELF).ru_utime - before < 6.0  # was 6.6 ms a row on a fast core


# 3. output that other tools parse ---------------------------------------------------------------------


def test_an_infinite_target_is_refused_so_json_stays_strict(cli):
    line = one_error_line(cli("recommend", "-m", "llama3.1-8b", "-g", "rtx4090", "--max-ttft", "inf", "--json"))
    assert line == "error: --max-ttft: Input should be a finite number"


def test_json_text_never_prints_nan():
    from planner.views.text import json_text

    with pytest.raises(InputError):
        json_text({"x": float("inf")})


def test_text_output_and_errors_strip_control_characters(cli, tmp_path):
    spec = json.loads(json.dumps(QWEN))
    spec["name"] = "evil\x1b[2J\x07name"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = cli("plan", "-m", path, "-g", "rtx4090", "-q", "q4_k_m", "--markdown")
    assert result.code == 0 and "\x1b" not in result.out and "\x07" not in result.out
    line = one_error_line(cli("plan", "-m", "x\ny\x1b[31m", "-g", "rtx4090"))
    assert "\\x0a" in line and "\x1b" not in line


def test_a_10000_character_model_name_is_one_short_line(cli):
    line = one_error_line(cli("plan", "-m", "a" * 10_000, "-g", "rtx4090"))
    assert line.startswith("error: unknown model 'aaa") and len(line) < 300


# 4. writing files ---------------------------------------------------------------------------------------


def test_plot_into_a_folder_or_a_device_is_refused(cli, tmp_path):
    folder = tmp_path / "charts"
    folder.mkdir()
    assert "not the folder" in one_error_line(cli("plan", "-m", "qwen2.5-0.5b", "-g", "rtx4090", "-q", "q4_k_m",
                                                  "--plot", folder))
    assert not (tmp_path / "charts.png").exists()
    assert "device, FIFO or socket" in one_error_line(
        cli("plan", "-m", "qwen2.5-0.5b", "-g", "rtx4090", "-q", "q4_k_m", "--plot", "/dev/null"))
    assert not os.path.exists("/dev/null.png")


def test_calibrate_out_never_replaces_a_device_or_a_fifo(cli, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in ("/dev/null", fifo, tmp_path):
        line = one_error_line(cli("calibrate", "--from-csv", "x.csv", "--out", target))
        assert f"cannot write {target}" in line
    assert fifo.is_fifo() and not os.path.isfile("/dev/null")


def test_the_writer_is_atomic_keeps_modes_and_names_the_path_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "report.txt"
    write_text_atomic(path, "old")
    os.chmod(path, 0o640)
    write_text_atomic(path, "new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o640
    link = tmp_path / "link.txt"
    link.symlink_to(path)
    write_bytes_atomic(link, b"through the link")
    assert link.is_symlink() and path.read_text() == "through the link"

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(InputError, match=f"^cannot write {path}: No space left on device$"):
        write_text_atomic(path, "lost")
    assert path.read_text() == "through the link"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.txt", "report.txt"]  # no temporary left


def test_a_stale_output_is_removed_before_a_run_that_then_fails(cli, tmp_path):
    plot = tmp_path / "chart.png"
    plot.write_bytes(b"last week's chart")
    result = cli("plan", "-m", "qwen2.5-0.5b", "-g", "rtx4090", "-q", "no-such-quant", "--plot", plot)
    assert result.code == 2 and not plot.exists()
    remove_stale(tmp_path / "missing")  # nothing to remove is fine


# 5. layouts the engines would refuse --------------------------------------------------------------------


def test_tensor_parallel_over_3_gpus_of_a_64_head_model_is_refused_with_the_reason(cli):
    line = one_error_line(cli("plan", "-m", "llama3.3-70b", "-g", "h100", "--num-gpus", "3", "-e", "vllm", "-q", "fp8"))
    assert line == ("error: llama3.3-70b cannot run on 3 GPUs this way: 64 attention heads do not split evenly "
                    "over tensor-parallel size 3")


def test_more_pipeline_stages_than_layers_is_refused(cli):
    line = one_error_line(cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "--num-gpus", "1000", "-q", "q4_k_m"))
    assert "1000 pipeline stages exceed the model's 32 layers" in line


def test_kv_heads_must_divide_or_be_divided_by_tp(make_model):
    from planner.physics.workload import layout_problem

    m = make_model(architecture={"n_heads": 8, "n_kv_heads": 2, "hidden_size": 64})
    assert layout_problem(m, 8, 1) is None  # 2 KV heads replicated over 8 ranks (tp % kv == 0)
    assert layout_problem(m, 4, 1) is None
    assert "KV heads" in layout_problem(make_model(architecture={"n_heads": 12, "n_kv_heads": 4, "hidden_size": 96}),
                                        6, 1)


def test_recommend_never_proposes_a_layout_vllm_refuses(cli):
    result = cli("recommend", "-m", "llama3.3-70b", "-g", "rtx4090", "-e", "vllm", "--num-gpus", "8", "--json")
    data = json.loads(result.out)
    for rec in data["recommendations"]:
        assert 64 % rec["num_gpus"] == 0


# 6. smaller --------------------------------------------------------------------------------------------


def test_calibrate_without_torch_or_with_an_unknown_device_is_one_line(cli, monkeypatch):
    assert "unknown --device 'tpu'" in one_error_line(cli("calibrate", "--device", "tpu"))
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    for name in [n for n in sys.modules if n.startswith("planner.kernels")]:
        monkeypatch.delitem(sys.modules, name)
    assert "needs PyTorch" in one_error_line(cli("calibrate", "--device", "cpu", "--quick"))


def test_ctrl_c_while_the_command_line_loads_exits_130_without_a_traceback():
    script = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'planner.cli.app':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from planner.cli import main\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 130 and done.stderr == "error: interrupted\n"


def test_a_calibration_for_another_device_is_refused(cli, tmp_path):
    from planner.calibrate.store import Calibration, save
    from planner.physics.efficiency import default_efficiency
    from planner.physics.quant import Engine
    from planner.spec import catalog

    eff = default_efficiency(Engine.llama_cpp, catalog.load_hardware("rtx4090"))
    path = save(Calibration(device_key="m3-max", device_name="Apple M3 Max", engine="llama.cpp", efficiency=eff,
                            fit_median_abs_pct_error=1.0, n_fit=2, source="test"), tmp_path / "mac.json")
    line = one_error_line(cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "-q", "q4_k_m", "--calibration", path))
    assert "was measured on m3-max, not rtx4090" in line


def test_a_numpy_runtime_warning_is_one_line_exit_2_not_text_on_stderr(capsys):
    import numpy as np
    import typer

    from planner.cli.base import guarded, run

    app = typer.Typer()

    @app.command()
    @guarded
    def overflow() -> None:
        np.float64(1e308) * 10  # noqa: B018 - the overflow is the point

    assert run(app, []) == 2
    assert capsys.readouterr().err == "error: a number in the input is out of range (overflow encountered in scalar multiply)\n"
