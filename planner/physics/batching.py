"""Steps of a serving engine under continuous batching: sequences of different contexts in one step, and
decode tokens riding along prefill chunks (docs/physics.md §4-§5; used by planner.serving).

Pure functions built on planner.physics.latency, so the simulator times each iteration with the same
step model `plan` uses.
"""

from __future__ import annotations

from planner.physics.efficiency import Communication, Efficiency
from planner.physics.latency import DecodeCoefficients, rates, weight_read_bytes
from planner.physics.workload import Deployment
from planner.spec.schema import DeviceKind


def batched_decode_step_seconds(k: DecodeCoefficients, context_sum, capped_context_sum):
    """One decode step of ``k.batch`` sequences whose contexts differ (docs/physics.md §4):
    t = fixed_s(B) + global_s_per_token·Σc_i + window_s_per_token·Σmin(c_i, window).
    With equal contexts c this is ``k.step_seconds(c)``. Works elementwise on numpy arrays."""
    return k.fixed_s + k.global_s_per_token * context_sum + k.window_s_per_token * capped_context_sum


def weight_stream_seconds(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication) -> float:
    """One read of the device-resident weights by one tensor-parallel rank: W / (tp·η_w·BW)."""
    r = rates(d, eff, host_eff, comm)
    n = d.model.architecture.n_layers
    layers = range(n) if d.hardware.kind is DeviceKind.cpu else range(d.host_layers, n)
    return (weight_read_bytes(d, layers, 1) + d.layout.output_bytes) / d.tp / r.weight_bytes_per_s


def mixed_step_seconds(decode_s: float, prefill_s: float, shared_s: float) -> float:
    """A step that runs decode tokens and prefill chunks in one forward pass (chunked prefill,
    Sarathi-Serve, Agrawal et al. 2024 §4): the pass streams the weights once and pays one fixed
    overhead, so it costs the decode part plus the prefill part less ``shared_s`` (one weight read and
    the decode step's overhead), never less than the larger part."""
    if decode_s <= 0.0 or prefill_s <= 0.0:
        return decode_s + prefill_s
    return max(decode_s + prefill_s - shared_s, decode_s, prefill_s)
