"""Units. Internally: integer bytes, float seconds, bytes/s and FLOP/s as floats.

Vendors quote decimal GB and GB/s; engines print binary MiB and GiB. Mixing them is a 7% error,
so conversions live here and nowhere else.
"""

from __future__ import annotations

MIB = 1024**2
GIB = 1024**3
GB = 10**9
TERA = 10**12


def gib_to_bytes(gib: float) -> int:
    return round(gib * GIB)



def gb_per_s_to_bytes_per_s(gb_per_s: float) -> float:
    return gb_per_s * GB


def tflops_to_flops(tflops: float) -> float:
    return tflops * TERA


def pad_to_multiple(value: int, multiple: int) -> int:
    """Round ``value`` up to a multiple of ``multiple`` (ggml's GGML_PAD)."""
    return ((value + multiple - 1) // multiple) * multiple


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)
