"""Which kernel runs a step, and the compute roof of that kernel (docs/accuracy.md §1).

A step takes max(bytes / effective bandwidth, operations / effective rate of the kernel that runs). The rate
is not the datasheet's tensor peak for every engine and batch:

* llama.cpp decodes a batch of at most ``LLAMA_CPP_MATVEC_MAX_BATCH`` tokens with its own mat-vec kernels on
  CUDA cores (MMVQ with dp4a INT8 dot products for quantized weights, a half-precision mat-vec for F16), or
  Metal's mat-vec kernels on Apple GPUs. Their throughput scales with SM (or GPU core) count x clock, not with
  tensor cores: ``matvec_flops_per_s = core_cycles_per_s x flops_per_core_cycle`` (fitted per format family).
* llama.cpp prefill runs its int8 MMA kernels (MMQ) for quantized weights and cuBLAS in FP16 (FP16 compute)
  for F16 weights: ``tensor_gemm_flops_per_s = core_cycles_per_s x tensor FP16 FLOP per SM-cycle x share``.
  The catalog's FP16 tensor figure for GeForce parts is the FP32-accumulate rate, half the FP16-accumulate
  rate that cuBLAS's FP16 compute reaches; the per-SM-cycle figure (``gpu_cores.tensor_fp16_flops_per_core_cycle``)
  is the FP16-accumulate one on every part, so GeForce and professional cards are treated alike.
* vLLM, PyTorch and Transformers run cuBLAS / tensor-core GEMMs: the dtype's tensor peak times an efficiency.

Every function here is arithmetic only, so it accepts plain floats and numpy arrays alike (the vectorised grid
evaluates whole arrays of configurations through the same formulas).
"""

from __future__ import annotations

from planner.physics.arith import maximum
from planner.physics.efficiency import Efficiency
from planner.physics.workload import Deployment
from planner.spec.schema import DeviceKind

# ggml-cuda's MMVQ / mat-vec kernels take batches of up to 8 columns (MMVQ_MAX_BATCH_SIZE = 8 in mmvq.cuh);
# larger batches go through MMQ or cuBLAS.
LLAMA_CPP_MATVEC_MAX_BATCH = 8

# llama.cpp's CUDA matrix kernels (MMQ, and the FP16 GEMMs of its builds of 2024-25) issue warp-level mma.sync
# instructions; Hopper's full tensor rate needs its asynchronous warp-group wgmma instructions (NVIDIA H100
# whitepaper; Luo et al., "Benchmarking and Dissecting the Nvidia Hopper GPU Architecture", arXiv:2402.13499),
# so these kernels are held to the per-SM rate of the previous generation's SM (A100: 2,048 dense FP16 FLOP
# per SM-cycle). Published H100 PCIe llama-bench prompt rates per SM-cycle match A100's within 6%
# (planner/data/measurements.csv, XiongjieDai rows).
MMA_SYNC_MAX_FLOPS_PER_CORE_CYCLE = 2048.0

MEMORY = "memory"
CUDA_CORE_MATVEC = "cuda-core mat-vec"
METAL_MATVEC = "metal mat-vec"
TENSOR_GEMM = "tensor-core gemm"
DATASHEET_PEAK = "datasheet peak"


def core_cycles_per_s(core_count, boost_clock_hz):
    """SM (or GPU core) cycles per second: count × clock. A100: 108 × 1.41e9 = 1.523e11."""
    return core_count * boost_clock_hz


def matvec_flops_per_s(core_cycles_per_second, flops_per_core_cycle):
    """Effective FLOP/s of a CUDA-core / Metal mat-vec kernel: core cycles per second × FLOP it completes per
    core cycle (fitted per weight format on published llama-bench rows)."""
    return core_cycles_per_second * flops_per_core_cycle


def mma_sync_flops_per_core_cycle(tensor_flops_per_core_cycle):
    """Dense FP16 FLOP per SM-cycle that warp-level mma.sync kernels reach: the SM's tensor rate, at most
    MMA_SYNC_MAX_FLOPS_PER_CORE_CYCLE (Hopper: 4,096 → 2,048)."""
    return tensor_flops_per_core_cycle - maximum(tensor_flops_per_core_cycle - MMA_SYNC_MAX_FLOPS_PER_CORE_CYCLE, 0.0)


def tensor_gemm_flops_per_s(core_cycles_per_second, tensor_flops_per_core_cycle, share):
    """Effective FLOP/s of llama.cpp's tensor-core GEMM path: core cycles/s × the mma.sync FP16 FLOP per
    core cycle × the share of it the kernel reaches. RTX 4090: 3.226e11 × 1,024 × share."""
    return core_cycles_per_second * mma_sync_flops_per_core_cycle(tensor_flops_per_core_cycle) * share


