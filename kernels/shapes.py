"""Benchmark shapes derived from plain model dimensions (no planner import, no torch import).

Layer layout is llama-style (fused QKV and fused gate/up projections, as gpt-fast lays them out):

* attention: wqkv [hidden → (n_heads + 2·n_kv_heads)·head_dim], wo [n_heads·head_dim → hidden]
* MLP (SwiGLU): w_gate_up [hidden → 2·intermediate], w_down [intermediate → hidden]
* two RMSNorm weight vectors of length ``hidden`` per layer; one final norm; an LM head [hidden → vocab]
* an embedding table [vocab × hidden], gathered (one row per token), so never streamed in full.

Source: docs/physics.md (weights and KV cache sections); Touvron et al. 2023 (LLaMA) for the
architecture. All byte counts are exact integers: ``n_elements × elem_bytes``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ModelDims:
    """Transformer dimensions; ``n_layers`` is the model's full depth (the benchmark may build fewer)."""

    hidden: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    n_layers: int

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        if self.head_dim % 2:
            raise ValueError(f"head_dim ({self.head_dim}) must be even for rotary embeddings")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> ModelDims:
        return cls(**data)


# Tiny presets run in CI on CPU in milliseconds.
TINY = ModelDims(hidden=64, n_heads=4, n_kv_heads=2, head_dim=16, intermediate=160, vocab=128, n_layers=2)
SMALL = ModelDims(hidden=256, n_heads=8, n_kv_heads=2, head_dim=32, intermediate=688, vocab=1024, n_layers=4)
# TinyLlama-1.1B (hf TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T config.json): 176 MB/layer in fp32,
# LM head 262 MB; a few layers put hundreds of MB through the CPU, far above a 32 MB L3.
TINYLLAMA_1_1B = ModelDims(
    hidden=2048, n_heads=32, n_kv_heads=4, head_dim=64, intermediate=5632, vocab=32000, n_layers=22
)
# Llama-3.1-8B (meta-llama/Llama-3.1-8B config.json): 436 MB/layer in bf16.
LLAMA_3_1_8B = ModelDims(
    hidden=4096, n_heads=32, n_kv_heads=8, head_dim=128, intermediate=14336, vocab=128256, n_layers=32
)
PRESETS: dict[str, ModelDims] = {
    "tiny": TINY,
    "small": SMALL,
    "tinyllama-1.1b": TINYLLAMA_1_1B,
    "llama-3.1-8b": LLAMA_3_1_8B,
}


def matmul_shapes(dims: ModelDims) -> dict[str, tuple[int, int]]:
    """(in_features K, out_features N) of each weight matrix in one layer."""
    q_kv_out = (dims.n_heads + 2 * dims.n_kv_heads) * dims.head_dim  # Q heads plus one K and one V per KV head
    return {
        "wqkv": (dims.hidden, q_kv_out),
        "wo": (dims.n_heads * dims.head_dim, dims.hidden),
        "w_gate_up": (dims.hidden, 2 * dims.intermediate),  # gate and up, fused
        "w_down": (dims.intermediate, dims.hidden),
    }


def layer_matmul_params(dims: ModelDims) -> int:
    """Matrix elements in one layer: Σ K·N over ``matmul_shapes``."""
    return sum(k * n for k, n in matmul_shapes(dims).values())


def layer_params(dims: ModelDims) -> int:
    """All weights of one layer: the matrices plus two RMSNorm vectors (attention and MLP)."""
    return layer_matmul_params(dims) + 2 * dims.hidden


def lm_head_params(dims: ModelDims) -> int:
    """LM head [hidden × vocab] (untied from the embedding in this benchmark)."""
    return dims.hidden * dims.vocab


def streamed_params(dims: ModelDims, n_layers: int) -> int:
    """Weights read once per decode step: n_layers·layer_params + final norm + LM head (no embedding table)."""
    return n_layers * layer_params(dims) + dims.hidden + lm_head_params(dims)


def weight_bytes_per_step(dims: ModelDims, n_layers: int, elem_bytes: int) -> int:
    """Bytes of weights streamed per decode step = streamed_params × elem_bytes."""
    return streamed_params(dims, n_layers) * elem_bytes


def kv_bytes_per_step(dims: ModelDims, n_layers: int, batch: int, context: int, elem_bytes: int) -> int:
    """KV cache read by one decode step: 2 × n_layers × batch × context × n_kv_heads × head_dim × elem_bytes.

    The factor 2 is one tensor for K and one for V. Source: docs/physics.md, KV cache section.
    """
    return 2 * n_layers * batch * context * dims.n_kv_heads * dims.head_dim * elem_bytes


def flops_per_step(dims: ModelDims, n_layers: int, batch: int, context: int) -> int:
    """FLOPs of one decode step (one new token per sequence).

    2 FLOPs per multiply-add: 2·batch·(n_layers·layer_matmul_params + lm_head_params) for the projections,
    plus attention 2·batch·n_heads·head_dim·context for Q·Kᵀ and the same again for P·V, per layer.
    Norms, rotary, softmax and SwiGLU elementwise work are ignored (O(hidden), not O(hidden²)).
    """
    projections = 2 * batch * (n_layers * layer_matmul_params(dims) + lm_head_params(dims))
    attention = n_layers * 2 * 2 * batch * dims.n_heads * dims.head_dim * context  # QKᵀ and PV
    return projections + attention


def resident_bytes(dims: ModelDims, n_layers: int, batch: int, max_context: int, elem_bytes: int) -> int:
    """Memory the decode benchmark allocates: all weights incl. embedding, plus the static KV cache."""
    embedding = dims.vocab * dims.hidden * elem_bytes
    weights = weight_bytes_per_step(dims, n_layers, elem_bytes)
    kv = kv_bytes_per_step(dims, n_layers, batch, max_context, elem_bytes)
    return embedding + weights + kv


def layers_for_budget(
    dims: ModelDims, budget_bytes: int, elem_bytes: int, batch: int = 1, max_context: int = 0
) -> int:
    """Largest n_layers ≤ dims.n_layers whose ``resident_bytes`` fit in ``budget_bytes``; 0 if none does.

    Fixed part: embedding + LM head + final norm; per layer: layer_params·elem_bytes + its KV cache.
    Activations are O(batch·context·hidden) and are left to the caller's headroom.
    """
    fixed = resident_bytes(dims, 0, batch, max_context, elem_bytes)
    per_layer = layer_params(dims) * elem_bytes + kv_bytes_per_step(dims, 1, batch, max_context, elem_bytes)
    if budget_bytes < fixed + per_layer:
        return 0
    return min(dims.n_layers, (budget_bytes - fixed) // per_layer)
