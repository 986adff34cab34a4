"""Quantization catalog: storage types, weight formats, and which tensor gets which type.

Storage types are block formats: ``block_elements`` weights stored in ``block_bytes`` bytes, scales
included, so bits per weight = 8 × block_bytes / block_elements. GGUF block sizes are the
``block_*`` structs of ggml's ``ggml-common.h`` (table in docs/physics.md §1.1).

A weight *format* (what users pick with ``--quant``) is a rule assigning a storage type to every
tensor. GGUF "mixes" (Q4_K_M, ...) upgrade some tensors: we re-implement the rules of llama.cpp's
``llama_tensor_get_type_impl`` (``src/llama-quant.cpp``, summarized in docs/physics.md §1.2) for the
formats below. GPU int4 formats (AWQ, GPTQ), bitsandbytes and FP8 quantize only the decoder's linear
layers and keep embeddings and the head in 16 bits (docs/physics.md §1.3-1.5).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import InputError
from planner.physics.names import Engine
from planner.spec.schema import Family, ModelSpec
from planner.spec.tensors import Role, Tensor


@dataclass(frozen=True)
class StorageType:
    name: str
    block_elements: int
    block_bytes: int

    @property
    def bits_per_weight(self) -> float:
        return 8 * self.block_bytes / self.block_elements


def _t(name: str, elements: int, nbytes: int) -> StorageType:
    return StorageType(name, elements, nbytes)


# ggml-common.h block structs (bytes per block include the f16 scales / mins).
F32 = _t("F32", 1, 4)
F16 = _t("F16", 1, 2)
BF16 = _t("BF16", 1, 2)
Q8_0 = _t("Q8_0", 32, 34)
Q6_K = _t("Q6_K", 256, 210)
Q5_K = _t("Q5_K", 256, 176)
Q5_0 = _t("Q5_0", 32, 22)
Q5_1 = _t("Q5_1", 32, 24)
Q4_K = _t("Q4_K", 256, 144)
Q4_0 = _t("Q4_0", 32, 18)
Q4_1 = _t("Q4_1", 32, 20)
IQ4_NL = _t("IQ4_NL", 32, 18)
IQ4_XS = _t("IQ4_XS", 256, 136)
Q3_K = _t("Q3_K", 256, 110)
Q2_K = _t("Q2_K", 256, 84)
MXFP4 = _t("MXFP4", 32, 17)  # OCP MX: 32 E2M1 values + one E8M0 scale byte
FP8 = _t("FP8", 1, 1)  # E4M3; per-tensor scales are a few bytes per matrix and ignored
INT8 = _t("INT8", 1, 1)

# Where a row length is not a multiple of the block, llama.cpp falls back to a type with smaller
# blocks (tensor_type_fallback in src/llama-quant.cpp).
_FALLBACK = {
    "Q2_K": Q4_0, "Q3_K": Q4_0, "Q4_K": Q5_0, "Q5_K": Q5_1, "Q6_K": Q8_0,
    "IQ4_XS": IQ4_NL, "MXFP4": Q8_0,
}


def tensor_bytes_gguf(t: Tensor, st: StorageType) -> int:
    """Bytes of a GGUF tensor: rows × (row_length / block) × block_bytes, after the block fallback."""
    while t.row_length % st.block_elements:
        st = _FALLBACK.get(st.name, F16)
    return t.rows * t.copies * (t.row_length // st.block_elements) * st.block_bytes


def _grouped_int4_bytes(t: Tensor, group: int, g_idx: bool) -> int:
    """AWQ/GPTQ 4-bit (vLLM GPTQLinearMethod / AWQLinearMethod): qweight int32 [in/8, out] (4 bit each),
    scales f16 [in/g, out], qzeros int32 [in/g, out/8] (4 bit each), and for GPTQ g_idx int32 [in]."""
    n_in, n_out = t.row_length, t.rows
    groups = -(-n_in // group)
    per_matrix = n_in * n_out // 2 + groups * n_out * 2 + groups * n_out // 2 + (4 * n_in if g_idx else 0)
    return per_matrix * t.copies


def _nf4_bytes(t: Tensor) -> int:
    """bitsandbytes quantize_4bit, blocksize 64, no double quantization: 4-bit codes + one fp32 absmax
    per 64 weights = 4.5 bits per weight (docs/physics.md §1.4)."""
    n = t.n_elements
    return n // 2 + (-(-n // 64)) * 4


def _int8_rowwise_bytes(t: Tensor) -> int:
    """8-bit weights with one fp32 scale per output row (bitsandbytes LLM.int8 SCB, W8A8 channelwise)."""
    return t.n_elements + 4 * t.rows * t.copies


@dataclass(frozen=True)
class QuantFormat:
    id: str
    description: str
    gguf: bool  # a llama.cpp file type
    hf: bool  # a Hugging Face checkpoint format (vLLM, transformers)
    compute_dtype: str  # the dtype matmuls run in, for peak FLOP/s
    family: str  # efficiency family for the latency model: float, kquant, gpu4bit, fp8, int8
    moe_only: bool = False


QUANTS: dict[str, QuantFormat] = {
    q.id: q
    for q in [
        QuantFormat("f32", "32-bit float", True, True, "fp32", "float"),
        QuantFormat("f16", "16-bit float", True, True, "fp16", "float"),
        QuantFormat("bf16", "bfloat16", True, True, "bf16", "float"),
        QuantFormat("fp8", "FP8 E4M3 weights (decoder linears), 16-bit head", False, True, "fp8", "fp8"),
        QuantFormat("int8", "8-bit rowwise weights (LLM.int8 / W8A8), 16-bit head", False, True, "int8", "int8"),
        QuantFormat("q8_0", "GGUF Q8_0, 8.5 bpw", True, False, "fp16", "kquant"),
        QuantFormat("q6_k", "GGUF Q6_K, 6.56 bpw", True, False, "fp16", "kquant"),
        QuantFormat("q5_k_m", "GGUF Q5_K_M mix", True, False, "fp16", "kquant"),
        QuantFormat("q5_0", "GGUF Q5_0, 5.5 bpw", True, False, "fp16", "kquant"),
        QuantFormat("q4_k_m", "GGUF Q4_K_M mix", True, False, "fp16", "kquant"),
        QuantFormat("q4_0", "GGUF Q4_0, 4.5 bpw", True, False, "fp16", "kquant"),
        QuantFormat("q3_k_m", "GGUF Q3_K_M mix", True, False, "fp16", "kquant"),
        QuantFormat("q2_k", "GGUF Q2_K mix", True, False, "fp16", "kquant"),
        QuantFormat("iq4_xs", "GGUF IQ4_XS, 4.25 bpw", True, False, "fp16", "kquant"),
        QuantFormat("awq-int4", "AWQ 4-bit, group 128, 16-bit head", False, True, "fp16", "gpu4bit"),
        QuantFormat("gptq-int4", "GPTQ 4-bit, group 128, act-order, 16-bit head", False, True, "fp16", "gpu4bit"),
        QuantFormat("nf4", "bitsandbytes NF4, block 64, 16-bit head", False, True, "bf16", "gpu4bit"),
        QuantFormat("mxfp4", "MXFP4 experts (gpt-oss), rest 16-bit (Q8_0 in GGUF)", True, True, "bf16", "gpu4bit",
                    moe_only=True),
    ]
}

ENGINE_QUANTS: dict[Engine, tuple[str, ...]] = {
    Engine.llama_cpp: ("f16", "bf16", "q8_0", "q6_k", "q5_k_m", "q5_0", "q4_k_m", "q4_0", "iq4_xs", "q3_k_m",
                       "q2_k", "mxfp4"),
    Engine.vllm: ("bf16", "f16", "fp8", "int8", "gptq-int4", "awq-int4", "nf4", "mxfp4"),
    Engine.torch: ("f32", "f16", "bf16", "int8", "nf4", "gptq-int4", "awq-int4"),
}
ENGINE_QUANTS[Engine.ollama] = ENGINE_QUANTS[Engine.llama_cpp]
ENGINE_QUANTS[Engine.transformers] = ENGINE_QUANTS[Engine.torch]


def get_quant(name: str) -> QuantFormat:
    from planner.errors import UnknownNameError

    key = name.strip().lower().replace("_", "-") if name.lower().startswith(("awq", "gptq")) else name.lower()
    if key not in QUANTS:
        raise UnknownNameError("quant", name, QUANTS)
    return QUANTS[key]


def quants_for(engine: Engine, spec: ModelSpec) -> list[QuantFormat]:
    return [QUANTS[q] for q in ENGINE_QUANTS[engine] if spec.moe is not None or not QUANTS[q].moe_only]


def check_supported(engine: Engine, quant: QuantFormat, spec: ModelSpec) -> None:
    if quant.id not in ENGINE_QUANTS[engine]:
        raise InputError(
            f"engine {engine.value} does not run quant '{quant.id}'; choose one of: "
            f"{', '.join(ENGINE_QUANTS[engine])}"
        )
    if quant.moe_only and spec.moe is None:
        raise InputError(f"quant '{quant.id}' applies to mixture-of-experts models; '{spec.id}' is dense")


# --------------------------------------------------------------------------------------------
# GGUF mixes (llama_tensor_get_type_impl, re-implemented from docs/physics.md §1.2)
# --------------------------------------------------------------------------------------------

_GGUF_DEFAULT = {
    "f32": F32, "f16": F16, "bf16": BF16, "q8_0": Q8_0, "q6_k": Q6_K, "q5_k_m": Q5_K, "q5_0": Q5_0,
    "q4_k_m": Q4_K, "q4_0": Q4_0, "q3_k_m": Q3_K, "q2_k": Q2_K, "iq4_xs": IQ4_XS, "mxfp4": Q8_0,
}


def _use_more_bits(i: int, n: int) -> bool:
    """True for half the layers: the first and last eighth, and every third one between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


