"""The roofline: an operation takes as long as its slower resource, compute or memory."""

from __future__ import annotations

from typing import Literal

from planner.physics.arith import divide_or_zero, maximum

Bound = Literal["memory", "compute"]


def roofline_time_s(flops, bytes_moved, flops_per_s, bytes_per_s):
    """seconds = max(flops / achieved FLOP/s, bytes / achieved bytes/s), scalars or arrays alike.

    Source: LLM-Viewer roofline_analyze / llm-analysis; docs/physics.md §4.1.
    The rates passed in are already scaled by their efficiencies; no work takes no time.
    """
    return maximum(divide_or_zero(flops, flops_per_s), divide_or_zero(bytes_moved, bytes_per_s))


def compute_bound(flops, bytes_moved, flops_per_s, bytes_per_s):
    """Whether the compute term of the roofline is the larger one (elementwise for arrays)."""
    return divide_or_zero(flops, flops_per_s) > divide_or_zero(bytes_moved, bytes_per_s)


def roofline_seconds(flops: float, bytes_moved: float, flops_per_s: float, bytes_per_s: float) -> tuple[float, Bound]:
    """``roofline_time_s`` for one operation, and which term won."""
    bound: Bound = "compute" if compute_bound(flops, bytes_moved, flops_per_s, bytes_per_s) else "memory"
    return roofline_time_s(flops, bytes_moved, flops_per_s, bytes_per_s), bound


def expected_distinct_experts(n_experts: int, k: int, batch):
    """Experts a MoE layer touches when ``batch`` tokens each route to k of E uniformly and independently:
    E × (1 − (1 − k/E)^B). Mixtral (8, 2): 2 at B = 1, 5.5 at B = 4, 8 at B ≥ 32 (docs/physics.md §4.5).
    Real routers are skewed, so this is an upper bound on bytes read."""
    return n_experts * (1.0 - (1.0 - k / n_experts) ** batch)
