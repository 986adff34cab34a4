"""`planner detect` (and `plan --gpu local`) through the CLI, without a GPU and with a fake NVML.

Issue 4, item 2. `planner.calibrate.detect.detect_gpus()` imports `pynvml` when it runs; a test puts a fake module
in ``sys.modules["pynvml"]`` so the command sees the fake's devices (gpustat's tests do the same with `N`).
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import pytest

from planner.calibrate.detect import detect_gpus

MIB = 1024**2


class FakeNVML:
    """The pynvml functions planner.calibrate.detect calls, for a list of fake devices."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, devices: list[dict], init_error: Exception | None = None):
        self.devices, self.init_error = devices, init_error

    def nvmlInit(self):
        if self.init_error is not None:
            raise self.init_error

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        return self.devices[i]

    def nvmlSystemGetDriverVersion(self):
        return "550.54.14"

    def nvmlSystemGetCudaDriverVersion(self):
        return 12040

    def nvmlDeviceGetName(self, h):
        return h["name"]

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=h["total"], used=h["used"], free=h["total"] - h["used"])

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h):
        if h.get("no_pcie"):
            raise self.NVMLError_NotSupported("Not Supported")
        return 4

    def nvmlDeviceGetCurrPcieLinkWidth(self, h):
        if h.get("no_pcie"):
            raise self.NVMLError_NotSupported("Not Supported")
        return 16

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        return {1: 3105, 2: 10501}[clock]

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return 450_000


RTX4090 = {"name": "NVIDIA GeForce RTX 4090", "total": 24564 * MIB, "used": 512 * MIB}
H100_PCIE = {"name": "NVIDIA H100 PCIe", "total": 81559 * MIB, "used": 0, "no_pcie": True}
UNKNOWN = {"name": "NVIDIA Imaginary 9999", "total": 8192 * MIB, "used": 0}


@pytest.fixture
def fake_nvml(monkeypatch):
    """``fake_nvml(devices)`` makes `import pynvml` return a fake NVML with those devices."""

    def install(devices: list[dict], init_error: Exception | None = None) -> FakeNVML:
        fake = FakeNVML(devices, init_error)
        monkeypatch.setitem(sys.modules, "pynvml", fake)
        return fake

    return install


# No NVIDIA GPU ---------------------------------------------------------------------------------------


def test_detect_on_this_machine_without_a_gpu(cli):
    if detect_gpus().gpus:
        pytest.skip("this machine has an NVIDIA GPU")
    result = cli("detect")
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0].startswith("no NVIDIA GPU detected (NVML: ")
    assert sum("no NVIDIA GPU detected" in line for line in lines) == 1
    assert len(lines) <= 2  # the message, then what torch sees (if torch is installed)
    data = json.loads(cli("detect", "--json").out)
    assert data["gpus"] == [] and data["message"] == lines[0]


def test_detect_when_nvml_fails_to_initialise(cli, fake_nvml):
    fake_nvml([RTX4090], init_error=FakeNVML.NVMLError("Driver Not Loaded"))
    result = cli("detect")
    assert result.code == 0
    assert result.out.splitlines()[0] == "no NVIDIA GPU detected (NVML: Driver Not Loaded)"
    data = json.loads(cli("detect", "--json").out)
    assert data["gpus"] == [] and data["message"] == "no NVIDIA GPU detected (NVML: Driver Not Loaded)"
    # torch is installed here (CPU build): the fallback says what it sees.
    assert data["fallback"]["backend"] in ("cpu", "mps")
    assert result.out.splitlines()[1].startswith(f"torch sees: {data['fallback']['backend']} (")


def test_detect_without_nvidia_ml_py(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # `import pynvml` raises ImportError
    result = cli("detect")
    assert result.code == 0
    assert result.out.splitlines()[0] == ("no NVIDIA GPU detected (NVML: nvidia-ml-py is not installed; "
                                          "pip install nvidia-ml-py)")


# A fake NVIDIA GPU ------------------------------------------------------------------------------------


def test_detect_table_lists_the_catalog_id(cli, fake_nvml):
    fake_nvml([RTX4090])
    result = cli("detect")
    assert result.code == 0, result.err
    [row] = [line for line in result.out.splitlines() if "RTX 4090" in line]
    assert "rtx4090" in row.split()
    assert "550.54.14" in row and "12.4" in row and "gen 4 x16" in row
    assert "23.99" in row  # 24,564 MiB in GiB


def test_detect_json_per_device(cli, fake_nvml):
    fake_nvml([RTX4090, H100_PCIE, UNKNOWN])
    result = cli("detect", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["message"] is None and data["fallback"] is None
    assert [g["catalog_id"] for g in data["gpus"]] == ["rtx4090", "h100-pcie", None]
    first = data["gpus"][0]
    assert (first["index"], first["memory_total_bytes"], first["memory_free_bytes"]) == (0, 24564 * MIB, 24052 * MIB)
    assert (first["pcie_gen"], first["pcie_width"], first["power_limit_w"]) == (4, 16, 450.0)
    # A field NVML cannot read degrades to null on its own.
    assert (data["gpus"][1]["pcie_gen"], data["gpus"][1]["pcie_width"]) == (None, None)
    assert data["gpus"][1]["memory_total_bytes"] == 81559 * MIB


def test_detect_table_marks_unknown_cards_and_unreadable_fields(cli, fake_nvml):
    fake_nvml([H100_PCIE, UNKNOWN])
    result = cli("detect")
    assert result.code == 0
    [h100] = [line for line in result.out.splitlines() if "H100 PCIe" in line]
    [unknown] = [line for line in result.out.splitlines() if "Imaginary" in line]
    assert "h100-pcie" in h100.split() and h100.rstrip().endswith("-")  # PCIe link: not supported
    assert "-" in unknown.split()


def test_plan_gpu_local_uses_the_detected_card(cli, fake_nvml, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path))
    fake_nvml([RTX4090])
    result = cli("plan", "-m", "llama3-8b", "-g", "local", "-q", "q4_k_m", "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert data["gpu"] == "rtx4090" and data["performance"]["efficiency_source"] == "default"


def test_plan_gpu_local_with_an_unknown_card_exits_2(cli, fake_nvml, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path))
    fake_nvml([UNKNOWN])
    result = cli("plan", "-m", "llama3-8b", "-g", "local", "-q", "q4_k_m")
    assert result.code == 2
    assert result.err_lines == [("error: detected 'NVIDIA Imaginary 9999' is not in the hardware catalog; "
                                 "pass a YAML profile")]
