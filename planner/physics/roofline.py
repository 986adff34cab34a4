"""The roofline: an operation takes as long as its slower resource, compute or memory."""

from __future__ import annotations

from typing import Literal

Bound = Literal["memory", "compute"]


def roofline_seconds(flops: float, bytes_moved: float, flops_per_s: float, bytes_per_s: float) -> tuple[float, Bound]:
    """seconds = max(flops / achieved FLOP/s, bytes / achieved bytes/s), and which term won.

    Source: LLM-Viewer roofline_analyze / llm-analysis; docs/physics.md §4.1.
    The rates passed in are already scaled by their efficiencies.
    """
    compute_s = flops / flops_per_s if flops else 0.0
    memory_s = bytes_moved / bytes_per_s if bytes_moved else 0.0
    return (compute_s, "compute") if compute_s > memory_s else (memory_s, "memory")


def expected_distinct_experts(n_experts: int, k: int, batch: int) -> float:
    """Experts a MoE layer touches when ``batch`` tokens each route to k of E uniformly and independently:
    E × (1 − (1 − k/E)^B). Mixtral (8, 2): 2 at B = 1, 5.5 at B = 4, 8 at B ≥ 32 (docs/physics.md §4.5).
    Real routers are skewed, so this is an upper bound on bytes read."""
    return n_experts * (1.0 - (1.0 - k / n_experts) ** batch)
