"""llama.cpp's CPU compute roof: SIMD instructions per weight against the cores' issue rate (docs/cpu.md).

A batch-1 decode step on a CPU streams every weight once, but each weight also costs SIMD work: a
block of 32 quantized weights is unpacked (nibbles, high bits, signs), multiplied with the int8
activations and scaled. On a few cores that work, not DRAM, is the slower resource, so

    t_step = max(bytes / (η_w · BW), Σ_t n_t · ops_t / R),     R = threads · ops_per_cycle · clock

where n_t is the weights of storage type t one token multiplies through, ops_t the vector
instructions llama.cpp's dot kernel spends per weight of that type, and R the vector instructions
the cores issue per second. A profile measured by ``planner calibrate`` replaces R with the rate
the benchmark measured (the larger of a cache-resident fp32 GEMV and an int8 dot product).

The pure functions at the top work on floats and numpy arrays alike (no numpy import).
"""

from __future__ import annotations

from functools import lru_cache

from planner.physics.arith import prefix_sums, span_sum
from planner.physics.quant import _FALLBACK, F16, StorageType, gguf_tensor_type
from planner.physics.workload import Deployment
from planner.spec.schema import CpuCores, HardwareProfile, ModelSpec
from planner.spec.tensors import Role, tensor_inventory

# Sustained SIMD instructions per cycle per core on the vector units the dot kernels use. x86: two
# 256-bit vector ALU/FMA pipes (Intel Optimization Reference Manual, ports 0/1/5; AMD Zen 2-4 software
# optimization guides, four FP pipes of which two multiply); Zen 4 runs AVX-512 as two 256-bit halves,
# and llama.cpp's k-quant dot kernels are 256-bit even on AVX-512 parts, so AVX-512 and AMX issue the
# same 256-bit instructions here. Apple Firestorm and later: four 128-bit NEON pipes (Apple Silicon CPU
# Optimization Guide, 2023). NEON here means ARMv8.2+ with the dot-product extension (SDOT).
VECTOR_OPS_PER_CYCLE = {"sse": 2.0, "avx2": 2.0, "avx512": 2.0, "amx": 2.0, "neon": 4.0}

# Vector instructions per 32 weights in llama.cpp's batch-1 dot kernels (ggml_vec_dot_<type>_q8_*),
# counted in ggml/src/ggml-cpu/arch/x86/quants.c, AVX2 path (loads, unpacking, sign handling,
# maddubs/madd, int→float conversion and the scaled FMA; docs/cpu.md §2 shows each count).
# F32/F16/BF16: ggml_vec_dot_f32/f16/bf16 (simd-mappings.h): per 8 lanes one load + FMA (F32), two F16C
# conversions + FMA (F16), two widen-and-shift pairs + FMA (BF16 without AVX512-BF16).
X86_OPS_PER_32 = {
    "F32": 8.0, "F16": 12.0, "BF16": 20.0, "Q8_0": 9.0, "Q4_0": 13.0, "Q4_1": 12.0, "Q5_0": 18.0,
    "Q5_1": 17.0, "IQ4_NL": 12.0, "MXFP4": 12.0, "Q2_K": 10.0, "Q3_K": 13.0, "Q4_K": 9.0, "Q5_K": 13.0,
    "Q6_K": 14.0, "IQ4_XS": 11.0,
}
# NEON (arch/arm/quants.c with __ARM_FEATURE_DOTPROD): 128-bit vectors, SDOT does 16 int8 MACs; F16
# runs natively (FMLA .8h). Counted the same way (docs/cpu.md §2).
NEON_OPS_PER_32 = {
    "F32": 16.0, "F16": 8.0, "BF16": 16.0, "Q8_0": 8.0, "Q4_0": 11.0, "Q4_1": 11.0, "Q5_0": 16.0,
    "Q5_1": 16.0, "IQ4_NL": 11.0, "MXFP4": 11.0, "Q2_K": 11.0, "Q3_K": 14.0, "Q4_K": 9.0, "Q5_K": 13.0,
    "Q6_K": 13.0, "IQ4_XS": 11.0,
}
FLOAT_TYPES = frozenset({"F32", "F16", "BF16"})


