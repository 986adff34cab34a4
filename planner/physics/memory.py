"""Memory breakdown of one deployment: weights, KV cache and overhead, device and host.

Pure: takes a resolved ``Deployment`` and returns a ``MemoryBreakdown``. Engine-specific rules live in
``planner.physics.engines``; this module adds them up and decides whether the deployment fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from planner.physics import engines as eng
from planner.errors import FieldError
from planner.physics.arith import maximum, minimum, prefix_sums, span_sum, where
from planner.physics.kvcache import KVDType, kv_cache_bytes, kv_cache_bytes_span
from planner.physics.quant import Engine
from planner.spec.schema import DeviceKind, HardwareProfile
from planner.physics.workload import Deployment


class MemoryBreakdown(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weights_bytes: int = Field(description="all weights in this format: the model file")
    device_weights_bytes: int = Field(description="weights resident in device memory (all GPUs)")
    host_weights_bytes: int = Field(description="weights resident in host memory")
    kv_cache_bytes: int = Field(description="KV cache in device memory")
    host_kv_cache_bytes: int = 0
    overhead_bytes: int = Field(description="buffers and per-process costs in device memory")
    overhead: dict[str, int] = Field(default_factory=dict, description="the overhead's parts")
    total_bytes: int = Field(description="device memory needed")
    device_bytes: int = Field(description="device memory the engine may use")
    fits: bool
    headroom_bytes: int
    host_bytes: int = Field(description="host memory needed beyond the device")
    per_gpu_bytes: int = Field(description="device memory needed on the most loaded GPU")
    kv_cache_tokens: int | None = Field(
        default=None, description="tokens the engine's KV pool holds when it takes all free memory (vLLM)"
    )


def usable_device_bytes(hw: HardwareProfile, engine: Engine) -> int:
    """Memory one device lends the engine: a unified-memory GPU's default working-set share,
    vLLM's gpu_memory_utilization share of the total, else all of it."""
    total = hw.memory_bytes
    if hw.kind is DeviceKind.unified and hw.unified_memory is not None:
        total = int(total * hw.unified_memory.gpu_fraction)
    if engine is Engine.vllm:
        total = int(total * eng.VLLM_GPU_MEMORY_UTILIZATION)
    return total


@dataclass(frozen=True)
class MemoryParts:
    """Bytes of one deployment by part; each may be an int (``plan``) or a numpy array (the search grid,
    over host layers, context and concurrency)."""

    device_weights: object
    host_weights: object
    kv_cache: object
    host_kv_cache: object
    overhead: dict[str, object]
    per_gpu: object
    extra_ok: object = True  # engine-specific conditions beyond capacity (host RAM, CUDA context)

    @cached_property
    def overhead_total(self):
        return sum(self.overhead.values())

    @cached_property
    def total(self):
        return self.device_weights + self.kv_cache + self.overhead_total


def per_gpu_bytes(device_bytes, overhead_bytes, num_gpus: int):
    """The most loaded GPU's share: weights and KV split evenly, and the per-GPU overheads."""
    return device_bytes // num_gpus + overhead_bytes // num_gpus


def memory_fits(parts: MemoryParts, usable_bytes: int, num_gpus: int):
    """The total fits all GPUs together, the most loaded GPU fits its own memory, and the engine's extra
    conditions hold (``&`` serves Python bools and numpy arrays alike)."""
    return (parts.total <= usable_bytes * num_gpus) & (parts.per_gpu <= usable_bytes) & parts.extra_ok


def _result(d: Deployment, parts: MemoryParts, kv_tokens: int | None = None) -> MemoryBreakdown:
    usable = usable_device_bytes(d.hardware, d.engine)
    capacity = usable * d.num_gpus
    total = parts.total
    return MemoryBreakdown(
        weights_bytes=d.layout.file_bytes,
        device_weights_bytes=parts.device_weights,
        host_weights_bytes=parts.host_weights,
        kv_cache_bytes=parts.kv_cache,
        host_kv_cache_bytes=parts.host_kv_cache,
        overhead_bytes=parts.overhead_total,
        overhead=parts.overhead,
        total_bytes=total,
        device_bytes=capacity,
        fits=bool(memory_fits(parts, usable, d.num_gpus)),
        headroom_bytes=capacity - total,
        host_bytes=parts.host_weights + parts.host_kv_cache,
        per_gpu_bytes=parts.per_gpu,
        kv_cache_tokens=kv_tokens,
    )