def memory_seconds(bytes_moved, bytes_per_s):
    """Time on the memory roof: bytes / (bytes/s)."""
    return bytes_moved / bytes_per_s


def attention_score_bytes(n_heads, pairs, bytes_per_pair_head):
    """Bytes of the attention-score matrices an engine without flash attention writes and reads back:
    n_heads × Σ (query, key) pairs × bytes per score per head (F32 KQ written, softmax read and written,
    KQV read: about 4 passes of 4 bytes)."""
    return n_heads * pairs * bytes_per_pair_head


def decode_kernel_path(reads_gguf: bool, vendor: str, has_core_rate: bool, batch: int) -> str:
    """Kernel path of a decode step's matmuls: llama.cpp's mat-vec kernels on CUDA cores or Metal for small
    batches where the device's core rate is known, a tensor/datasheet-peak GEMM otherwise."""
    if reads_gguf and has_core_rate and batch <= LLAMA_CPP_MATVEC_MAX_BATCH:
        if vendor == "nvidia":
            return CUDA_CORE_MATVEC
        if vendor == "apple":
            return METAL_MATVEC
    return DATASHEET_PEAK


def prefill_kernel_path(reads_gguf: bool, vendor: str, has_tensor_rate: bool) -> str:
    """Kernel path of prefill matmuls: llama.cpp's MMQ / cuBLAS-FP16 tensor-core path on NVIDIA when the
    per-SM tensor rate is known, the datasheet peak times an efficiency otherwise."""
    if reads_gguf and vendor == "nvidia" and has_tensor_rate:
        return TENSOR_GEMM
    return DATASHEET_PEAK


def kernel_path_rates(d: Deployment, eff: Efficiency, batch: int) -> tuple[str, float | None, str, float | None]:
    """(decode path, its FLOP/s, prefill path, its FLOP/s) from the device's core rate (docs/accuracy.md §1);
    a rate is None where the datasheet peak times an efficiency applies instead."""
    hw = d.hardware
    cycles = hw.core_cycles_per_s if hw.kind is not DeviceKind.cpu else None
    vendor = hw.vendor.value
    per_cycle = eff.matvec_rate_per_core_cycle(d.quant)
    decode_path = decode_kernel_path(d.engine.reads_gguf, vendor, bool(cycles and per_cycle), batch)
    decode_rate = matvec_flops_per_s(cycles, per_cycle) if decode_path != DATASHEET_PEAK else None
    tensor = hw.gpu_cores.tensor_fp16_flops_per_core_cycle if hw.gpu_cores else None
    share = eff.tensor_share(d.quant)
    prefill_path = prefill_kernel_path(d.engine.reads_gguf, vendor, bool(cycles and tensor and share))
    prefill_rate = tensor_gemm_flops_per_s(cycles, tensor, share) if prefill_path != DATASHEET_PEAK else None
    return decode_path, decode_rate, prefill_path, prefill_rate


def score_seconds_per_pair(d: Deployment, eff: Efficiency) -> float:
    """Seconds per (query, key) pair per layer spent moving attention scores through memory when the engine
    runs attention without flash attention: n_heads × bytes per pair per head / bandwidth / tp (docs/accuracy.md §1).
    The caller leaves it out when layers are kept in host memory (the fit saw no offloaded prompt rows)."""
    if not eff.score_bytes_per_pair_head:
        return 0.0
    bytes_per_pair = attention_score_bytes(d.model.architecture.n_heads, 1, eff.score_bytes_per_pair_head)
    return memory_seconds(bytes_per_pair, d.hardware.bandwidth_bytes_per_s) / d.tp


def ring_allreduce_seconds(tp, message_bytes, link_bytes_per_s):
    """Bandwidth term of a ring all-reduce: each GPU sends and receives 2(tp − 1)/tp of the message over its link
    (NCCL's ring algorithm); the latency term is added separately per link kind (efficiency.yaml communication)."""
    return 2.0 * (tp - 1) / tp * message_bytes / link_bytes_per_s


def tp_allreduce_bytes_seconds(d: Deployment, batch: int) -> float:
    """Decode: 2 all-reduces per layer of batch × hidden_size 16-bit activations over the GPUs' link (PCIe: the
    interconnect block's per-direction bandwidth); 0 without tensor parallelism."""
    if d.tp <= 1:
        return 0.0
    link = d.hardware.interconnect.bandwidth_gb_per_s * 1e9 if d.hardware.interconnect else 25e9
    message = batch * d.model.architecture.hidden_size * 2
    return 2 * d.model.architecture.n_layers * ring_allreduce_seconds(d.tp, message, max(link, 1e9))