@dataclass(frozen=True)
class _MixContext:
    """The facts llama.cpp's per-tensor rules look at, computed once per tensor."""

    spec: ModelSpec
    quant: str
    base: StorageType  # the file type's default storage type
    i: int  # layer index (0 for tensors outside the layers)
    n: int  # number of layers
    n_gqa: int
    n_expert: int


def _attn_v_type(c: _MixContext) -> StorageType:
    """attn_v: upgraded per mix (by layer or GQA ratio), for Llama-70B shapes, and to Q8_0 with 8 experts."""
    new = c.base
    if c.quant == "q2_k":
        new = Q4_K if c.n_gqa >= 4 else Q3_K
    elif c.quant == "q3_k_m":
        new = Q5_K if c.i < 2 else Q4_K
    elif c.quant == "iq4_xs" and c.n_gqa >= 4:
        new = Q5_K
    elif c.quant in ("q4_k_m", "q5_k_m") and _use_more_bits(c.i, c.n):
        new = Q6_K
    if c.spec.architecture.family is Family.llama and c.n == 80 and new in (Q3_K, Q4_K):
        new = Q5_K  # the 70B rule: attn_v is 8x smaller than attn_q, more bits cost little
    if c.n_expert == 8:
        new = Q8_0
    return new


def _attn_qkv_type(c: _MixContext) -> StorageType:
    """Fused QKV: one K-quant step above the file type for the K-quant mixes."""
    return {"q3_k_m": Q4_K, "q4_k_m": Q5_K, "q5_k_m": Q6_K}.get(c.quant, c.base)