def layer_bytes_prefix(d: Deployment) -> tuple[int, ...]:
    return prefix_sums(d.layout.layer_bytes)


def llama_cpp_parts(d: Deployment, kv: KVDType, h, ctx, batch) -> MemoryParts:
    """llama.cpp / Ollama: token_embd stays in host memory; the first ``h`` layers and their KV stay in
    host RAM; the GPU holds the rest and the output layer (docs/physics.md §1.2, §2.5, §4.7)."""
    spec, wl, n = d.model, d.layout, d.model.architecture.n_layers
    full_cells, swa_cells = eng.llama_cpp_cells(spec, ctx, batch)
    kv_dev = kv_cache_bytes_span(spec, kv, full_cells, swa_cells, h, n)
    kv_host = kv_cache_bytes_span(spec, kv, full_cells, swa_cells, 0, h)
    prefix = layer_bytes_prefix(d)
    dev_w = span_sum(prefix, h, n) + wl.output_bytes + wl.other_bytes
    host_w = wl.token_embd_bytes + span_sum(prefix, 0, h)
    compute = eng.llama_cpp_compute_buffer_bytes(spec, ctx, batch)
    if d.num_gpus > 1:  # pipeline copies of the compute buffer only when every layer is on the GPUs
        compute = where(h == 0, compute * eng.LLAMA_CPP_PIPELINE_COPIES, compute)
    overhead = {
        "compute_buffer": compute * d.num_gpus,
        "runtime": eng.runtime_context_bytes(d.hardware, d.engine) * d.num_gpus,
    }
    if d.hardware.kind is DeviceKind.cpu:  # the device *is* host memory: everything lands in it
        dev_w, host_w, kv_dev, kv_host = dev_w + host_w, 0 * host_w, kv_dev + kv_host, 0 * kv_host
        host_ok = True
    else:  # with offload the host must hold the layers and KV kept there
        host_ok = True if d.host is None else (h == 0) | (host_w + kv_host <= d.host.memory_bytes)
    return MemoryParts(dev_w, host_w, kv_dev, kv_host, overhead,
                       per_gpu_bytes(dev_w + kv_dev, sum(overhead.values()), d.num_gpus), host_ok)


