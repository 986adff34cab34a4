"""Time: decode steps, prefill, time to first token and end-to-end latency (pure functions).

Decode (docs/physics.md §4): one step at batch B reads every device-resident weight once and each
sequence's KV prefix, so

    t_step(B, c) = t_fixed + max(W_read(B) / (η_w·BW), 2·N_active·B / (η_c·Peak))      weights
                   + B · (kv_global·c + kv_window·min(c, window)) / (η_kv·BW)          attention
                   [+ the same for layers kept in host memory, at host bandwidth]
                   [+ 2·L·t_allreduce for tensor parallel, + hops between pipeline stages]

which is linear in the context c (capped for sliding-window layers), so sums over a generation
have closed forms (docs/physics.md §6):  T(P, N) = TTFT(P) + Σ_{i=1}^{N−1} t_step(B, P + i).

Prefill (docs/physics.md §5): F(P) = 2·N_active·P + Σ_layers pair_flops·Σ_{p≤P} min(p, window) (causal),
TTFT ≈ t_fixed + max(n_chunks·W/(η_w·BW), F/(η_c·Peak)) [+ n_chunks·W_host/BW_PCIe when offloaded].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from planner.physics import cpu as cpu_roof
from planner.physics import engines as eng
from planner.physics.efficiency import Communication, Efficiency
from planner.physics.kvcache import kv_bytes_per_token_layer
from planner.physics.quant import Engine
from planner.physics.roofline import Bound, expected_distinct_experts, roofline_seconds
from planner.spec.schema import DeviceKind, HardwareProfile, ModelSpec
from planner.spec.tensors import Role, is_global_attention_layer, tensor_inventory
from planner.units import ceil_div
from planner.physics.workload import Deployment


@dataclass(frozen=True)
class Rates:
    """Achieved rates: datasheet figures times efficiencies."""

    weight_bytes_per_s: float
    kv_bytes_per_s: float
    flops_per_s: float
    decode_flops_per_s: float
    host_weight_bytes_per_s: float
    host_kv_bytes_per_s: float
    host_flops_per_s: float
    pcie_bytes_per_s: float


@dataclass(frozen=True)
class DecodeCoefficients:
    """t_step(c) = fixed_s + batch·(global_s_per_token·c + window_s_per_token·min(c, window))."""

    fixed_s: float
    global_s_per_token: float
    window_s_per_token: float
    window: int | None
    batch: int
    bound: Bound
    weight_read_bytes: int
    kv_bytes_per_context_token: int
    flops_per_step: float

    def step_seconds(self, context: int) -> float:
        capped = min(context, self.window) if self.window else context
        return self.fixed_s + self.batch * (self.global_s_per_token * context + self.window_s_per_token * capped)


def sum_range(lo: int, hi: int) -> int:
    """Σ_{c=lo}^{hi} c (0 for an empty range)."""
    return 0 if hi < lo else (lo + hi) * (hi - lo + 1) // 2


def sum_range_capped(lo: int, hi: int, cap: int) -> int:
    """Σ_{c=lo}^{hi} min(c, cap) in closed form."""
    if hi < lo:
        return 0
    below = sum_range(lo, min(hi, cap))
    above_count = hi - max(lo, cap + 1) + 1
    return below + cap * max(0, above_count)


def decode_seconds_total(k: DecodeCoefficients, first_context: int, n_steps: int) -> float:
    """Σ of t_step over contexts first_context … first_context + n_steps − 1, in closed form."""
    if n_steps <= 0:
        return 0.0
    lo, hi = first_context, first_context + n_steps - 1
    capped = sum_range_capped(lo, hi, k.window) if k.window else sum_range(lo, hi)
    return n_steps * k.fixed_s + k.batch * (k.global_s_per_token * sum_range(lo, hi) + k.window_s_per_token * capped)


# ---------------------------------------------------------------------------------------------
# What a step reads and computes
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=128)
def linear_params(spec: ModelSpec) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    """(lm_head params, params of dense linears per layer summed, dense linear params per layer,
    routed-expert params per layer): the matmul weights, embedding table excluded."""
    n = spec.architecture.n_layers
    dense, experts = [0] * n, [0] * n
    head = 0
    for t in tensor_inventory(spec):
        if t.role is Role.output or (t.role is Role.embedding and spec.architecture.tie_word_embeddings):
            head = t.rows * t.row_length
        elif t.role in (Role.linear, Role.router) and t.layer is not None:
            dense[t.layer] += t.n_elements
        elif t.role is Role.expert and t.layer is not None:
            experts[t.layer] += t.n_elements
    return head, sum(dense), tuple(dense), tuple(experts)


def active_linear_params_per_token(spec: ModelSpec, layers: range) -> int:
    """Matmul parameters one token multiplies through in ``layers`` (k of E experts)."""
    _, _, dense, experts = linear_params(spec)
    frac = spec.moe.n_active_experts / spec.moe.n_experts if spec.moe else 1.0
    return int(sum(dense[i] + experts[i] * frac for i in layers))


def weight_read_bytes(d: Deployment, layers: range, tokens: int) -> float:
    """Weight bytes streamed for ``layers`` when ``tokens`` tokens go through them at once: dense
    weights once, routed experts only those touched (docs/physics.md §4.5)."""
    wl = d.layout
    if not wl.layer_expert_bytes or d.model.moe is None:
        return float(sum(wl.layer_bytes[i] for i in layers))
    m = d.model.moe
    touched = expected_distinct_experts(m.n_experts, m.n_active_experts, tokens) / m.n_experts
    return float(sum(wl.layer_bytes[i] - wl.layer_expert_bytes[i] + touched * wl.layer_expert_bytes[i]
                     for i in layers))


def window_applies(d: Deployment) -> bool:
    """Whether attention reads are capped at the sliding window: llama.cpp builds windowed caches only for
    the architectures in engines.LLAMA_CPP_SWA_FAMILIES (Mistral-7B-v0.1 loads as LLM_ARCH_LLAMA with a
    full cache); vLLM and PyTorch honour every window."""
    a = d.model.architecture
    if a.sliding_window is None:
        return False
    return not d.engine.reads_gguf or a.family in eng.LLAMA_CPP_SWA_FAMILIES


def _kv_per_token(d: Deployment, layers: range) -> tuple[int, int]:
    """KV bytes per context token per sequence in ``layers``: (global layers, window layers)."""
    per_layer = kv_bytes_per_token_layer(d.model, d.kv_dtype)
    windowed = window_applies(d)
    n_window = sum(1 for i in layers if windowed and not is_global_attention_layer(d.model, i))
    return per_layer * (len(layers) - n_window), per_layer * n_window


def rates(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication) -> Rates:
    hw = d.hardware
    host = d.host or hw
    pcie = 0.0
    if hw.host_link is not None:
        # PCIe per direction: ~0.985 GB/s per lane at gen 3, doubling each generation (PCI-SIG).
        pcie = 0.985e9 * 2 ** (hw.host_link.pcie_gen - 3) * hw.host_link.pcie_lanes * comm.pcie_efficiency
    return Rates(
        weight_bytes_per_s=hw.bandwidth_bytes_per_s * eff.weight_eff(d.quant),
        kv_bytes_per_s=hw.bandwidth_bytes_per_s * eff.kv_bandwidth,
        flops_per_s=hw.peak_flops(_compute_dtype(d, hw)) * eff.compute_eff(d.quant),
        decode_flops_per_s=hw.peak_flops(_compute_dtype(d, hw)) * eff.decode_compute_eff(d.quant),
        host_weight_bytes_per_s=host.bandwidth_bytes_per_s * host_eff.weight_eff(d.quant),
        host_kv_bytes_per_s=host.bandwidth_bytes_per_s * host_eff.kv_bandwidth,
        host_flops_per_s=host.peak_flops("fp32") * host_eff.compute_eff(d.quant),
        pcie_bytes_per_s=pcie,
    )


def _compute_dtype(d: Deployment, hw: HardwareProfile) -> str:
    return "fp32" if hw.kind is DeviceKind.cpu else d.quant.compute_dtype


def communication_seconds(d: Deployment, comm: Communication, chunks: int = 1, allreduce_s: float | None = None) -> float:
    """Tensor parallel: 2 all-reduces per layer (after attention and after the MLP); pipeline or layer
    split: one hop per stage boundary, slower across nodes (docs/physics.md §4.6)."""
    t = 0.0
    if d.tp > 1:
        link = d.hardware.interconnect.kind if d.hardware.interconnect else "pcie"
        latency_s = allreduce_s if allreduce_s is not None else comm.allreduce_latency_s.get(link, 4e-5)
        t += 2 * d.model.architecture.n_layers * latency_s * chunks
    stages_in_node = d.gpus_per_node if d.parallel != "tp" else 1
    t += (stages_in_node - 1) * comm.pipeline_hop_s * (1 if d.nodes == 1 else d.nodes)
    t += (d.nodes - 1) * comm.inter_node_hop_s
    return t


def decode_coefficients(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                        batch: int | None = None) -> DecodeCoefficients:
    """Linear-in-context decode step model for batch ``batch`` (default: the workload's)."""
    spec = d.model
    B = batch or d.workload.batch
    r = rates(d, eff, host_eff, comm)
    n = spec.architecture.n_layers
    cpu_device = d.hardware.kind is DeviceKind.cpu
    dev_layers = range(n) if cpu_device else range(d.host_layers, n)
    host_layers = range(0) if cpu_device else range(d.host_layers)
    head_params, _, _, _ = linear_params(spec)

    # Tensor parallel divides weights and heads over ranks that run at once; an MLA latent is replicated.
    tp = d.tp
    w_dev = (weight_read_bytes(d, dev_layers, B) + d.layout.output_bytes) / tp
    f_dev = 2.0 * (active_linear_params_per_token(spec, dev_layers) + head_params) * B / tp
    t_dev, bound = roofline_seconds(f_dev, w_dev, r.decode_flops_per_s, r.weight_bytes_per_s)
    if cpu_device:
        t_dev, bound = cpu_roof.decode_step_roof(d, d.hardware, dev_layers, True, B, w_dev,
                                                 r.weight_bytes_per_s, (t_dev, bound))
    w_host = weight_read_bytes(d, host_layers, B)
    f_host = 2.0 * active_linear_params_per_token(spec, host_layers) * B
    t_host = roofline_seconds(f_host, w_host, r.host_flops_per_s, r.host_weight_bytes_per_s)[0] if w_host else 0.0
    if w_host and d.host is not None:
        t_host = cpu_roof.decode_step_roof(d, d.host, host_layers, False, B, w_host,
                                           r.host_weight_bytes_per_s, (t_host, "memory"))[0]
    fixed = (eff.step_overhead_s + n * eff.layer_overhead_s + t_dev + t_host
             + communication_seconds(d, comm, 1, eff.allreduce_latency_s))

    kv_share = 1 if spec.mla is not None else tp
    g_dev, win_dev = _kv_per_token(d, dev_layers)
    g_host, win_host = _kv_per_token(d, host_layers)
    g_s = g_dev / kv_share / r.kv_bytes_per_s + g_host / r.host_kv_bytes_per_s
    win_s = win_dev / kv_share / r.kv_bytes_per_s + win_host / r.host_kv_bytes_per_s
    window = spec.architecture.sliding_window if window_applies(d) else None
    return DecodeCoefficients(
        fixed_s=fixed, global_s_per_token=g_s, window_s_per_token=win_s, window=window, batch=B, bound=bound,
        weight_read_bytes=int(w_dev * tp + w_host), kv_bytes_per_context_token=g_dev + win_dev + g_host + win_host,
        flops_per_step=f_dev * tp + f_host,
    )


# ---------------------------------------------------------------------------------------------
# Prefill
# ---------------------------------------------------------------------------------------------


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

    def _touched(self, tokens: float) -> float:
        return 1.0 - (1.0 - self.expert_fraction) ** tokens if self.expert_fraction else 1.0

    def seconds(self, prompt_tokens: int) -> tuple[float, Bound]:
        total = self.batch * prompt_tokens
        if total <= 0:
            return 0.0, "memory"
        chunk = min(self.engine_chunk, total) if self.engine_chunk else total
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
        t = max(compute_s, memory_s)
        if self.host_layer_share:
            w_host = self.host_dense_bytes + touched * self.host_expert_bytes
            if r.pcie_bytes_per_s and chunk >= 32:
                # llama.cpp offloads ops of ≥32-token batches to the GPU: host weights cross PCIe every ubatch.
                t += chunks * w_host / r.pcie_bytes_per_s
            else:
                t += max(flops * self.host_layer_share / r.host_flops_per_s, chunks * w_host / r.host_weight_bytes_per_s)
        t += self.allreduce_bytes_per_token * total
        t += communication_seconds(self.deployment, self.comm, chunks, self.allreduce_s)
        t += chunks * self.layer_overhead_s
        return self.overhead_s + t, ("compute" if compute_s > memory_s else "memory")


def prefill_coefficients(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                         batch: int | None = None) -> PrefillCoefficients:
    """Prefill model (docs/physics.md §5, §4.7): max(chunks × weight bytes / bandwidth, FLOPs / peak) on the
    device, PCIe or host time for layers kept in host memory, all-reduce traffic for tensor parallel,
    and a fixed overhead. FLOPs = 2·N_active·tokens + lm_head for the last row + causal attention."""
    spec = d.model
    n = spec.architecture.n_layers
    B = batch or d.workload.batch
    cpu_device = d.hardware.kind is DeviceKind.cpu
    host_layers = range(0) if cpu_device else range(d.host_layers)
    dev_layers = range(n) if cpu_device else range(d.host_layers, n)
    wl = d.layout
    experts = bool(wl.layer_expert_bytes) and spec.moe is not None

    def split(layers: range) -> tuple[float, float]:
        total = float(sum(wl.layer_bytes[i] for i in layers))
        exp = float(sum(wl.layer_expert_bytes[i] for i in layers)) if experts else 0.0
        return total - exp, exp

    dense_dev, exp_dev = split(dev_layers)
    dense_host, exp_host = split(host_layers)
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
        linear_flops_per_token=2.0 * active_linear_params_per_token(spec, range(n)),
        head_flops=2.0 * head_params * B, pair_flops=float(attention_pair_flops(spec)),
        n_global=n_global, n_window=n_window, window=window,
        dense_bytes=dense_dev + wl.output_bytes, expert_bytes=exp_dev,
        expert_fraction=spec.moe.n_active_experts / spec.moe.n_experts if experts else 0.0,
        host_dense_bytes=dense_host, host_expert_bytes=exp_host,
        host_layer_share=len(host_layers) / n, tp=d.tp, allreduce_bytes_per_token=allreduce,
        rates=rates(d, eff, host_eff, comm), overhead_s=eff.prefill_overhead_s,
        layer_overhead_s=n * eff.layer_overhead_s, comm=comm, deployment=d,
        allreduce_s=eff.allreduce_latency_s,
    )


