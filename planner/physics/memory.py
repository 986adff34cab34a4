"""Memory breakdown of one deployment: weights, KV cache and overhead, device and host.

Pure: takes a resolved ``Deployment`` and returns a ``MemoryBreakdown``. Engine-specific rules live in
``planner.physics.engines``; this module adds them up and decides whether the deployment fits.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from planner.physics import engines as eng
from planner.errors import InputError
from planner.physics.kvcache import kv_cache_bytes
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


def _result(d: Deployment, *, device_w: int, host_w: int, kv: int, host_kv: int, overhead: dict[str, int],
            per_gpu: int, host_extra: int = 0, kv_tokens: int | None = None, extra_ok: bool = True,
            ) -> MemoryBreakdown:
    over = sum(overhead.values())
    total = device_w + kv + over
    capacity = usable_device_bytes(d.hardware, d.engine) * d.num_gpus
    per_gpu_capacity = usable_device_bytes(d.hardware, d.engine)
    fits = total <= capacity and per_gpu <= per_gpu_capacity and extra_ok
    return MemoryBreakdown(
        weights_bytes=d.layout.file_bytes,
        device_weights_bytes=device_w,
        host_weights_bytes=host_w,
        kv_cache_bytes=kv,
        host_kv_cache_bytes=host_kv,
        overhead_bytes=over,
        overhead=overhead,
        total_bytes=total,
        device_bytes=capacity,
        fits=fits,
        headroom_bytes=capacity - total,
        host_bytes=host_w + host_kv + host_extra,
        per_gpu_bytes=per_gpu,
        kv_cache_tokens=kv_tokens,
    )


def _llama_cpp(d: Deployment) -> MemoryBreakdown:
    """llama.cpp / Ollama: token_embd stays in host memory; the first ``host_layers`` layers and their
    KV stay in host RAM; the GPU holds the rest and the output layer (docs/physics.md §1.2, §2.5, §4.7)."""
    spec, w, wl, h = d.model, d.workload, d.layout, d.host_layers
    n = spec.architecture.n_layers
    on_cpu_device = d.hardware.kind is DeviceKind.cpu
    full_cells, swa_cells = eng.llama_cpp_cells(spec, w.ctx, w.batch)
    kv_dev = kv_cache_bytes(spec, d.kv_dtype, full_cells, swa_cells, range(h, n))
    kv_host = kv_cache_bytes(spec, d.kv_dtype, full_cells, swa_cells, range(h))
    dev_w = sum(wl.layer_bytes[h:]) + wl.output_bytes + wl.other_bytes
    host_w = wl.token_embd_bytes + sum(wl.layer_bytes[:h])
    compute = eng.llama_cpp_compute_buffer_bytes(spec, w.ctx, w.batch)
    if d.num_gpus > 1 and h == 0:
        compute *= eng.LLAMA_CPP_PIPELINE_COPIES
    overhead = {
        "compute_buffer": compute * d.num_gpus,
        "runtime": eng.runtime_context_bytes(d.hardware, d.engine) * d.num_gpus,
    }
    if on_cpu_device:  # the device *is* host memory: everything lands in it
        dev_w, host_w, kv_dev, kv_host = dev_w + host_w, 0, kv_dev + kv_host, 0
    per_gpu = (dev_w + kv_dev) // d.num_gpus + sum(overhead.values()) // d.num_gpus
    # With offload the host must hold the layers and KV kept there (issue 3: "host memory must hold the rest").
    host_ok = not (h and d.host is not None and host_w + kv_host > d.host.memory_bytes)
    return _result(d, device_w=dev_w, host_w=host_w, kv=kv_dev, host_kv=kv_host, overhead=overhead,
                   per_gpu=per_gpu, extra_ok=host_ok)


def _tp_kv_heads(d: Deployment) -> int:
    """KV heads per tensor-parallel rank; replicated when TP exceeds the head count (vLLM)."""
    return max(1, d.model.architecture.n_kv_heads // d.tp)


def _vllm(d: Deployment) -> MemoryBreakdown:
    """vLLM: weights sharded over TP × PP ranks; a paged KV pool in 16-token blocks that takes what is
    left of gpu_memory_utilization × total after weights, the profiled activation peak, non-torch
    memory and CUDA graphs; the CUDA context sits outside that share (docs/physics.md §2.6, §3.3)."""
    if d.host_layers:
        raise InputError("vLLM does not offload layers to host memory here; use --engine llama.cpp")
    spec, w = d.model, d.workload
    max_tokens, max_seqs = eng.vllm_batch_defaults(d.hardware)
    full_cells, swa_cells = eng.vllm_cells(spec, w.ctx, max_tokens)
    # Every TP rank holds its share of heads (all of an MLA latent), so the total over ranks is:
    ranks_factor = d.tp if spec.mla is not None else 1
    heads = _tp_kv_heads(d) * d.tp if spec.mla is None else None
    kv_per_seq = kv_cache_bytes(spec, d.kv_dtype, full_cells, swa_cells, n_kv_heads=heads) * ranks_factor
    kv = kv_per_seq * w.batch
    activation = eng.activation_peak_bytes(spec, max_tokens // d.tp, min(max_tokens, max_seqs))
    per_gpu_over = activation + eng.VLLM_NON_TORCH_BYTES + eng.VLLM_CUDA_GRAPH_BYTES
    if d.num_gpus > 1:
        per_gpu_over += eng.VLLM_NCCL_BYTES
    overhead = {"activation_peak": activation * d.num_gpus,
                "non_torch": (per_gpu_over - activation - eng.VLLM_CUDA_GRAPH_BYTES) * d.num_gpus,
                "cuda_graphs": eng.VLLM_CUDA_GRAPH_BYTES * d.num_gpus}
    weights = d.layout.file_bytes
    per_gpu = (weights + kv) // d.num_gpus + per_gpu_over
    budget = usable_device_bytes(d.hardware, d.engine) * d.num_gpus
    pool = budget - weights - sum(overhead.values())
    # Pool capacity in tokens as vLLM logs it ("GPU KV cache size: N tokens"): bytes of one token in every
    # layer; sliding-window layers need fewer, so long sequences of SWA models fit somewhat more.
    per_token_all_ranks = max(1, kv_cache_bytes(spec, d.kv_dtype, 1, 1, n_kv_heads=heads) * ranks_factor)
    context_fits = eng.runtime_context_bytes(d.hardware, d.engine) <= d.hardware.memory_bytes - \
        usable_device_bytes(d.hardware, d.engine)
    return _result(d, device_w=weights, host_w=0, kv=kv, host_kv=0, overhead=overhead, per_gpu=per_gpu,
                   kv_tokens=max(0, pool // per_token_all_ranks), extra_ok=context_fits)


def _torch(d: Deployment) -> MemoryBreakdown:
    """Plain PyTorch / transformers: weights in device memory (device_map splits layers over GPUs),
    an unpadded KV cache of batch × ctx tokens (sliding layers keep their window), the prefill
    activation peak and last-token logits, and the CUDA context per GPU."""
    if d.host_layers:
        raise InputError("offload with --engine torch is not modelled; use --engine llama.cpp")
    spec, w = d.model, d.workload
    window = spec.architecture.sliding_window
    swa = min(w.ctx, window) if window else w.ctx
    kv = kv_cache_bytes(spec, d.kv_dtype, w.ctx, swa) * w.batch
    act_tokens = w.batch * max(1, min(w.prompt_tokens, w.ctx))
    elem = 4 if d.quant.id == "f32" else 2
    overhead = {
        "activation_peak": eng.activation_peak_bytes(spec, act_tokens, w.batch, elem),
        "runtime": eng.runtime_context_bytes(d.hardware, d.engine) * d.num_gpus,
    }
    weights = d.layout.file_bytes
    if d.hardware.kind is DeviceKind.cpu:
        overhead.pop("runtime")
    per_gpu = (weights + kv) // d.num_gpus + sum(overhead.values()) // d.num_gpus
    return _result(d, device_w=weights, host_w=0, kv=kv, host_kv=0, overhead=overhead, per_gpu=per_gpu)


def memory_breakdown(d: Deployment) -> MemoryBreakdown:
    if d.engine.reads_gguf:
        return _llama_cpp(d)
    if d.engine is Engine.vllm:
        return _vllm(d)
    return _torch(d)