def ops_per_weight(storage: str, simd: str) -> float:
    """Vector instructions per weight of a storage type on an ISA (table above / 32)."""
    table = NEON_OPS_PER_32 if simd == "neon" else X86_OPS_PER_32
    return table.get(storage.upper(), table["Q8_0"]) / 32.0


def default_threads(cpu: CpuCores) -> int:
    """llama.cpp's default ``-t``: the performance cores of a hybrid part, else the physical cores
    (common/common.cpp cpu_get_num_math)."""
    return cpu.performance_cores or cpu.physical_cores


def threads_used(cpu: CpuCores, requested: int | None) -> int:
    """Threads llama.cpp runs with: the request (capped at the hardware threads) or the default."""
    return min(requested, cpu.threads) if requested else default_threads(cpu)


def isa_vector_ops_per_s(threads_on_cores, ops_per_cycle, clock_hz):
    """R = threads × SIMD instructions per cycle × clock (floats or numpy arrays)."""
    return threads_on_cores * ops_per_cycle * clock_hz


def vector_ops_per_s(cpu: CpuCores, threads: int, integer: bool) -> float:
    """SIMD instructions per second with ``threads`` threads. SMT siblings share a core's vector
    pipes, so threads beyond the physical cores add nothing. A measured profile uses the larger of its
    two measured rates for both kinds of kernel (``integer`` only matters for future per-kind ISA
    tables): both time the same vector pipes, and a benchmark kernel's own overheads (torch's int8
    Linear quantizes its input on every call) can only make it show less than the pipes issue. The
    measured rate scales linearly from the measured thread count."""
    on_cores = min(threads, cpu.physical_cores)
    rates = [r for r in (cpu.measured_int_vector_ops_per_s, cpu.measured_float_vector_ops_per_s) if r]
    if rates and cpu.measured_threads:
        return max(rates) * on_cores / min(cpu.measured_threads, cpu.physical_cores)
    return isa_vector_ops_per_s(on_cores, VECTOR_OPS_PER_CYCLE[cpu.simd], cpu.clock_ghz * 1e9)


def compute_seconds(float_ops, int_ops, float_ops_per_s, int_ops_per_s):
    """Σ ops / rate over the two kinds of dot kernel (floats or numpy arrays)."""
    return float_ops / float_ops_per_s + int_ops / int_ops_per_s


def step_seconds(weight_bytes, bytes_per_s, compute_s):
    """max(bytes / bandwidth, compute) without branching, so numpy arrays work too; and whether the
    compute roof binds (a bool, or a bool array)."""
    memory_s = weight_bytes / bytes_per_s
    return (memory_s + compute_s + abs(memory_s - compute_s)) / 2, compute_s > memory_s


# ---------------------------------------------------------------------------------------------
# What one token costs on a model's tensors
# ---------------------------------------------------------------------------------------------


def _stored_type(row_length: int, st: StorageType) -> StorageType:
    """The type llama.cpp stores when rows are not a multiple of the block (tensor_type_fallback)."""
    while row_length % st.block_elements:
        st = _FALLBACK.get(st.name, F16)
    return st


