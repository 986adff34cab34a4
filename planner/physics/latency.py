"""Time: decode steps and the rates, spans and sums they share with prefill (pure functions).

Decode (docs/physics.md §4): one step at batch B reads every device-resident weight once and each
sequence's KV prefix, so

    t_step(B, c) = t_fixed + max(W_read(B) / (η_w·BW), 2·N_active·B / (η_c·Peak))      weights
                   + B · (kv_global·c + kv_window·min(c, window)) / (η_kv·BW)          attention
                   [+ the same for layers kept in host memory, at host bandwidth]
                   [+ 2·L·t_allreduce for tensor parallel, + hops between pipeline stages]

which is linear in the context c (capped for sliding-window layers), so sums over a generation
have closed forms (docs/physics.md §6):  T(P, N) = TTFT(P) + Σ_{i=1}^{N−1} t_step(B, P + i).

Prefill and the time to first token are in ``planner.physics.prefill``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from planner.physics import cpu as cpu_roof
from planner.physics import engines as eng
from planner.physics import kernel_paths as kp
from planner.physics.efficiency import Communication, Efficiency
from planner.physics.arith import floor_int, is_scalar, minimum, prefix_sums, span_sum, where
from planner.physics.kvcache import KVDType, kv_bytes_per_token_layer
from planner.physics.roofline import Bound, compute_bound, expected_distinct_experts, roofline_time_s
from planner.spec.schema import DeviceKind, HardwareProfile, ModelSpec
from planner.spec.tensors import Role, is_global_attention_layer, tensor_inventory
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
    decode_path: str = kp.DATASHEET_PEAK
    prefill_path: str = kp.DATASHEET_PEAK


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
    bound_path: str | None = kp.MEMORY  # None for the grid's arrays, whose elements may differ

    def step_seconds(self, context):
        """One decode step at ``context`` tokens (an int, or an array of contexts)."""
        capped = minimum(context, self.window) if self.window else context
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


@lru_cache(maxsize=128)
def _active_params_prefix(spec: ModelSpec) -> tuple[float, ...]:
    _, _, dense, experts = linear_params(spec)
    frac = spec.moe.n_active_experts / spec.moe.n_experts if spec.moe else 1.0
    return prefix_sums([dense[i] + experts[i] * frac for i in range(spec.architecture.n_layers)])


def active_params_span(spec: ModelSpec, lo, hi):
    """Matmul parameters one token multiplies through in layers [lo, hi) (k of E experts)."""
    return floor_int(span_sum(_active_params_prefix(spec), lo, hi))


def active_linear_params_per_token(spec: ModelSpec, layers: range) -> int:
    return active_params_span(spec, layers.start, layers.stop)


def weight_read_bytes_span(d: Deployment, lo, hi, tokens):
    """Weight bytes streamed for layers [lo, hi) when ``tokens`` tokens go through them at once: dense
    weights once, routed experts only those touched (docs/physics.md §4.5)."""
    wl = d.layout
    total = span_sum(prefix_sums(wl.layer_bytes), lo, hi)
    if not wl.layer_expert_bytes or d.model.moe is None:
        return total + 0.0 * tokens
    m = d.model.moe
    experts = span_sum(prefix_sums(wl.layer_expert_bytes), lo, hi)
    touched = expected_distinct_experts(m.n_experts, m.n_active_experts, tokens) / m.n_experts
    return (total - experts) + touched * experts


def weight_read_bytes(d: Deployment, layers: range, tokens: int) -> float:
    return float(weight_read_bytes_span(d, layers.start, layers.stop, tokens))


def window_applies(d: Deployment) -> bool:
    """Whether attention reads are capped at the sliding window: llama.cpp builds windowed caches only for
    the architectures in engines.LLAMA_CPP_SWA_FAMILIES (Mistral-7B-v0.1 loads as LLM_ARCH_LLAMA with a
    full cache); vLLM and PyTorch honour every window."""
    a = d.model.architecture
    if a.sliding_window is None:
        return False
    return not d.engine.reads_gguf or a.family in eng.LLAMA_CPP_SWA_FAMILIES


@lru_cache(maxsize=256)
def _windowed_prefix(spec: ModelSpec, windowed: bool) -> tuple[int, ...]:
    n = spec.architecture.n_layers
    return prefix_sums([int(windowed and not is_global_attention_layer(spec, i)) for i in range(n)])


def kv_read_bytes_per_token(d: Deployment, kv: KVDType, lo, hi):
    """KV bytes per context token per sequence in layers [lo, hi): (global layers, window layers)."""
    per_layer = kv_bytes_per_token_layer(d.model, kv)
    n_window = span_sum(_windowed_prefix(d.model, window_applies(d)), lo, hi)
    return per_layer * ((hi - lo) - n_window), per_layer * n_window


def rates(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication, batch: int | None = None) -> Rates:
    hw = d.hardware
    host = d.host or hw
    pcie = 0.0
    if hw.host_link is not None:
        # PCIe per direction: ~0.985 GB/s per lane at gen 3, doubling each generation (PCI-SIG).
        pcie = 0.985e9 * 2 ** (hw.host_link.pcie_gen - 3) * hw.host_link.pcie_lanes * comm.pcie_efficiency
    B = d.workload.batch if batch is None else batch
    # The kernel path depends on the batch (llama.cpp's mat-vec kernels take up to 8 columns): the grid's
    # array of batches gets the rate of each element's path.
    small_path, small_rate, prefill_path, prefill_rate = kp.kernel_path_rates(d, eff, 1)
    peak_decode = hw.peak_flops(_compute_dtype(d, hw)) * eff.decode_compute_eff(d.quant)
    matvec = B <= kp.LLAMA_CPP_MATVEC_MAX_BATCH
    decode_rate = peak_decode if small_rate is None else where(matvec, small_rate, peak_decode)
    decode_path = small_path if small_rate is not None and (not is_scalar(B) or matvec) else kp.DATASHEET_PEAK
    return Rates(
        weight_bytes_per_s=hw.bandwidth_bytes_per_s * eff.weight_eff(d.quant),
        kv_bytes_per_s=hw.bandwidth_bytes_per_s * eff.kv_bandwidth,
        flops_per_s=prefill_rate or hw.peak_flops(_compute_dtype(d, hw)) * eff.compute_eff(d.quant),
        decode_flops_per_s=decode_rate,
        host_weight_bytes_per_s=host.bandwidth_bytes_per_s * host_eff.weight_eff(d.quant),
        host_kv_bytes_per_s=host.bandwidth_bytes_per_s * host_eff.kv_bandwidth,
        host_flops_per_s=host.peak_flops("fp32") * host_eff.compute_eff(d.quant),
        pcie_bytes_per_s=pcie,
        decode_path=decode_path,
        prefill_path=prefill_path,
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


def layer_spans(d: Deployment, host_layers=None) -> tuple[tuple, tuple]:
    """((lo, hi) of device layers, (lo, hi) of host layers): the first ``host_layers`` stay on the host
    (llama.cpp -ngl), unless the device is the CPU itself, which holds every layer."""
    n = d.model.architecture.n_layers
    h = d.host_layers if host_layers is None else host_layers
    if d.hardware.kind is DeviceKind.cpu:
        return (0 * h, n + 0 * h), (0 * h, 0 * h)
    return (h, n + 0 * h), (0 * h, h)


def decode_coefficients(d: Deployment, eff: Efficiency, host_eff: Efficiency, comm: Communication,
                        batch=None, host_layers=None, kv: KVDType | None = None) -> DecodeCoefficients:
    """Linear-in-context decode step model for batch ``batch`` (default: the workload's). Batch and host
    layers may be numpy arrays (the search grid); the fields are then arrays of the same shape."""
    spec = d.model
    B = d.workload.batch if batch is None else batch
    kv = kv or d.kv_dtype
    r = rates(d, eff, host_eff, comm, B)
    n = spec.architecture.n_layers
    (dev_lo, dev_hi), (host_lo, host_hi) = layer_spans(d, host_layers)
    head_params, _, _, _ = linear_params(spec)

    # Tensor parallel divides weights and heads over ranks that run at once; an MLA latent is replicated.
    tp = d.tp
    w_dev = (weight_read_bytes_span(d, dev_lo, dev_hi, B) + d.layout.output_bytes) / tp
    f_dev = 2.0 * (active_params_span(spec, dev_lo, dev_hi) + head_params) * B / tp
    t_dev = roofline_time_s(f_dev, w_dev, r.decode_flops_per_s, r.weight_bytes_per_s)
    compute = compute_bound(f_dev, w_dev, r.decode_flops_per_s, r.weight_bytes_per_s)
    path = r.decode_path
    if d.hardware.kind is DeviceKind.cpu:  # llama.cpp's SIMD roof on the CPU's own cores
        t_dev, compute = cpu_roof.decode_step_roof(d, d.hardware, dev_lo, dev_hi, True, B, w_dev,
                                                   r.weight_bytes_per_s, t_dev, compute)
        path = cpu_roof.CPU_SIMD
    w_host = weight_read_bytes_span(d, host_lo, host_hi, B)
    f_host = 2.0 * active_params_span(spec, host_lo, host_hi) * B
    t_host = roofline_time_s(f_host, w_host, r.host_flops_per_s, r.host_weight_bytes_per_s)
    if d.host is not None and d.hardware.kind is not DeviceKind.cpu:  # offloaded layers on the host's cores
        t_host, _ = cpu_roof.decode_step_roof(d, d.host, host_lo, host_hi, False, B, w_host,
                                              r.host_weight_bytes_per_s, t_host, False)
    fixed = (eff.step_overhead_s + n * eff.layer_overhead_s + t_dev + t_host
             + communication_seconds(d, comm, 1, eff.allreduce_latency_s) + kp.tp_allreduce_bytes_seconds(d, B))

    kv_share = 1 if spec.mla is not None else tp
    g_dev, win_dev = kv_read_bytes_per_token(d, kv, dev_lo, dev_hi)
    g_host, win_host = kv_read_bytes_per_token(d, kv, host_lo, host_hi)
    g_s = g_dev / kv_share / r.kv_bytes_per_s + g_host / r.host_kv_bytes_per_s
    win_s = win_dev / kv_share / r.kv_bytes_per_s + win_host / r.host_kv_bytes_per_s
    window = spec.architecture.sliding_window if window_applies(d) else None
    scalar = is_scalar(fixed, g_s)
    weight_bytes = w_dev * tp + w_host
    return DecodeCoefficients(
        fixed_s=fixed, global_s_per_token=g_s, window_s_per_token=win_s, window=window, batch=B,
        bound=("compute" if compute else "memory") if scalar else compute,
        weight_read_bytes=int(weight_bytes) if scalar else weight_bytes,
        kv_bytes_per_context_token=g_dev + win_dev + g_host + win_host, flops_per_step=f_dev * tp + f_host,
        bound_path=(path if compute else kp.MEMORY) if scalar else None,
    )
