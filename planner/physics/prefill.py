"""Prefill: the time to process prompts, and so the time to first token (pure functions).

Source: docs/physics.md §5 (and §4.7 for layers kept in host memory). FLOPs of one prompt of P tokens are
2·N_active·P + the lm_head for the last row + causal attention Σ_layers pair_flops·Σ_{p≤P} min(p, window);
the time is max(n_chunks·W/(η_w·BW), F/(η_c·Peak)) on the device, plus PCIe or host time for offloaded
layers, tensor-parallel all-reduce traffic, per-pass layer overheads and a fixed overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.physics import engines as eng
from planner.physics import kernel_paths as kp
from planner.physics.arith import is_scalar, maximum, minimum, prefix_sums, span_sum, where
from planner.physics.efficiency import Communication, Efficiency
from planner.physics.latency import (Rates, active_params_span, communication_seconds, layer_spans, linear_params,
                                     rates, sum_range, sum_range_capped, window_applies)
from planner.physics.quant import Engine
from planner.physics.roofline import Bound
from planner.physics.workload import Deployment
from planner.spec.schema import ModelSpec
from planner.spec.tensors import is_global_attention_layer
from planner.units import ceil_div


def prefill_chunk_tokens(d: Deployment, total_tokens: int) -> int:
    """Tokens per forward pass in prefill: llama.cpp's n_ubatch, vLLM's max_num_batched_tokens,
    the whole prompt for plain PyTorch."""
    if d.engine.reads_gguf:
        return eng.LLAMA_CPP_N_UBATCH
    if d.engine is Engine.vllm:
        return eng.vllm_batch_defaults(d.hardware)[0]
    return max(1, total_tokens)


def attention_pair_flops(spec: ModelSpec) -> int:
    """FLOPs per (query, key) pair per layer: QKᵀ and AV, 2 FLOPs per multiply-add, over all heads."""
    a = spec.architecture
    if spec.mla is not None:
        m = spec.mla
        return 2 * a.n_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
    return 4 * a.n_heads * a.head_dim


def _attention_layer_counts(d: Deployment) -> tuple[int, int, int | None]:
    """(global layers, windowed layers, window) as the engine runs them."""
    spec = d.model
    window = spec.architecture.sliding_window if window_applies(d) else None
    n = spec.architecture.n_layers
    n_window = sum(1 for i in range(n) if window and not is_global_attention_layer(spec, i))
    return n - n_window, n_window, window


def prefill_attention_flops(d: Deployment, prompt_tokens: int) -> float:
    """Causal attention FLOPs for one prompt: Σ_layers pair_flops × Σ_{p=1}^{P} min(p, window)."""
    n_global, n_window, window = _attention_layer_counts(d)
    pairs_full = sum_range(1, prompt_tokens)
    pairs_window = sum_range_capped(1, prompt_tokens, window) if window else pairs_full
    return float(attention_pair_flops(d.model) * (n_global * pairs_full + n_window * pairs_window))


@dataclass(frozen=True)
class PrefillCoefficients:
    """Constants of the prefill time of one deployment, so that many prompt lengths cost little."""

    batch: int
    engine_chunk: int | None
    linear_flops_per_token: float
    head_flops: float
    pair_flops: float
    n_global: int
    n_window: int
    window: int | None
    dense_bytes: float  # device weights read per chunk, experts excluded (output layer included)
    expert_bytes: float
    expert_fraction: float  # k / E, or 0 for dense models
    host_dense_bytes: float
    host_expert_bytes: float
    host_layer_share: float
    tp: int
    allreduce_bytes_per_token: float
    rates: Rates
    overhead_s: float
    layer_overhead_s: float  # per layer per forward pass (chunk)
    comm: Communication
    deployment: Deployment
    allreduce_s: float | None
    score_s_per_pair: float = 0.0  # attention-score traffic per (query, key) pair per layer, no flash attention

    def _touched(self, tokens):
        return 1.0 - (1.0 - self.expert_fraction) ** tokens if self.expert_fraction else 1.0 + 0.0 * tokens

    def seconds(self, prompt_tokens: int) -> tuple[float, Bound]:
        """(seconds, bound) for one prompt length; with array fields both are arrays."""
        total = self.batch * prompt_tokens
        if is_scalar(total) and total <= 0:
            return 0.0, "memory"
        chunk = minimum(self.engine_chunk, total) if self.engine_chunk else total
        chunks = ceil_div(total, chunk)
        p = prompt_tokens
        pairs_full = p * (p + 1) / 2
        if self.window and p > self.window:
            w = self.window
            pairs_window = w * (w + 1) / 2 + (p - w) * w
        else:
            pairs_window = pairs_full
        flops = (self.linear_flops_per_token * total + self.head_flops
                 + self.batch * self.pair_flops * (self.n_global * pairs_full + self.n_window * pairs_window))
        touched = self._touched(chunk)
        r = self.rates
        compute_s = flops / self.tp / r.flops_per_s
        memory_s = chunks * (self.dense_bytes + touched * self.expert_bytes) / self.tp / r.weight_bytes_per_s
        t = maximum(compute_s, memory_s)
        t = t + self.score_s_per_pair * self.batch * (self.n_global * pairs_full + self.n_window * pairs_window)
        w_host = self.host_dense_bytes + touched * self.host_expert_bytes
        # llama.cpp offloads ops of ≥32-token batches to the GPU: host weights cross PCIe every ubatch.
        over_pcie = chunks * w_host / r.pcie_bytes_per_s if r.pcie_bytes_per_s else 0.0 * w_host
        on_host = maximum(flops * self.host_layer_share / r.host_flops_per_s,
                          chunks * w_host / r.host_weight_bytes_per_s)
        host_s = where((chunk >= 32) & (r.pcie_bytes_per_s > 0), over_pcie, on_host)
        t = t + where(self.host_layer_share > 0, host_s, 0.0)
        t = t + self.allreduce_bytes_per_token * total
        t = t + communication_seconds(self.deployment, self.comm, chunks, self.allreduce_s)
        t = t + chunks * self.layer_overhead_s
        compute = compute_s > memory_s
        if is_scalar(t):
            return self.overhead_s + t, ("compute" if compute else "memory")
        return self.overhead_s + t, compute


def prefill_coefficients(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                         batch=None, host_layers=None) -> PrefillCoefficients:
    """Prefill model (docs/physics.md §5, §4.7): max(chunks × weight bytes / bandwidth, FLOPs / peak) on the
    device, PCIe or host time for layers kept in host memory, all-reduce traffic for tensor parallel,
    and a fixed overhead. FLOPs = 2·N_active·tokens + lm_head for the last row + causal attention.
    Batch and host layers may be numpy arrays (the search grid)."""
    spec = d.model
    n = spec.architecture.n_layers
    B = d.workload.batch if batch is None else batch
    (dev_lo, dev_hi), (host_lo, host_hi) = layer_spans(d, host_layers)
    wl = d.layout
    experts = bool(wl.layer_expert_bytes) and spec.moe is not None

    def split(lo, hi):
        total = span_sum(prefix_sums(wl.layer_bytes), lo, hi)
        exp = span_sum(prefix_sums(wl.layer_expert_bytes), lo, hi) if experts else 0 * total
        return total - exp, exp

    dense_dev, exp_dev = split(dev_lo, dev_hi)
    dense_host, exp_host = split(host_lo, host_hi)
    n_global, n_window, window = _attention_layer_counts(d)
    head_params, _, _, _ = linear_params(spec)
    engine_chunk = prefill_chunk_tokens(d, 0) if d.engine.reads_gguf or d.engine is Engine.vllm else None
    allreduce = 0.0
    if d.tp > 1:
        link = d.hardware.interconnect.bandwidth_gb_per_s * 1e9 if d.hardware.interconnect else 25e9
        # 2 all-reduces per layer of hidden_size bf16 values per token; ring traffic 2(tp−1)/tp of it
        allreduce = 2 * n * spec.architecture.hidden_size * 2 * 2 * (d.tp - 1) / d.tp / max(link, 1e9)
    return PrefillCoefficients(
        batch=B, engine_chunk=engine_chunk,
        linear_flops_per_token=2.0 * active_params_span(spec, 0, n),
        head_flops=2.0 * head_params * B, pair_flops=float(attention_pair_flops(spec)),
        n_global=n_global, n_window=n_window, window=window,
        dense_bytes=dense_dev + wl.output_bytes, expert_bytes=exp_dev,
        expert_fraction=spec.moe.n_active_experts / spec.moe.n_experts if experts else 0.0,
        host_dense_bytes=dense_host, host_expert_bytes=exp_host,
        host_layer_share=(host_hi - host_lo) / n, tp=d.tp, allreduce_bytes_per_token=allreduce,
        rates=rates(d, eff, host_eff, comm), overhead_s=eff.prefill_overhead_s,
        layer_overhead_s=n * eff.layer_overhead_s, comm=comm, deployment=d,
        allreduce_s=eff.allreduce_latency_s,
        score_s_per_pair=where(host_hi - host_lo > 0, 0.0, kp.score_seconds_per_pair(d, eff)),
    )


def prefill_seconds(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                    prompt_tokens: int, batch: int | None = None) -> tuple[float, Bound]:
    """Time to process ``batch`` prompts of ``prompt_tokens`` tokens (see prefill_coefficients)."""
    return prefill_coefficients(d, eff, host_eff, comm, batch).seconds(prompt_tokens)


def no_kv_cache_seconds(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                        prompt_tokens: int, gen_tokens: int) -> float:
    """Generation without a KV cache: producing token i re-runs the whole sequence of P + i tokens as a
    prefill: Σ_{n=max(P,1)}^{max(P,1)+N−1} prefill(n), summed over every n up to 256 terms; longer
    generations sum 257 evenly spaced terms scaled by the stride (trapezoid rule; prefill(n) is a smooth
    quadratic between chunk steps, so the rule is within a fraction of a percent) to keep every plan's
    cost independent of --gen."""
    k = prefill_coefficients(d, eff, host_eff, comm)
    # Token i (i = 0 … N−1) re-runs the P + i tokens before it; an empty prompt still runs one token.
    lo = max(prompt_tokens, 1)
    hi = lo + gen_tokens - 1
    limit = 256
    if hi - lo + 1 <= limit:
        return float(sum(k.seconds(n)[0] for n in range(lo, hi + 1)))
    step = (hi - lo) / limit
    ys = [k.seconds(round(lo + i * step))[0] for i in range(limit + 1)]
    return float((sum(ys) - (ys[0] + ys[-1]) / 2) * step + (ys[0] + ys[-1]) / 2)
