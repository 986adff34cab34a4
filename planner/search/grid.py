"""Vectorised evaluation of many candidate configurations at once (numpy).

``plan()`` answers one scenario; ``recommend`` and ``compare`` ask thousands (quant × KV dtype × host
layers × context × concurrency). Every term of the memory and latency models is, for a fixed
(quant, GPU count), an integer-exact function of four small axes:

* the KV dtype only scales bytes per token-layer;
* host layers ``h`` only move prefix sums of per-layer bytes, parameters and cache layers;
* the context only sets cache cells (padding rules of the engine) and the compute buffer;
* the concurrency multiplies cells, FLOPs and prefill tokens, and sets the roofline's max().

So a ``Group`` takes its coefficients from the scalar library once (``estimate.deployment``,
``engines``, ``kvcache``, ``latency.rates``, ``latency.decode_coefficients``' terms, the prefill terms)
and ``evaluate`` broadcasts them over arrays shaped (kv, h, ctx, batch). ``tests/test_recommend.py``
checks the results against ``planner.estimate.plan`` on sampled points: ``fits`` exactly, speeds to 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.physics import engines as eng
from planner.physics import latency
from planner.physics.efficiency import Efficiency, communication, default_efficiency
from planner.physics.kvcache import KVDType, kv_bytes_per_token_layer
from planner.physics.memory import usable_device_bytes
from planner.physics.performance import host_efficiency
from planner.physics.quant import Engine
from planner.physics.roofline import expected_distinct_experts
from planner.spec.schema import DeviceKind
from planner.spec.tensors import is_global_attention_layer
from planner.physics.workload import Deployment

I64 = np.int64


def _pad(x: np.ndarray, multiple: int) -> np.ndarray:
    return (x + multiple - 1) // multiple * multiple


def _prefix(values: list[int] | list[float], dtype=I64) -> np.ndarray:
    """prefix[h] = Σ_{i<h} values[i], for h = 0 … n."""
    return np.concatenate([np.zeros(1, dtype=dtype), np.cumsum(np.asarray(values, dtype=dtype))])


def _roofline(flops: np.ndarray, nbytes: np.ndarray, flops_per_s: float, bytes_per_s: float) -> np.ndarray:
    """planner.physics.roofline.roofline_seconds, elementwise."""
    with np.errstate(divide="ignore", invalid="ignore"):
        compute = np.where(flops != 0, flops / flops_per_s, 0.0)
        memory = np.where(nbytes != 0, nbytes / bytes_per_s, 0.0)
    return np.where(compute > memory, compute, memory)


@dataclass
class Grid:
    """Results over the broadcast shape (kv, h, ctx, batch); speeds have ctx length 1."""

    fits: np.ndarray  # device and host parts both fit (what ``MemoryBreakdown.fits`` says)
    device_fits: np.ndarray  # the device part fits (total and most loaded GPU)
    host_fits: np.ndarray  # the layers kept in host memory fit the host (True without offload)
    total_bytes: np.ndarray
    per_gpu_bytes: np.ndarray
    device_bytes: int
    weights_bytes: np.ndarray
    kv_cache_bytes: np.ndarray
    overhead_bytes: np.ndarray
    host_bytes: np.ndarray
    decode_tok_s: np.ndarray
    ttft_s: np.ndarray
    e2e_s: np.ndarray

    def headroom_ok(self, fraction: float) -> np.ndarray:
        """headroom_bytes ≥ fraction × device_bytes, as ``MemoryBreakdown`` would give them."""
        return (self.device_bytes - self.total_bytes) >= fraction * self.device_bytes

    @property
    def size(self) -> int:
        return int(self.fits.size)


class Group:
    """Coefficients of one (model, device, engine, quant, GPU count, prompt, gen) for every KV dtype,
    host-layer count, context and concurrency."""

    def __init__(self, d: Deployment, efficiency: Efficiency | None = None):
        self.d = d
        spec, wl, n = d.model, d.layout, d.model.architecture.n_layers
        self.n_layers = n
        self.G = d.num_gpus
        self.P, self.N = d.workload.prompt_tokens, d.workload.gen_tokens
        self.cpu = d.hardware.kind is DeviceKind.cpu
        self.eff = efficiency or default_efficiency(d.engine, d.hardware)
        self.host_eff = host_efficiency(d)
        self.comm = communication()
        self.rates = latency.rates(d, self.eff, self.host_eff, self.comm)
        self.usable = usable_device_bytes(d.hardware, d.engine)
        # Layers: bytes, expert bytes, attention kind, parameters.
        glob = [is_global_attention_layer(spec, i) for i in range(n)]
        self.n_global = sum(glob)
        self.global_prefix = _prefix([int(g) for g in glob])
        self.layer_prefix = _prefix(list(wl.layer_bytes))
        self.moe_read = bool(wl.layer_expert_bytes) and spec.moe is not None
        experts = list(wl.layer_expert_bytes) if self.moe_read else [0] * n
        self.expert_prefix = _prefix(experts)
        self.dense_prefix = _prefix([b - e for b, e in zip(wl.layer_bytes, experts)])
        head, _, dense_p, expert_p = latency.linear_params(spec)
        self.head_params = head
        frac = spec.moe.n_active_experts / spec.moe.n_experts if spec.moe else 1.0
        self.active_prefix = _prefix([dense_p[i] + expert_p[i] * frac for i in range(n)], np.float64)
        window_applies = latency.window_applies(d)
        self.decode_window = spec.architecture.sliding_window if window_applies else None
        self.windowed_prefix = _prefix([int(window_applies and not g) for g in glob])
        allreduce_s = getattr(self.eff, "allreduce_latency_s", None)
        base = latency.communication_seconds(d, self.comm, 0, allreduce_s)
        self.comm_per_chunk = latency.communication_seconds(d, self.comm, 1, allreduce_s) - base
        self.comm_base = base
        self.attn_flops = latency.prefill_attention_flops(d, self.P) if self.P > 0 else 0.0
        # Additive terms (per-step and per-layer overheads, pipeline hops) are taken from the scalar
        # functions at one point, so they stay in step with planner.physics.latency.
        zero, one = np.zeros((1, 1, 1, 1), dtype=I64), np.ones((1, 1, 1, 1), dtype=I64)
        k1 = latency.decode_coefficients(d.model_copy(update={"host_layers": 0}), self.eff, self.host_eff,
                                         self.comm, batch=1)
        self.fixed_const = 0.0
        self.fixed_const = k1.fixed_s - float(self._step_weights_s(zero, one).ravel()[0])
        self.prefill_const = 0.0
        if self.P > 0:
            s1, _ = latency.prefill_seconds(d.model_copy(update={"host_layers": 0}), self.eff, self.host_eff,
                                            self.comm, self.P, batch=1)
            self.prefill_const = s1 - float(self.prefill(zero, one).ravel()[0])

    # ------------------------------------------------------------------ memory
    def _kv_per_layer(self, kvs: list[KVDType]) -> np.ndarray:
        return np.array([kv_bytes_per_token_layer(self.d.model, k) for k in kvs], dtype=I64)[:, None, None, None]

    def _memory(self, kvs, h, C, B):
        d = self.d
        if d.engine.reads_gguf:
            return self._memory_llama_cpp(kvs, h, C, B)
        if d.engine is Engine.vllm:
            return self._memory_vllm(kvs, h, C, B)
        return self._memory_torch(kvs, h, C, B)

    def _memory_llama_cpp(self, kvs, h, C, B):
        d, spec, wl, n, G = self.d, self.d.model, self.d.layout, self.n_layers, self.G
        K = self._kv_per_layer(kvs)
        n_ctx = _pad(C * B, eng.LLAMA_CPP_CTX_PAD)
        n_ctx_seq = _pad(n_ctx // B, eng.LLAMA_CPP_CTX_PAD)
        full = n_ctx_seq * B
        window = spec.architecture.sliding_window
        if window is not None and spec.architecture.family in eng.LLAMA_CPP_SWA_FAMILIES:
            swa = _pad(np.minimum(n_ctx_seq, window + eng.LLAMA_CPP_N_UBATCH), eng.LLAMA_CPP_CTX_PAD) * B
        else:
            swa = full
        g_host = self.global_prefix[h]
        g_dev = self.n_global - g_host
        kv_dev = K * (g_dev * full + ((n - h) - g_dev) * swa)
        kv_host = K * (g_host * full + (h - g_host) * swa)
        dev_w = (self.layer_prefix[n] - self.layer_prefix[h]) + wl.output_bytes + wl.other_bytes
        host_w = wl.token_embd_bytes + self.layer_prefix[h]
        compute = eng.llama_cpp_compute_buffer_bytes(spec, 1, 1) * np.minimum(C * B, eng.LLAMA_CPP_N_UBATCH)
        if G > 1:
            compute = np.where(h == 0, compute * eng.LLAMA_CPP_PIPELINE_COPIES, compute)
        overhead = compute * G + eng.runtime_context_bytes(d.hardware, d.engine) * G
        if self.cpu:
            dev_w, host_w, kv_dev, kv_host = dev_w + host_w, 0 * host_w, kv_dev + kv_host, 0 * kv_host
        per_gpu = (dev_w + kv_dev) // G + overhead // G
        total = dev_w + kv_dev + overhead
        fits = (total <= self.usable * G) & (per_gpu <= self.usable)
        host_ok = np.ones_like(fits)
        if d.host is not None and not self.cpu:  # memory._llama_cpp: offloaded layers must fit host RAM
            host_ok = ~((h > 0) & (host_w + kv_host > d.host.memory_bytes))
        return fits, host_ok, total, per_gpu, dev_w + 0 * total, kv_dev, overhead, host_w + kv_host

    def _memory_vllm(self, kvs, h, C, B):
        d, spec, G = self.d, self.d.model, self.G
        tp = d.tp
        max_tokens, max_seqs = eng.vllm_batch_defaults(d.hardware)
        ranks_factor = tp if spec.mla is not None else 1
        heads = max(1, spec.architecture.n_kv_heads // tp) * tp if spec.mla is None else None
        K = np.array([kv_bytes_per_token_layer(spec, k, heads) for k in kvs], dtype=I64)[:, None, None, None]
        full_blocks = -(-C // eng.VLLM_BLOCK_TOKENS)
        window = spec.architecture.sliding_window
        full = full_blocks * eng.VLLM_BLOCK_TOKENS
        if window is None:
            swa = full
        else:
            swa_blocks = np.minimum(full_blocks, -(-np.minimum(window - 1 + max_tokens, C) // eng.VLLM_BLOCK_TOKENS) + 1)
            swa = swa_blocks * eng.VLLM_BLOCK_TOKENS
        n = self.n_layers
        kv = K * (self.n_global * full + (n - self.n_global) * swa) * ranks_factor * B
        activation = eng.activation_peak_bytes(spec, max_tokens // tp, min(max_tokens, max_seqs))
        per_gpu_over = activation + eng.VLLM_NON_TORCH_BYTES + eng.VLLM_CUDA_GRAPH_BYTES
        if G > 1:
            per_gpu_over += eng.VLLM_NCCL_BYTES
        overhead = (activation * G + (per_gpu_over - activation - eng.VLLM_CUDA_GRAPH_BYTES) * G
                    + eng.VLLM_CUDA_GRAPH_BYTES * G)
        weights = d.layout.file_bytes
        per_gpu = (weights + kv) // G + per_gpu_over
        total = weights + kv + overhead
        context_fits = eng.runtime_context_bytes(d.hardware, d.engine) <= d.hardware.memory_bytes - self.usable
        fits = (total <= self.usable * G) & (per_gpu <= self.usable) & context_fits
        return fits, np.ones_like(fits), total, per_gpu, weights + 0 * total, kv, overhead + 0 * total, 0 * total

    def _memory_torch(self, kvs, h, C, B):
        d, spec, G = self.d, self.d.model, self.G
        K = self._kv_per_layer(kvs)
        window = spec.architecture.sliding_window
        swa = np.minimum(C, window) if window else C
        n = self.n_layers
        kv = K * (self.n_global * C + (n - self.n_global) * swa) * B
        elem = 4 if d.quant.id == "f32" else 2
        per_token = eng.activation_peak_bytes(spec, 1, 0, elem)
        per_row = eng.activation_peak_bytes(spec, 0, 1, elem)
        act_tokens = B * np.maximum(1, np.minimum(self.P, C))
        overhead = act_tokens * per_token + B * per_row
        if not self.cpu:
            overhead = overhead + eng.runtime_context_bytes(d.hardware, d.engine) * G
        weights = d.layout.file_bytes
        per_gpu = (weights + kv) // G + overhead // G
        total = weights + kv + overhead
        fits = (total <= self.usable * G) & (per_gpu <= self.usable)
        return fits, np.ones_like(fits), total, per_gpu, weights + 0 * total, kv, overhead, 0 * total

    # ------------------------------------------------------------------ time
    def _weight_read(self, h: np.ndarray, tokens: np.ndarray, host: bool) -> np.ndarray:
        """latency.weight_read_bytes for layers range(0, h) (host) or range(h, n) (device)."""
        n = self.n_layers
        if host:
            lb, dense, exp = self.layer_prefix[h], self.dense_prefix[h], self.expert_prefix[h]
        else:
            lb = self.layer_prefix[n] - self.layer_prefix[h]
            dense = self.dense_prefix[n] - self.dense_prefix[h]
            exp = self.expert_prefix[n] - self.expert_prefix[h]
        if not self.moe_read:
            return lb.astype(np.float64) + 0.0 * tokens
        m = self.d.model.moe
        touched = expected_distinct_experts(m.n_experts, m.n_active_experts, tokens.astype(np.float64)) / m.n_experts
        return dense + touched * exp

    def _active(self, h: np.ndarray, host: bool) -> np.ndarray:
        n = self.n_layers
        v = self.active_prefix[h] if host else self.active_prefix[n] - self.active_prefix[h]
        return np.floor(v)

    def _split(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(device layers, host layers) counts; a CPU device holds every layer itself."""
        if self.cpu:
            return np.full_like(h, self.n_layers), np.zeros_like(h)
        return self.n_layers - h, h

    def _step_weights_s(self, h: np.ndarray, B: np.ndarray) -> np.ndarray:
        """Weight terms of a decode step: device and host rooflines (latency.decode_coefficients)."""
        d, r, tp = self.d, self.rates, self.d.tp
        hd = np.zeros_like(h) if self.cpu else h  # device layers are range(hd, n)
        w_dev = (self._weight_read(hd, B, host=False) + d.layout.output_bytes) / tp
        f_dev = 2.0 * (self._active(hd, host=False) + self.head_params) * B / tp
        t_dev = _roofline(f_dev, w_dev, r.flops_per_s, r.weight_bytes_per_s)
        w_host = self._weight_read(hd, B, host=True)
        f_host = 2.0 * self._active(hd, host=True) * B
        t_host = np.where(w_host != 0, _roofline(f_host, w_host, r.host_flops_per_s, r.host_weight_bytes_per_s), 0.0)
        return t_dev + t_host

    def decode_terms(self, kvs: list[KVDType], h: np.ndarray, B: np.ndarray):
        """(fixed_s, global_s_per_token, window_s_per_token) of latency.DecodeCoefficients, broadcast."""
        d, r, tp = self.d, self.rates, self.d.tp
        hd = np.zeros_like(h) if self.cpu else h
        fixed = self._step_weights_s(h, B) + self.fixed_const
        per_layer = np.array([kv_bytes_per_token_layer(d.model, k) for k in kvs], dtype=I64)[:, None, None, None]
        win_host = self.windowed_prefix[hd]
        win_dev = self.windowed_prefix[self.n_layers] - win_host
        n_dev, n_host = self.n_layers - hd, hd
        kv_share = 1 if d.model.mla is not None else tp
        g_s = per_layer * (n_dev - win_dev) / kv_share / r.kv_bytes_per_s + per_layer * (n_host - win_host) / r.host_kv_bytes_per_s
        w_s = per_layer * win_dev / kv_share / r.kv_bytes_per_s + per_layer * win_host / r.host_kv_bytes_per_s
        return fixed, g_s, w_s

    def decode_total(self, fixed, g_s, w_s, B, first_context: int, n_steps: int):
        """latency.decode_seconds_total, broadcast."""
        if n_steps <= 0:
            return 0.0 * fixed
        lo, hi = first_context, first_context + n_steps - 1
        w = self.decode_window
        capped = latency.sum_range_capped(lo, hi, w) if w else latency.sum_range(lo, hi)
        return n_steps * fixed + B * (g_s * latency.sum_range(lo, hi) + w_s * capped)

    def prefill(self, h: np.ndarray, B: np.ndarray) -> np.ndarray:
        """latency.prefill_seconds for every (h, batch), broadcast."""
        d, r, tp, n, P = self.d, self.rates, self.d.tp, self.n_layers, self.P
        total = B * P
        if d.engine.reads_gguf:
            chunk = np.minimum(eng.LLAMA_CPP_N_UBATCH, total)
        elif d.engine is Engine.vllm:
            chunk = np.minimum(eng.vllm_batch_defaults(d.hardware)[0], total)
        else:
            chunk = np.maximum(1, total)
        chunks = -(-total // chunk)
        flops = 2.0 * self._active(np.zeros_like(h), host=False) * total + 2.0 * self.head_params * B
        flops = flops + B * self.attn_flops
        _, n_host = self._split(h)
        hd = np.zeros_like(h) if self.cpu else h
        w_chunk = self._weight_read(hd, chunk, host=False) + d.layout.output_bytes
        t = _roofline(flops / tp, chunks * w_chunk / tp, r.flops_per_s, r.weight_bytes_per_s)
        w_host = self._weight_read(hd, chunk, host=True)
        if r.pcie_bytes_per_s:
            over_pcie = chunks * w_host / r.pcie_bytes_per_s
        else:
            over_pcie = 0.0 * w_host
        on_host = _roofline(flops * n_host / n, chunks * w_host, r.host_flops_per_s, r.host_weight_bytes_per_s)
        host_t = np.where((chunk >= 32) & (r.pcie_bytes_per_s > 0), over_pcie, on_host)
        t = t + np.where(n_host > 0, host_t, 0.0)
        if tp > 1:
            ic = d.hardware.interconnect
            link = ic.bandwidth_gb_per_s * 1e9 if ic else 25e9
            ar = 2 * n * total * d.model.architecture.hidden_size * 2 * 2 * (tp - 1) / tp
            t = t + ar / max(link, 1e9)
        t = t + chunks * n * self.eff.layer_overhead_s  # latency.PrefillCoefficients: per pass, per layer
        return t + (self.comm_per_chunk * chunks + self.comm_base) + self.prefill_const

    # ------------------------------------------------------------------ all together
    def evaluate(self, kvs: list[KVDType], h, ctx, batch) -> Grid:
        h = np.asarray(h, dtype=I64)[None, :, None, None]
        C = np.asarray(ctx, dtype=I64)[None, None, :, None]
        B = np.asarray(batch, dtype=I64)[None, None, None, :]
        device_fits, host_fits, total, per_gpu, weights, kv, overhead, host = self._memory(kvs, h, C, B)
        fixed, g_s, w_s = self.decode_terms(kvs, h, B)
        P, N = self.P, self.N
        decode = N / self.decode_total(fixed, g_s, w_s, B, P, N)
        if P > 0:
            ttft = self.prefill(h, B) + 0.0 * fixed
        else:
            ttft = fixed + B * 0.0
        e2e = ttft + self.decode_total(fixed, g_s, w_s, B, P + 1, N - 1)
        shape = np.broadcast_shapes(device_fits.shape, host_fits.shape, total.shape)
        device_fits, host_fits = np.broadcast_to(device_fits, shape), np.broadcast_to(host_fits, shape)
        return Grid(
            fits=device_fits & host_fits, device_fits=device_fits, host_fits=host_fits,
            total_bytes=np.broadcast_to(total, shape),
            per_gpu_bytes=np.broadcast_to(per_gpu, shape), device_bytes=self.usable * self.G,
            weights_bytes=np.broadcast_to(weights, shape), kv_cache_bytes=np.broadcast_to(kv, shape),
            overhead_bytes=np.broadcast_to(overhead, shape), host_bytes=np.broadcast_to(host, shape),
            decode_tok_s=decode, ttft_s=np.broadcast_to(ttft, np.broadcast_shapes(ttft.shape, decode.shape)),
            e2e_s=e2e,
        )