def prefill_seconds(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                    prompt_tokens: int, batch: int | None = None) -> tuple[float, Bound]:
    """Time to process ``batch`` prompts of ``prompt_tokens`` tokens (see prefill_coefficients)."""
    return prefill_coefficients(d, eff, host_eff, comm, batch).seconds(prompt_tokens)


def no_kv_cache_seconds(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                        prompt_tokens: int, gen_tokens: int) -> float:
    """Generation without a KV cache: producing token i re-runs the whole sequence of P + i tokens as a
    prefill: Σ_{n=max(P,1)}^{max(P,1)+N−1} prefill(n), summed over every n up to 20,000 terms; longer
    generations sum 20,001 evenly spaced terms scaled by the stride (trapezoid rule) to stay fast."""
    k = prefill_coefficients(d, eff, host_eff, comm)
    # Token i (i = 0 … N−1) re-runs the P + i tokens before it; an empty prompt still runs one token.
    lo = max(prompt_tokens, 1)
    hi = lo + gen_tokens - 1
    limit = 20_000
    if hi - lo + 1 <= limit:
        return float(sum(k.seconds(n)[0] for n in range(lo, hi + 1)))
    step = (hi - lo) / limit
    ys = [k.seconds(round(lo + i * step))[0] for i in range(limit + 1)]
    return float((sum(ys) - (ys[0] + ys[-1]) / 2) * step + (ys[0] + ys[-1]) / 2)
