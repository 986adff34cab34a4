"""Iteration times for the simulator, from the same step-time functions `plan` uses.

A step runs the decode tokens of every sequence past its prompt plus prefill chunks of others:

* decode part: ``batching.batched_decode_step_seconds`` with the decode coefficients at that batch size
  (weights read once per step, each sequence's KV, tensor-parallel communication);
* prefill part: a chunk covering prompt positions (a, a+n] costs prefill(a+n) − prefill(a) of
  ``prefill.PrefillCoefficients.seconds``, so the chunks of one prompt add up to exactly `plan`'s TTFT;
* several prompts in one step pay the prefill call's fixed overhead once, not once per prompt;
* together: ``batching.mixed_step_seconds`` (one weight read and one step overhead shared).
"""

from __future__ import annotations

import numpy as np

from planner.physics import batching, latency, prefill
from planner.physics.efficiency import Efficiency, communication, default_efficiency
from planner.physics.performance import host_efficiency
from planner.physics.workload import Deployment


class StepModel:
    """Memoised step times of one replica."""

    def __init__(self, d: Deployment, eff: Efficiency | None = None):
        self.deployment = d
        self.eff = eff or default_efficiency(d.engine, d.hardware)
        self.host_eff = host_efficiency(d)
        self.comm = communication()
        self._decode: dict[int, latency.DecodeCoefficients] = {}
        self._prefill_k = prefill.prefill_coefficients(d, self.eff, self.host_eff, self.comm, batch=1)
        self._prefill: dict[int, float] = {0: 0.0}
        self.weight_stream_s = batching.weight_stream_seconds(d, self.eff, self.host_eff, self.comm)
        self.shared_s = self.weight_stream_s + self.eff.step_overhead_s
        self.prefill_overhead_s = self._prefill_k.overhead_s
        k1 = self.decode_coefficients(1)
        self.global_s_per_token = k1.global_s_per_token
        self.window_s_per_token = k1.window_s_per_token
        self.window = k1.window

    def decode_coefficients(self, batch: int) -> latency.DecodeCoefficients:
        k = self._decode.get(batch)
        if k is None:
            k = latency.decode_coefficients(self.deployment, self.eff, self.host_eff, self.comm, batch=batch)
            self._decode[batch] = k
        return k

    def capped(self, contexts: np.ndarray):
        """Σ min(c, window) over the contexts (0 without a window)."""
        if self.window is None or self.window_s_per_token == 0.0:
            return 0
        return np.minimum(contexts, self.window).sum()

    def decode_seconds(self, batch: int, context_sum, capped_sum) -> float:
        """Decode step of ``batch`` sequences with the given Σ contexts (scalars or arrays)."""
        if batch <= 0:
            return 0.0
        return batching.batched_decode_step_seconds(self.decode_coefficients(batch), context_sum, capped_sum)

    def prefill_to(self, tokens: int) -> float:
        """Prefill time of a prompt of ``tokens`` tokens alone (plan's TTFT for that prompt)."""
        v = self._prefill.get(tokens)
        if v is None:
            v = self._prefill_k.seconds(tokens)[0]
            self._prefill[tokens] = v
        return v

    def chunk_seconds(self, start: int, end: int) -> float:
        """Prefill of prompt positions (start, end]."""
        return self.prefill_to(end) - self.prefill_to(start)

    def prefill_seconds(self, chunks: list[tuple[int, int]]) -> float:
        """Prefill part of a step: chunks (start, end]; a prompt's first chunk carries the call's fixed
        overhead in ``prefill_to``, which one step pays once."""
        if not chunks:
            return 0.0
        total = sum(self.prefill_to(b) - self.prefill_to(a) for a, b in chunks)
        firsts = sum(1 for a, _ in chunks if a == 0)
        return total - max(firsts - 1, 0) * self.prefill_overhead_s

    def step_seconds(self, decode_s: float, prefill_s: float) -> float:
        return batching.mixed_step_seconds(decode_s, prefill_s, self.shared_s)