def _attn_k_type(c: _MixContext) -> StorageType:
    """attn_k: Q8_0 in 8-expert models, else the file type."""
    return Q8_0 if c.n_expert == 8 else c.base


def _ffn_down_type(c: _MixContext) -> StorageType:
    """ffn_down (dense, experts, shared experts): upgraded per mix, in some mixes only for some layers."""
    if c.quant == "q2_k":
        return Q3_K
    if c.quant == "q3_k_m":
        return Q5_K if c.i < c.n // 16 else Q4_K
    if c.quant in ("q4_k_m", "q5_k_m") and _use_more_bits(c.i, c.n):
        return Q6_K
    if c.quant == "iq4_xs" and c.i < c.n // 8:
        return Q5_K
    return c.base


def _attn_output_type(c: _MixContext) -> StorageType:
    """attn_output: Q5_K in 8-expert models, one step up for the low-bit mixes."""
    if c.n_expert == 8 and c.quant in ("q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "iq4_xs"):
        return Q5_K
    return {"q2_k": Q3_K, "q3_k_m": Q4_K}.get(c.quant, c.base)


# Per-tensor overrides, keyed by the tensor name inside its layer; other tensors keep the file type.
_GGUF_TENSOR_RULES = {
    "attn_v": _attn_v_type,
    "attn_qkv": _attn_qkv_type,
    "attn_k": _attn_k_type,
    "ffn_down": _ffn_down_type,
    "ffn_down_exps": _ffn_down_type,
    "ffn_down_shexp": _ffn_down_type,
    "attn_output": _attn_output_type,
}


def _mix_context(spec: ModelSpec, t: Tensor, quant: str, base: StorageType) -> _MixContext:
    """Gather the layer index, layer count, GQA ratio and expert count the rules need."""
    a = spec.architecture
    return _MixContext(
        spec=spec,
        quant=quant,
        base=base,
        i=t.layer if t.layer is not None else 0,
        n=a.n_layers,
        n_gqa=a.n_heads // a.n_kv_heads,
        n_expert=spec.moe.n_experts if spec.moe else 0,
    )


def gguf_tensor_type(spec: ModelSpec, t: Tensor, quant: str) -> StorageType:
    """Storage type llama.cpp's quantizer picks for tensor ``t`` under file type ``quant``."""
    a = spec.architecture
    base = _GGUF_DEFAULT[quant]
    if t.role in (Role.small, Role.router):
        return F32  # norms, biases and routers are never quantized (tensor_allows_quantization)
    if quant in ("f32", "f16", "bf16"):
        return base  # per-tensor overrides apply only to quantized file types
    if quant == "mxfp4":  # MXFP4_MOE: experts MXFP4, every other matrix Q8_0
        return MXFP4 if t.role is Role.expert else Q8_0
    ctx = _mix_context(spec, t, quant, base)
    is_output = t.role is Role.output or (t.role is Role.embedding and a.tie_word_embeddings)
    if is_output:
        return base if base is Q8_0 else Q6_K
    if t.role is Role.embedding:
        return base
    short = t.name.split(".", 2)[-1] if t.layer is not None else t.name
    rule = _GGUF_TENSOR_RULES.get(short)
    return rule(ctx) if rule is not None else base


# --------------------------------------------------------------------------------------------
# Bytes per tensor
# --------------------------------------------------------------------------------------------


def tensor_bytes(spec: ModelSpec, t: Tensor, quant: QuantFormat, engine: Engine) -> int:
    """Bytes of tensor ``t`` stored in ``quant`` as ``engine`` loads it (GGUF for llama.cpp/Ollama)."""
    if engine.reads_gguf:
        return tensor_bytes_gguf(t, gguf_tensor_type(spec, t, quant.id))
    n = t.n_elements
    if quant.id == "f32":
        return 4 * n
    sixteen_bit = 2 * n
    if quant.id in ("f16", "bf16") or t.role not in (Role.linear, Role.expert):
        return sixteen_bit  # embeddings, head, norms and routers stay 16-bit in quantized checkpoints
    if quant.id == "fp8":
        return n
    if quant.id == "int8":
        return _int8_rowwise_bytes(t)
    if quant.id == "awq-int4":
        return _grouped_int4_bytes(t, 128, g_idx=False)
    if quant.id == "gptq-int4":
        return _grouped_int4_bytes(t, 128, g_idx=True)
    if quant.id == "nf4":
        return _nf4_bytes(t)
    if quant.id == "mxfp4":
        return tensor_bytes_gguf(t, MXFP4) if t.role is Role.expert else sixteen_bit
    raise InputError(f"quant '{quant.id}' has no Hugging Face layout")  # pragma: no cover
