"""planner.calibrate.detect against a fake NVML module (no GPU needed), plus the real pynvml on a GPU-less machine."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import SimpleNamespace

import pytest

from planner.calibrate.detect import DetectedGPU, detect_gpus, match_profile, normalize_name, torch_device_summary

GIB = 1024**3


class FakeNVML:
    """Mimics the pynvml functions planner.calibrate.detect calls; ``fail`` maps a function name to an exception."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    class NVMLError_DriverNotLoaded(NVMLError):
        pass

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2

    def __init__(self, devices: list[dict], fail: dict[str, Exception] | None = None, as_bytes: bool = False):
        self.devices, self.fail, self.as_bytes = devices, fail or {}, as_bytes
        self.calls: list[str] = []

    def _call(self, fn: str, value):
        self.calls.append(fn)
        if fn in self.fail:
            raise self.fail[fn]
        return value.encode() if self.as_bytes and isinstance(value, str) else value

    def nvmlInit(self):
        return self._call("nvmlInit", None)

    def nvmlShutdown(self):
        return self._call("nvmlShutdown", None)

    def nvmlDeviceGetCount(self):
        return self._call("nvmlDeviceGetCount", len(self.devices))

    def nvmlDeviceGetHandleByIndex(self, i):
        return self._call("nvmlDeviceGetHandleByIndex", self.devices[i])

    def nvmlSystemGetDriverVersion(self):
        return self._call("nvmlSystemGetDriverVersion", "550.54.14")

    def nvmlSystemGetCudaDriverVersion(self):
        return self._call("nvmlSystemGetCudaDriverVersion", 12040)

    def nvmlDeviceGetName(self, h):
        return self._call("nvmlDeviceGetName", h["name"])

    def nvmlDeviceGetMemoryInfo(self, h):
        total, used = h["total"], h["used"]
        return self._call("nvmlDeviceGetMemoryInfo", SimpleNamespace(total=total, used=used, free=total - used))

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h):
        return self._call("nvmlDeviceGetCurrPcieLinkGeneration", 4)

    def nvmlDeviceGetCurrPcieLinkWidth(self, h):
        return self._call("nvmlDeviceGetCurrPcieLinkWidth", 16)

    def nvmlDeviceGetMaxClockInfo(self, h, clock):
        return self._call("nvmlDeviceGetMaxClockInfo", {1: 3105, 2: 10501}[clock])

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._call("nvmlDeviceGetEnforcedPowerLimit", 450_000)  # milliwatts


RTX4090 = {"name": "NVIDIA GeForce RTX 4090", "total": 24564 * 1024**2, "used": 512 * 1024**2}


def test_normal_4090():
    fake = FakeNVML([RTX4090])
    result = detect_gpus(fake)
    assert result.message is None
    assert result.gpus == (
        DetectedGPU(
            index=0, name="NVIDIA GeForce RTX 4090", memory_total_bytes=24564 * 1024**2,
            memory_used_bytes=512 * 1024**2, memory_free_bytes=24052 * 1024**2, driver_version="550.54.14",
            cuda_version="12.4", pcie_gen=4, pcie_width=16, sm_clock_mhz=3105, mem_clock_mhz=10501,
            power_limit_w=450.0,
        ),
    )
    assert fake.calls[0] == "nvmlInit" and fake.calls[-1] == "nvmlShutdown"


def test_names_as_bytes_are_decoded():
    result = detect_gpus(FakeNVML([RTX4090], as_bytes=True))
    assert result.gpus[0].name == "NVIDIA GeForce RTX 4090"
    assert result.gpus[0].driver_version == "550.54.14"


def test_not_supported_field_is_none_and_others_survive():
    not_supported = FakeNVML.NVMLError_NotSupported("Not Supported")
    fake = FakeNVML([RTX4090, RTX4090], fail={
        "nvmlDeviceGetCurrPcieLinkGeneration": not_supported,
        "nvmlDeviceGetEnforcedPowerLimit": not_supported,
        "nvmlDeviceGetMemoryInfo": not_supported,
    })
    result = detect_gpus(fake)
    assert [g.index for g in result.gpus] == [0, 1]
    gpu = result.gpus[1]
    assert (gpu.pcie_gen, gpu.power_limit_w, gpu.memory_total_bytes, gpu.memory_free_bytes) == (None,) * 4
    assert (gpu.pcie_width, gpu.sm_clock_mhz, gpu.name) == (16, 3105, "NVIDIA GeForce RTX 4090")


def test_init_failure_gives_one_line_message():
    fake = FakeNVML([RTX4090], fail={"nvmlInit": FakeNVML.NVMLError_DriverNotLoaded("Driver Not Loaded")})
    result = detect_gpus(fake)
    assert result.gpus == ()
    assert result.message == "no NVIDIA GPU detected (NVML: Driver Not Loaded)"


def test_zero_devices_gives_message():
    result = detect_gpus(FakeNVML([]))
    assert result.gpus == () and result.message.startswith("no NVIDIA GPU detected (NVML: ")


def test_models_are_frozen_and_strict():
    gpu = detect_gpus(FakeNVML([RTX4090])).gpus[0]
    with pytest.raises(ValueError):
        gpu.name = "x"
    with pytest.raises(ValueError):
        DetectedGPU(index=0, vram=1)
    assert DetectedGPU.model_validate(gpu.model_dump(mode="json")) == gpu


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is None, reason="nvidia-ml-py not installed")
def test_real_pynvml_without_gpu():
    import pynvml

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:  # a real driver is present: nothing to check about the no-GPU path
        pynvml.nvmlShutdown()
        pytest.skip("an NVIDIA driver is present on this machine")
    result = detect_gpus()
    assert result.gpus == ()
    assert result.message.startswith("no NVIDIA GPU detected (NVML: ")
    assert "\n" not in result.message


KNOWN = {
    "rtx4090": ["NVIDIA GeForce RTX 4090", "4090", "rtx-4090"],
    "h100-sxm": ["H100 80GB HBM3", "H100 SXM"],
    "h100-pcie": ["H100 PCIe"],
    "a100-80gb": ["A100-SXM4-80GB", "A100 80GB PCIe"],
}


@pytest.mark.parametrize(
    ("nvml_name", "expected"),
    [
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
        (b"NVIDIA GeForce RTX 4090", "rtx4090"),
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb"),
        ("NVIDIA GeForce RTX 4080", None),
        ("NVIDIA H100", None),  # no substring matching: ambiguous between SXM and PCIe
        ("", None),
    ],
)
def test_match_profile(nvml_name, expected):
    assert match_profile(nvml_name, KNOWN) == expected


def test_normalize_name():
    assert normalize_name("NVIDIA GeForce RTX 4090") == "rtx4090"
    assert normalize_name("rtx-4090") == "rtx4090"


def test_torch_summary_without_gpu():
    summary = torch_device_summary()
    if importlib.util.find_spec("torch") is None:
        assert summary is None
    else:
        assert summary.backend in ("cpu", "mps") and summary.name
        assert summary.memory_total_bytes is None or summary.memory_total_bytes > GIB // 4


def test_import_does_not_load_torch_or_pynvml():
    code = "import sys, planner.calibrate.detect; print('torch' in sys.modules, 'pynvml' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
