"""Detect local GPUs through NVML (nvidia-ml-py), degrading field by field; map names to catalog ids.

* ``detect_gpus(nvml=None)`` imports ``pynvml`` lazily (it is an optional dependency). A missing library,
  a missing driver or a failing ``nvmlInit`` gives a result with no GPUs and a one-line message
  "no NVIDIA GPU detected (NVML: <reason>)" rather than a traceback. Each per-device field is read on its
  own; an ``NVMLError`` (e.g. ``NVMLError_NotSupported`` on GeForce cards) leaves that field ``None``, as
  gpustat's ``safenvml`` does. Tests pass a fake module as ``nvml``.
* ``torch_device_summary()`` reports MPS or CPU through torch, only if torch is importable.
* ``match_profile(name, known)`` maps an NVML name to a catalog id by a normalised key.

Units: bytes, MHz, watts (NVML reports power in milliwatts: divided by 1000 once, here).
"""

from __future__ import annotations

import importlib.util
import os
import platform
import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")

NVML_CLOCK_SM = 1  # nvmlClockType_t values, used when the module lacks the constants
NVML_CLOCK_MEM = 2
_VENDOR_WORDS = ("nvidia", "geforce", "tesla", "quadro")


class DetectedGPU(BaseModel):
    """One NVML device; every field NVML could not read is None."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    name: str | None = None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    memory_free_bytes: int | None = None
    driver_version: str | None = None
    cuda_version: str | None = None  # driver's CUDA version, "12.4" from nvmlSystemGetCudaDriverVersion 12040
    pcie_gen: int | None = None  # current link generation
    pcie_width: int | None = None  # current link width (lanes)
    sm_clock_mhz: int | None = None  # maximum SM clock (nvmlDeviceGetMaxClockInfo)
    mem_clock_mhz: int | None = None  # maximum memory clock
    power_limit_w: float | None = None  # enforced power limit


class DetectionResult(BaseModel):
    """GPUs found, or none with a one-line ``message`` saying why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpus: tuple[DetectedGPU, ...] = ()
    message: str | None = None


class TorchDeviceSummary(BaseModel):
    """What torch sees when NVML does not: 'mps' or 'cpu', a name and total system RAM."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backend: str
    name: str
    memory_total_bytes: int | None = None
    torch_version: str


def _text(value: Any) -> str:
    """NVML returns bytes in older nvidia-ml-py releases and str in newer ones."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _safe(nvml: Any, fn: Callable[[], T]) -> T | None:
    """fn(), or None if NVML raises (NotSupported, NoPermission, ...): one unreadable field is not fatal."""
    try:
        return fn()
    except nvml.NVMLError:
        return None


def _cuda_version(raw: int) -> str:
    """NVML encodes CUDA versions as 1000·major + 10·minor: 12040 → '12.4'."""
    return f"{raw // 1000}.{raw % 1000 // 10}"


def _read_device(nvml: Any, index: int, driver: str | None, cuda: str | None) -> DetectedGPU:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    memory = _safe(nvml, lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    sm_clock = getattr(nvml, "NVML_CLOCK_SM", NVML_CLOCK_SM)
    mem_clock = getattr(nvml, "NVML_CLOCK_MEM", NVML_CLOCK_MEM)
    power_mw = _safe(nvml, lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    name = _safe(nvml, lambda: nvml.nvmlDeviceGetName(handle))
    return DetectedGPU(
        index=index,
        name=None if name is None else _text(name),
        memory_total_bytes=None if memory is None else int(memory.total),
        memory_used_bytes=None if memory is None else int(memory.used),
        memory_free_bytes=None if memory is None else int(memory.free),
        driver_version=driver,
        cuda_version=cuda,
        pcie_gen=_safe(nvml, lambda: int(nvml.nvmlDeviceGetCurrPcieLinkGeneration(handle))),
        pcie_width=_safe(nvml, lambda: int(nvml.nvmlDeviceGetCurrPcieLinkWidth(handle))),
        sm_clock_mhz=_safe(nvml, lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, sm_clock))),
        mem_clock_mhz=_safe(nvml, lambda: int(nvml.nvmlDeviceGetMaxClockInfo(handle, mem_clock))),
        power_limit_w=None if power_mw is None else power_mw / 1000,  # NVML reports milliwatts
    )


def _no_gpu(reason: str) -> DetectionResult:
    return DetectionResult(message=f"no NVIDIA GPU detected (NVML: {reason})")


def detect_gpus(nvml: Any = None) -> DetectionResult:
    """Every NVML device with the fields NVML could read; ``nvml`` defaults to the ``pynvml`` module."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return _no_gpu("nvidia-ml-py is not installed; pip install nvidia-ml-py")
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return _no_gpu(str(exc) or type(exc).__name__)
    try:
        count = int(nvml.nvmlDeviceGetCount())
        if count == 0:
            return _no_gpu("driver loaded but 0 devices")
        driver = _safe(nvml, lambda: _text(nvml.nvmlSystemGetDriverVersion()))
        cuda_raw = _safe(nvml, nvml.nvmlSystemGetCudaDriverVersion)
        cuda = None if cuda_raw is None else _cuda_version(int(cuda_raw))
        return DetectionResult(gpus=tuple(_read_device(nvml, i, driver, cuda) for i in range(count)))
    except nvml.NVMLError as exc:  # count or a handle failed: the device list itself is unreadable
        return _no_gpu(str(exc) or type(exc).__name__)
    finally:
        _safe(nvml, nvml.nvmlShutdown)


def _total_ram_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not on POSIX
        return None


def _cpu_name() -> str:
    """CPU model from /proc/cpuinfo on Linux, else platform.processor() (e.g. 'arm' on macOS)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def torch_device_summary() -> TorchDeviceSummary | None:
    """MPS if torch reports it available, else CPU; None when torch is not installed (torch imported here only)."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    mps = getattr(torch.backends, "mps", None)
    backend = "mps" if mps is not None and mps.is_available() else "cpu"
    name = f"Apple GPU (mps) on {_cpu_name()}" if backend == "mps" else _cpu_name()
    return TorchDeviceSummary(
        backend=backend, name=name, memory_total_bytes=_total_ram_bytes(), torch_version=str(torch.__version__)
    )


def normalize_name(name: str | bytes) -> str:
    """Lower-case alphanumerics only, vendor words dropped: 'NVIDIA GeForce RTX 4090' → 'rtx4090'."""
    words = re.findall(r"[a-z0-9]+", _text(name).lower())
    return "".join(w for w in words if w not in _VENDOR_WORDS)


def match_profile(name: str | bytes, known: dict[str, list[str]]) -> str | None:
    """The catalog id whose id or one of whose aliases has the same ``normalize_name`` key, else None.

    Exact key equality only (no substring matching: 'H100 PCIe' must not match an 'H100 SXM' profile).
    The first id in ``known`` wins if two ids share a key.
    """
    key = normalize_name(name)
    if not key:
        return None
    for profile_id, aliases in known.items():
        if any(normalize_name(candidate) == key for candidate in (profile_id, *aliases)):
            return profile_id
    return None
