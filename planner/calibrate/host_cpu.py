"""The local CPU's cores, SIMD ISA and clock, for the ``cpu`` block of a measured host profile.

Read from /proc/cpuinfo on Linux (bounded read); elsewhere from ``os.cpu_count`` and the machine type.
"""

from __future__ import annotations

import os
import platform

MAX_CPUINFO_BYTES = 4_000_000
FALLBACK_CLOCK_GHZ = 3.0


def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return handle.read(MAX_CPUINFO_BYTES)
    except OSError:
        return ""


def simd_isa(flags: set[str], machine: str) -> str:
    """The widest ISA llama.cpp's CPU kernels use here: AMX, AVX-512, AVX2, NEON, else SSE."""
    if "amx_tile" in flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    if "asimd" in flags or machine.lower() in ("arm64", "aarch64"):
        return "neon"
    return "sse"


def parse_cpuinfo(text: str, machine: str, logical: int | None) -> dict:
    """cores, threads, ISA and clock from /proc/cpuinfo text (a ``cpu`` block, source included)."""
    flags: set[str] = set()
    cores: set[tuple[str, str]] = set()
    mhz: list[float] = []
    model = ""
    physical = core = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "model name" and not model:
            model = value
        elif key == "physical id":
            physical = value
        elif key == "core id":
            core = value
            cores.add((physical, core))
        elif key == "cpu MHz":
            try:
                mhz.append(float(value))
            except ValueError:
                pass
    threads = logical or 1
    clock = max(mhz) / 1000 if mhz else FALLBACK_CLOCK_GHZ
    clock_note = "/proc/cpuinfo cpu MHz" if mhz else f"not reported, {FALLBACK_CLOCK_GHZ} GHz assumed"
    return {
        "source": f"detected by planner calibrate: cores and ISA flags from /proc/cpuinfo, clock from {clock_note}",
        "model": model or platform.processor() or machine,
        "physical_cores": max(1, min(len(cores) or threads, threads)),
        "threads": threads,
        "simd": simd_isa(flags, machine),
        "clock_ghz": min(max(clock, 0.1), 10.0),
    }


def local_cpu_block(simd: list) -> dict:
    """The ``cpu`` block of this machine, with the SIMD rates the benchmark measured (``simd``:
    planner.kernels.microbench.SimdResult list, measured with one thread)."""
    block = parse_cpuinfo(_cpuinfo(), platform.machine(), os.cpu_count())
    rates = {r.kernel: r for r in simd}
    if "fp32-gemv" in rates and "int8-dot" in rates:
        block["measured_threads"] = rates["fp32-gemv"].threads
        block["measured_float_vector_ops_per_s"] = rates["fp32-gemv"].vector_ops_per_s
        block["measured_int_vector_ops_per_s"] = rates["int8-dot"].vector_ops_per_s
        block["source"] += "; SIMD rates measured (cache-resident fp32 GEMV and int8 dot, kernels/microbench.py)"
    return block