def _tp_kv_heads(d: Deployment) -> int:
    """KV heads per tensor-parallel rank; replicated when TP exceeds the head count (vLLM)."""
    return max(1, d.model.architecture.n_kv_heads // d.tp)


def _vllm_kv_layout(d: Deployment) -> tuple[int, int | None]:
    """(ranks factor, KV heads over all ranks): every TP rank holds its share of heads, or all of an MLA
    latent, so the cache over all ranks is (factor × the bytes of ``heads`` heads)."""
    if d.model.mla is not None:
        return d.tp, None
    return 1, _tp_kv_heads(d) * d.tp


def vllm_parts(d: Deployment, kv: KVDType, ctx, batch) -> MemoryParts:
    """vLLM: weights sharded over TP × PP ranks; a paged KV pool in 16-token blocks that takes what is
    left of gpu_memory_utilization × total after weights, the profiled activation peak, non-torch
    memory and CUDA graphs; the CUDA context sits outside that share (docs/physics.md §2.6, §3.3)."""
    spec = d.model
    max_tokens, max_seqs = eng.vllm_batch_defaults(d.hardware)
    full_cells, swa_cells = eng.vllm_cells(spec, ctx, max_tokens)
    ranks_factor, heads = _vllm_kv_layout(d)
    kv_bytes = kv_cache_bytes_span(spec, kv, full_cells, swa_cells, n_kv_heads=heads) * ranks_factor * batch
    activation = eng.activation_peak_bytes(spec, max_tokens // d.tp, min(max_tokens, max_seqs))
    per_gpu_over = activation + eng.VLLM_NON_TORCH_BYTES + eng.VLLM_CUDA_GRAPH_BYTES
    if d.num_gpus > 1:
        per_gpu_over += eng.VLLM_NCCL_BYTES
    overhead = {"activation_peak": activation * d.num_gpus,
                "non_torch": (per_gpu_over - activation - eng.VLLM_CUDA_GRAPH_BYTES) * d.num_gpus,
                "cuda_graphs": eng.VLLM_CUDA_GRAPH_BYTES * d.num_gpus}
    weights = d.layout.file_bytes
    per_gpu = (weights + kv_bytes) // d.num_gpus + per_gpu_over
    context_fits = eng.runtime_context_bytes(d.hardware, d.engine) <= d.hardware.memory_bytes - \
        usable_device_bytes(d.hardware, d.engine)
    return MemoryParts(weights + 0 * kv_bytes, 0 * kv_bytes, kv_bytes, 0 * kv_bytes, overhead, per_gpu, context_fits)


def _vllm(d: Deployment) -> MemoryBreakdown:
    if d.host_layers:
        raise FieldError("vLLM does not offload layers to host memory here; use {engine} llama.cpp", "engine")
    parts = vllm_parts(d, d.kv_dtype, d.workload.ctx, d.workload.batch)
    budget = usable_device_bytes(d.hardware, d.engine) * d.num_gpus
    pool = budget - parts.device_weights - parts.overhead_total
    # Pool capacity in tokens as vLLM logs it ("GPU KV cache size: N tokens"): bytes of one token in every
    # layer; sliding-window layers need fewer, so long sequences of SWA models fit somewhat more.
    ranks_factor, heads = _vllm_kv_layout(d)
    per_token_all_ranks = max(1, kv_cache_bytes(d.model, d.kv_dtype, 1, 1, n_kv_heads=heads) * ranks_factor)
    return _result(d, parts, kv_tokens=max(0, pool // per_token_all_ranks))


def torch_parts(d: Deployment, kv: KVDType, ctx, batch) -> MemoryParts:
    """Plain PyTorch / transformers: weights in device memory (device_map splits layers over GPUs),
    an unpadded KV cache of batch × ctx tokens (sliding layers keep their window), the prefill
    activation peak and last-token logits, and the CUDA context per GPU."""
    spec = d.model
    window = spec.architecture.sliding_window
    swa = minimum(ctx, window) if window else ctx
    kv_bytes = kv_cache_bytes_span(spec, kv, ctx, swa) * batch
    act_tokens = batch * maximum(1, minimum(d.workload.prompt_tokens, ctx))
    elem = 4 if d.quant.id == "f32" else 2
    overhead = {"activation_peak": eng.activation_peak_bytes(spec, act_tokens, batch, elem)}
    if d.hardware.kind is not DeviceKind.cpu:
        overhead["runtime"] = eng.runtime_context_bytes(d.hardware, d.engine) * d.num_gpus
    weights = d.layout.file_bytes
    per_gpu = per_gpu_bytes(weights + kv_bytes, sum(overhead.values()), d.num_gpus)
    return MemoryParts(weights + 0 * kv_bytes, 0 * kv_bytes, kv_bytes, 0 * kv_bytes, overhead, per_gpu)


def memory_parts(d: Deployment, kv: KVDType, h, ctx, batch) -> MemoryParts:
    """The engine's memory rule for any (host layers, context, concurrency), scalars or arrays."""
    if d.engine.reads_gguf:
        return llama_cpp_parts(d, kv, h, ctx, batch)
    if d.engine is Engine.vllm:
        return vllm_parts(d, kv, ctx, batch)
    return torch_parts(d, kv, ctx, batch)


def memory_breakdown(d: Deployment) -> MemoryBreakdown:
    if d.engine is Engine.vllm:
        return _vllm(d)
    if d.host_layers and not d.engine.reads_gguf:
        raise FieldError("offload with {engine} torch is not modelled; use {engine} llama.cpp", "engine")
    w = d.workload
    return _result(d, memory_parts(d, d.kv_dtype, d.host_layers, w.ctx, w.batch))
