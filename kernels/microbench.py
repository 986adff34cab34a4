"""Micro-benchmarks: copy bandwidth, batch-1 GEMV bandwidth, GEMM throughput, decode attention bandwidth.

Definitions follow docs/physics.md §7.1:

* copy:      ``y.copy_(x)``; bytes/s = 2 · size_bytes / t  (one read plus one write)
* read:      ``x.sum()``; bytes/s = size_bytes / t  (a read-only stream, the access pattern of decode)
* GEMV:      ``x[1, K] @ Wᵀ`` over several distinct weights whose total exceeds the last-level cache, so the
             cache cannot flatter the result; bytes/s = Σ weight bytes / t (the tiny x and y are ignored)
* GEMM:      ``x[M, K] @ Wᵀ``; FLOP/s = 2 · M · K · N / t
* attention: ``scaled_dot_product_attention(q[B, H, 1, D], k[B, Hkv, L, D], v, enable_gqa=True)``;
             bytes/s = KV bytes / t = 2 · B · Hkv · L · D · elem_bytes / t

Each function returns a frozen dataclass of plain ints/floats/strings with ``to_dict()``. torch is
imported lazily. Times are the median over repeats; p20/p80 are kept for the spread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from planner.kernels.shapes import ModelDims, matmul_shapes
from planner.kernels.timing import Timing, device_sync, import_torch, time_calls

MIB = 1024**2


def dtype_for(device: str, name: str | None = None) -> Any:
    """torch dtype by name, defaulting to bf16 on CUDA, fp16 on MPS and fp32 on CPU."""
    torch = import_torch()
    if name is None:
        name = {"cuda": "bfloat16", "mps": "float16"}.get(device.split(":")[0], "float32")
    return getattr(torch, name)


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class _Result:
    seconds: float
    seconds_p20: float
    seconds_p80: float
    n_repeats: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        return cls(**data)


def _timing_fields(t: Timing) -> dict[str, float | int]:
    return {"seconds": t.median_s, "seconds_p20": t.p20_s, "seconds_p80": t.p80_s, "n_repeats": t.n}


@dataclass(frozen=True)
class CopyResult(_Result):
    device: str
    dtype: str
    size_bytes: int
    bytes_per_s: float


@dataclass(frozen=True)
class ReadResult(_Result):
    device: str
    dtype: str
    size_bytes: int
    bytes_per_s: float


@dataclass(frozen=True)
class GemvResult(_Result):
    device: str
    dtype: str
    in_features: int
    out_features: int
    n_matrices: int
    weight_bytes: int
    bytes_per_s: float


@dataclass(frozen=True)
class GemmResult(_Result):
    device: str
    dtype: str
    m: int
    k: int
    n: int
    flops: int
    flops_per_s: float


@dataclass(frozen=True)
class AttentionResult(_Result):
    device: str
    dtype: str
    batch: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    context: int
    kv_bytes: int
    bytes_per_s: float


def copy_bandwidth(
    device: str, size_bytes: int = 256 * MIB, dtype: str | None = None, warmup: int = 2, repeats: int = 10
) -> CopyResult:
    """Device-to-device copy of ``size_bytes``; bytes_per_s = 2 · size_bytes / median seconds."""
    torch = import_torch()
    dt = dtype_for(device, dtype)
    elem = torch.empty((), dtype=dt).element_size()
    n = size_bytes // elem
    src = torch.ones(n, device=device, dtype=dt)
    dst = torch.empty_like(src)
    t = time_calls(lambda: dst.copy_(src), device, warmup, repeats)
    size = n * elem
    return CopyResult(
        **_timing_fields(t), device=device, dtype=dtype_name(dt), size_bytes=size,
        bytes_per_s=2 * size / t.median_s,  # read + write
    )


def read_bandwidth(
    device: str, size_bytes: int = 256 * MIB, dtype: str | None = None, warmup: int = 2, repeats: int = 10
) -> ReadResult:
    """Sum-reduce a ``size_bytes`` buffer; bytes_per_s = size_bytes / median seconds (reads only)."""
    torch = import_torch()
    dt = dtype_for(device, dtype)
    elem = torch.empty((), dtype=dt).element_size()
    src = torch.ones(size_bytes // elem, device=device, dtype=dt)
    t = time_calls(src.sum, device, warmup, repeats)
    size = src.numel() * elem
    return ReadResult(
        **_timing_fields(t), device=device, dtype=dtype_name(dt), size_bytes=size, bytes_per_s=size / t.median_s
    )


def gemv_bandwidth(
    device: str,
    in_features: int,
    out_features: int,
    total_bytes: int = 512 * MIB,
    dtype: str | None = None,
    warmup: int = 2,
    repeats: int = 10,
) -> GemvResult:
    """Batch-1 ``x @ Wᵀ`` cycled over ⌈total_bytes / bytes(W)⌉ distinct W [N, K]; bytes_per_s = Σ bytes(W) / t."""
    torch = import_torch()
    dt = dtype_for(device, dtype)
    elem = torch.empty((), dtype=dt).element_size()
    one = in_features * out_features * elem
    count = max(2, -(-total_bytes // one))  # ceil; at least two so consecutive calls never reuse W
    weights = [torch.randn(out_features, in_features, device=device, dtype=dt) for _ in range(count)]
    x = torch.randn(1, in_features, device=device, dtype=dt)
    linear = torch.nn.functional.linear

    def run() -> None:
        for w in weights:
            linear(x, w)

    with torch.inference_mode():
        t = time_calls(run, device, warmup, repeats)
    return GemvResult(
        **_timing_fields(t), device=device, dtype=dtype_name(dt), in_features=in_features,
        out_features=out_features, n_matrices=count, weight_bytes=count * one,
        bytes_per_s=count * one / t.median_s,
    )


def gemm_throughput(
    device: str, m: int, k: int, n: int, dtype: str | None = None, warmup: int = 2, repeats: int = 10
) -> GemmResult:
    """``x[M, K] @ Wᵀ`` with W [N, K]; flops = 2·M·K·N; flops_per_s = flops / median seconds."""
    torch = import_torch()
    dt = dtype_for(device, dtype)
    x = torch.randn(m, k, device=device, dtype=dt)
    w = torch.randn(n, k, device=device, dtype=dt)
    with torch.inference_mode():
        t = time_calls(lambda: torch.nn.functional.linear(x, w), device, warmup, repeats)
    flops = 2 * m * k * n  # one multiply and one add per term
    return GemmResult(
        **_timing_fields(t), device=device, dtype=dtype_name(dt), m=m, k=k, n=n, flops=flops,
        flops_per_s=flops / t.median_s,
    )


def attention_bandwidth(
    device: str,
    batch: int,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    context: int,
    dtype: str | None = None,
    warmup: int = 2,
    repeats: int = 10,
) -> AttentionResult:
    """One decode query per sequence against a KV cache of ``context`` tokens, GQA via ``enable_gqa=True``.

    kv_bytes = 2 · batch · n_kv_heads · context · head_dim · elem_bytes (K and V); bytes_per_s = kv_bytes / t.
    """
    torch = import_torch()
    dt = dtype_for(device, dtype)
    q = torch.randn(batch, n_heads, 1, head_dim, device=device, dtype=dt)
    k = torch.randn(batch, n_kv_heads, context, head_dim, device=device, dtype=dt)
    v = torch.randn_like(k)
    sdpa = torch.nn.functional.scaled_dot_product_attention
    with torch.inference_mode():
        t = time_calls(lambda: sdpa(q, k, v, enable_gqa=n_heads != n_kv_heads), device, warmup, repeats)
    kv_bytes = 2 * batch * n_kv_heads * context * head_dim * k.element_size()  # K and V
    device_sync(device)
    return AttentionResult(
        **_timing_fields(t), device=device, dtype=dtype_name(dt), batch=batch, n_heads=n_heads,
        n_kv_heads=n_kv_heads, head_dim=head_dim, context=context, kv_bytes=kv_bytes,
        bytes_per_s=kv_bytes / t.median_s,
    )


# Vector instructions per multiply-accumulate of the two reference kernels, so that a measured MAC rate
# becomes the SIMD issue rate planner.physics.cpu divides llama.cpp's per-weight work by: an fp32 GEMV
# spends one load and one FMA per 8 lanes (2/8 = 0.25, as ggml_vec_dot_f32); fbgemm's int8 kernel
# (quantized dynamic Linear) one load, vpmaddubsw, vpmaddwd and vpaddd per 32 int8 pairs (4/32).
VECTOR_OPS_PER_MAC = {"fp32-gemv": 0.25, "int8-dot": 0.125}


@dataclass(frozen=True)
class SimdResult(_Result):
    device: str
    kernel: str  # 'fp32-gemv' or 'int8-dot'
    threads: int
    macs: int  # multiply-accumulates per timed call
    macs_per_s: float
    vector_ops_per_s: float


def _int8_linear(k: int, n: int) -> Any:
    """A torch dynamically quantized Linear (int8 weights, per-call int8 activations; fbgemm on x86)."""
    import warnings

    torch = import_torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = torch.nn.Sequential(torch.nn.Linear(k, n, bias=False))
        return torch.ao.quantization.quantize_dynamic(layer, {torch.nn.Linear}, dtype=torch.qint8)


def simd_rate(kernel: str, k: int = 1024, n: int = 1024, calls: int = 8, warmup: int = 2,
              repeats: int = 10) -> SimdResult:
    """Batch-1 dot products over one weight matrix small enough to stay in the last-level cache
    (fp32: 4 MiB, int8: 1 MiB at the default shape), so the SIMD units, not DRAM, set the rate:
    macs_per_s = calls · K · N / t, vector_ops_per_s = macs_per_s · VECTOR_OPS_PER_MAC[kernel]."""
    torch = import_torch()
    if kernel == "fp32-gemv":
        w = torch.randn(n, k)
        x = torch.randn(1, k)

        def one() -> None:
            torch.nn.functional.linear(x, w)
    elif kernel == "int8-dot":
        layer = _int8_linear(k, n)
        x = torch.randn(1, k)

        def one() -> None:
            layer(x)
    else:
        raise ValueError(f"unknown SIMD kernel {kernel!r}")

    def run() -> None:
        for _ in range(calls):
            one()

    with torch.inference_mode():
        t = time_calls(run, "cpu", warmup, repeats)
    macs = calls * k * n
    return SimdResult(**_timing_fields(t), device="cpu", kernel=kernel, threads=int(torch.get_num_threads()),
                      macs=macs, macs_per_s=macs / t.median_s,
                      vector_ops_per_s=macs / t.median_s * VECTOR_OPS_PER_MAC[kernel])


def roof_measures(device: str, stream_bytes: int, dtype: str | None) -> dict[str, Callable[[], Any]]:
    """The roofs measured in interleaved rounds: bandwidth, and on CPU the single-thread SIMD rates
    (one thread: a batch-1 int8 kernel on a thread pool stalls when the cores are shared)."""
    measures: dict[str, Callable[[], Any]] = {
        "copy": lambda: copy_bandwidth(device, stream_bytes, dtype, warmup=1, repeats=5),
        "read": lambda: read_bandwidth(device, stream_bytes, dtype, warmup=1, repeats=5),
    }
    if device == "cpu":
        for kernel in ("fp32-gemv", "int8-dot"):
            measures[kernel] = lambda kernel=kernel: single_thread(
                lambda: simd_rate(kernel, warmup=1, repeats=5))
    return measures


def single_thread(fn: Callable[[], Any]) -> Any:
    torch = import_torch()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def gemv_suite(
    device: str, dims: ModelDims, quick: bool, stream_bytes: int, dtype: str | None, note: Callable[[str], None]
) -> list[GemvResult]:
    """Batch-1 GEMV over the layer's largest matrices (and the LM head in the full mode)."""
    shapes = matmul_shapes(dims)
    gemv_shapes = [shapes["w_gate_up"], shapes["w_down"]] + ([] if quick else [(dims.hidden, dims.vocab)])
    gemv = []
    for k, n in gemv_shapes:
        note(f"GEMV {k}x{n}")
        gemv.append(gemv_bandwidth(device, k, n, 2 * stream_bytes, dtype))
    return gemv


def gemm_and_attention(
    device: str, dims: ModelDims, grid: dict[str, list[int]], dtype: str | None, note: Callable[[str], None]
) -> tuple[list[GemmResult], list[AttentionResult]]:
    """Full mode only: GEMM throughput at growing batch, and attention bandwidth over the grid's contexts."""
    gemm, attention = [], []
    k, n = matmul_shapes(dims)["w_gate_up"]
    for m in sorted({*grid["batches"], 128, 512, 2048}):
        note(f"GEMM {m}x{k}x{n}")
        gemm.append(gemm_throughput(device, m, k, n, dtype))
    for ctx in grid["contexts"]:
        note(f"attention over {ctx} cached tokens")
        attention.append(
            attention_bandwidth(device, 1, dims.n_heads, dims.n_kv_heads, dims.head_dim, ctx, dtype)
        )
    return gemm, attention