@lru_cache(maxsize=256)
def weights_by_type(spec: ModelSpec, quant: str, first_layer: int, stop_layer: int,
                    head: bool) -> tuple[tuple[str, float], ...]:
    """Weights one token multiplies through in layers [first_layer, stop_layer) (and the output head),
    per GGUF storage type; routed experts count k/E of their weights."""
    frac = spec.moe.n_active_experts / spec.moe.n_experts if spec.moe else 1.0
    tied = spec.architecture.tie_word_embeddings
    out: dict[str, float] = {}
    for t in tensor_inventory(spec):
        is_head = t.role is Role.output or (t.role is Role.embedding and tied)
        in_layers = t.layer is not None and first_layer <= t.layer < stop_layer
        if is_head and head or in_layers and t.role in (Role.linear, Role.expert):
            st = _stored_type(t.row_length, gguf_tensor_type(spec, t, quant))
            n = t.rows * t.row_length * (t.copies * frac if t.role is Role.expert else t.copies)
            out[st.name] = out.get(st.name, 0.0) + n
    return tuple(sorted(out.items()))


@lru_cache(maxsize=128)
def layer_vector_ops(spec: ModelSpec, quant: str, simd: str) -> tuple[tuple[float, ...], tuple[float, ...], float, float]:
    """Per decoder layer (float-kernel ops, int-kernel ops) for one token, and the head's two: the form a
    vectorised evaluator needs (prefix sums over the layers kept on CPU cores)."""
    n = spec.architecture.n_layers
    per_layer = [token_vector_ops(spec, quant, range(i, i + 1), False, simd) for i in range(n)]
    head = token_vector_ops(spec, quant, range(0), True, simd)
    return tuple(f for f, _ in per_layer), tuple(i for _, i in per_layer), head[0], head[1]


def token_vector_ops(spec: ModelSpec, quant: str, layers: range, head: bool, simd: str) -> tuple[float, float]:
    """(float-kernel, int-kernel) vector instructions for one token through ``layers`` (+ head)."""
    float_ops = int_ops = 0.0
    for name, n in weights_by_type(spec, quant, layers.start, layers.stop, head):
        ops = n * ops_per_weight(name, simd)
        if name in FLOAT_TYPES:
            float_ops += ops
        else:
            int_ops += ops
    return float_ops, int_ops


CPU_SIMD = "cpu simd"  # the kernel path named in `bound_path` when the SIMD roof binds


def llama_cpp_decode_compute_seconds(spec: ModelSpec, quant: str, cpu_profile: HardwareProfile, threads: int | None,
                                     lo, hi, head: bool, tokens):
    """Seconds the CPU's SIMD units need for ``tokens`` tokens through layers [lo, hi) (and the head) in a
    decode step, or None when the profile does not describe its cores. Layer bounds and tokens may be
    numpy arrays (the search grid)."""
    cpu = cpu_profile.cpu
    if cpu is None:
        return None
    n_threads = threads_used(cpu, threads)
    float_layers, int_layers, float_head, int_head = layer_vector_ops(spec, quant, cpu.simd)
    float_ops = span_sum(_prefix(float_layers), lo, hi) + (float_head if head else 0.0)
    int_ops = span_sum(_prefix(int_layers), lo, hi) + (int_head if head else 0.0)
    return tokens * compute_seconds(float_ops, int_ops, vector_ops_per_s(cpu, n_threads, False),
                                    vector_ops_per_s(cpu, n_threads, True))


@lru_cache(maxsize=256)
def _prefix(values: tuple[float, ...]) -> tuple[float, ...]:
    return prefix_sums(values)


def decode_step_roof(d: Deployment, cpu_profile: HardwareProfile, lo, hi, head: bool, batch, weight_bytes,
                     bytes_per_s: float, otherwise_s, otherwise_compute):
    """llama.cpp on CPU cores: (max(weight bytes / bandwidth, SIMD work / issue rate), whether the SIMD
    roof binds); ``otherwise`` (the FLOP roofline) for other engines and for profiles that do not describe
    their cores. Scalars or numpy arrays alike."""
    if not d.engine.reads_gguf:
        return otherwise_s, otherwise_compute
    compute_s = llama_cpp_decode_compute_seconds(d.model, d.quant.id, cpu_profile, d.threads, lo, hi, head, batch)
    if compute_s is None:
        return otherwise_s, otherwise_compute
    return step_seconds(weight_bytes, bytes_per_s, compute_s)
