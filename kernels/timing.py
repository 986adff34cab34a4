"""Timing protocol for the micro-benchmarks and the decode loop.

Protocol (after triton ``do_bench`` and nanoGPT ``bench.py``; written here, not copied): warm up, synchronise,
time every call separately (CUDA events on CUDA; ``time.perf_counter`` after a device sync on MPS/CPU, as
gpt-fast does), repeat, and report the median with the 20th/80th percentiles. Source for the protocol:
docs/physics.md §7.1 and the timing practice of docs/physics.md §7.1.

torch is imported lazily (inside functions) so that ``import planner.kernels`` stays torch-free.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

INSTALL_HINT = "PyTorch is needed for the benchmarks: pip install 'planner[bench]' (or pip install torch)"


def import_torch() -> Any:
    """Import torch, or raise ImportError with an install hint (pydantic-settings ``import_yaml`` style)."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from exc
    return torch


def resolve_device(device: str = "auto") -> str:
    """'auto' → 'cuda' if available, else 'mps' if available, else 'cpu'. Other names are checked and returned."""
    torch = import_torch()
    cuda_ok = torch.cuda.is_available()
    mps_ok = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        return "cuda" if cuda_ok else "mps" if mps_ok else "cpu"
    if device == "cuda" and not cuda_ok:
        raise ValueError("device 'cuda' requested but torch.cuda.is_available() is False")
    if device == "mps" and not mps_ok:
        raise ValueError("device 'mps' requested but torch.backends.mps.is_available() is False")
    if device not in ("cuda", "mps", "cpu"):
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cuda', 'mps' or 'cpu'")
    return device


def device_sync(device: str) -> None:
    """Block until all queued work on ``device`` has finished (no-op on CPU, where ops are synchronous)."""
    torch = import_torch()
    kind = str(device).split(":")[0]
    if kind == "cuda":
        torch.cuda.synchronize()
    elif kind == "mps":
        torch.mps.synchronize()


@dataclass(frozen=True)
class Timing:
    """Per-call wall time in seconds: median and 20th/80th percentiles over ``n`` timed calls."""

    median_s: float
    p20_s: float
    p80_s: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default 'linear' method), q in [0, 1]."""
    if not values:
        raise ValueError("quantile of an empty list")
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(seconds: list[float]) -> Timing:
    """Median, p20 and p80 of a list of per-call times in seconds."""
    return Timing(
        median_s=quantile(seconds, 0.5),
        p20_s=quantile(seconds, 0.2),
        p80_s=quantile(seconds, 0.8),
        n=len(seconds),
    )


def time_calls(fn: Callable[[], object], device: str, warmup: int = 3, repeats: int = 10) -> Timing:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times, timing each call on its own.

    ``fn`` may be stateful (the decode loop advances one token per call): call k of the timed phase is call
    ``warmup + k`` overall. On CUDA each call is bracketed by CUDA events and the host syncs once at the end;
    elsewhere the device is synchronised before and after each call and ``perf_counter`` is read.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    torch = import_torch()
    for _ in range(warmup):
        fn()
    device_sync(device)
    if str(device).startswith("cuda"):
        events = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            events.append((start, end))
        torch.cuda.synchronize()
        seconds = [s.elapsed_time(e) * 1e-3 for s, e in events]  # elapsed_time is in milliseconds
    else:
        seconds = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            device_sync(device)
            seconds.append(time.perf_counter() - t0)
    return summarize(seconds)
