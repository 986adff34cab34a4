"""KV-cache bytes: per token, per layer, and for a number of cache cells (pure functions).

Source: docs/physics.md §2. Every layer stores K and V rows of n_kv_heads × head_dim
elements per token; MLA layers store one latent of kv_lora_rank + qk_rope_head_dim elements and no V
(llama.cpp ``has_v = !is_mla``; vLLM ``MLAAttentionSpec``); sliding-window layers hold at most their
window. Quantized caches carry their block scales (q8_0: 34 bytes per 32 elements).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from planner.errors import InputError
from planner.physics.arith import prefix_sums, span_sum
from planner.spec.schema import ModelSpec
from planner.spec.tensors import is_global_attention_layer


@dataclass(frozen=True)
class KVDType:
    id: str
    block_elements: int
    block_bytes: int

    def row_bytes(self, elements: int) -> int:
        """Bytes of one cache row; quantized types need whole blocks (ggml rows are block-aligned)."""
        if elements % self.block_elements:
            raise InputError(
                f"kv dtype {self.id} needs rows that are a multiple of {self.block_elements} elements, "
                f"this model's are {elements}"
            )
        return elements // self.block_elements * self.block_bytes


KV_DTYPES: dict[str, KVDType] = {
    k.id: k
    for k in [
        KVDType("f32", 1, 4),
        KVDType("f16", 1, 2),
        KVDType("bf16", 1, 2),
        KVDType("fp8", 1, 1),  # vLLM --kv-cache-dtype fp8: per-layer scalar scales only
        KVDType("q8_0", 32, 34),  # ggml block_q8_0: f16 scale + 32 int8
        KVDType("q4_0", 32, 18),  # ggml block_q4_0: f16 scale + 16 bytes of nibbles
    ]
}


@dataclass(frozen=True)
class KVDTypes:
    """Several KV dtypes evaluated at once: the first axis of the search grid's arrays."""

    dtypes: tuple[KVDType, ...]


def get_kv_dtype(name: str) -> KVDType:
    from planner.errors import UnknownNameError

    if name.lower() not in KV_DTYPES:
        raise UnknownNameError("kv dtype", name, KV_DTYPES)
    return KV_DTYPES[name.lower()]


def kv_bytes_per_token_layer(spec: ModelSpec, kv: KVDType | KVDTypes, n_kv_heads: int | None = None) -> int:
    """One token of one layer: 2 (K and V) × n_kv_heads × head_dim elements, or one MLA latent.

    ``n_kv_heads`` overrides the model's count (per tensor-parallel rank). For ``KVDTypes`` (the search
    grid) the answer is an array over the dtypes on the grid's first axis.
    """
    if isinstance(kv, KVDTypes):
        import numpy as np

        return np.array([kv_bytes_per_token_layer(spec, k, n_kv_heads) for k in kv.dtypes],
                        dtype=np.int64).reshape(-1, 1, 1, 1)
    if spec.mla is not None:
        return kv.row_bytes(spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim)
    heads = spec.architecture.n_kv_heads if n_kv_heads is None else n_kv_heads
    return 2 * kv.row_bytes(heads * spec.architecture.head_dim)  # 2: one row for K, one for V


def kv_cache_bytes_per_token(spec: ModelSpec, kv: KVDType) -> int:
    """Σ_layers of the per-layer bytes: what one more token of context costs when no layer is capped.

    Llama-3.1-8B, f16: 2 × 32 × 8 × 128 × 2 = 131,072 bytes (docs/physics.md §2.1).
    """
    return spec.architecture.n_layers * kv_bytes_per_token_layer(spec, kv)


@lru_cache(maxsize=256)
def global_layer_prefix(spec: ModelSpec) -> tuple[int, ...]:
    """Prefix sums of the full-attention layer flags, so any span of layers counts them at once."""
    return prefix_sums([int(is_global_attention_layer(spec, i)) for i in range(spec.architecture.n_layers)])


def n_global_layers(spec: ModelSpec) -> int:
    return global_layer_prefix(spec)[-1]


def kv_cache_bytes_span(spec: ModelSpec, kv: KVDType, global_cells, window_cells, lo=0, hi=None,
                        n_kv_heads: int | None = None):
    """Σ over layers [lo, hi) of bytes per token-layer × cells: ``global_cells`` for full-attention
    layers, ``window_cells`` for sliding-window layers (the engine decides both). Cells and the span
    may be numpy arrays (the search grid) or ints (``plan``)."""
    per_layer = kv_bytes_per_token_layer(spec, kv, n_kv_heads)
    hi = spec.architecture.n_layers if hi is None else hi
    n_global = span_sum(global_layer_prefix(spec), lo, hi)
    return per_layer * (n_global * global_cells + ((hi - lo) - n_global) * window_cells)


def kv_cache_bytes(
    spec: ModelSpec,
    kv: KVDType,
    global_cells: int,
    window_cells: int,
    layers: range | None = None,
    n_kv_heads: int | None = None,
) -> int:
    """``kv_cache_bytes_span`` over a contiguous range of layers (all of them by default)."""
    layers = range(spec.architecture.n_layers) if layers is None else layers
    return kv_cache_bytes_span(spec, kv, global_cells, window_cells, layers.start, layers.stop, n_kv_heads)
