"""Parameter count of a model from its architecture alone (used when no weight headers are present).

The count follows the Hugging Face modeling code of each family: embeddings (+ an untied lm_head),
per layer attention (q/k/v/o, or DeepSeek MLA's low-rank projections), a gated FFN (gate, up,
down) or the routed + shared experts and the router, RMSNorm weights, and the final norm.
For Llama-3.1-8B it gives exactly 8,030,261,248 (the safetensors ``total_size`` / 2).
Vision towers and other extras of multimodal checkpoints are not counted.
"""

from __future__ import annotations

from planner.spec.schema import Family, ModelSpec


def _attention(spec: ModelSpec) -> int:
    a, mla = spec.architecture, spec.mla
    h = a.hidden_size
    if mla is not None:
        qk = mla.qk_nope_head_dim + mla.qk_rope_head_dim
        if mla.q_lora_rank:
            q = h * mla.q_lora_rank + mla.q_lora_rank + mla.q_lora_rank * a.n_heads * qk
        else:
            q = h * a.n_heads * qk
        kv = h * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank
        kv += mla.kv_lora_rank * a.n_heads * (mla.qk_nope_head_dim + mla.v_head_dim)
        return q + kv + a.n_heads * mla.v_head_dim * h
    q_width, kv_width = a.n_heads * a.head_dim, a.n_kv_heads * a.head_dim
    n = 2 * h * q_width + 2 * h * kv_width
    if a.attention_bias:
        n += q_width + 2 * kv_width + (0 if a.family is Family.qwen2 else h)
    if a.qk_norm:
        n += 2 * a.head_dim
    if a.family is Family.gpt_oss:
        n += a.n_heads  # attention sinks
    return n


def _ffn(hidden: int, width: int, bias: bool) -> int:
    return 3 * hidden * width + ((2 * width + hidden) if bias else 0)


def count_params(spec: ModelSpec) -> int:
    """Total parameters (tied tables once) implied by the spec's architecture, MoE and MLA blocks."""
    a, moe = spec.architecture, spec.moe
    h = a.hidden_size
    norms = (4 if a.family in (Family.gemma2, Family.gemma3) else 2) * h
    dense_layer = _attention(spec) + _ffn(h, a.intermediate_size, a.mlp_bias) + norms
    total = a.vocab_size * h * (1 if a.tie_word_embeddings else 2) + h
    if moe is None:
        return total + a.n_layers * dense_layer
    e = moe.expert_intermediate_size
    moe_layer = _attention(spec) + norms + h * moe.n_experts + (moe.n_experts if moe.router_bias else 0)
    moe_layer += moe.n_experts * _ffn(h, e, a.mlp_bias) + moe.n_shared_experts * _ffn(h, e, False)
    if a.family is Family.deepseek_v3:
        moe_layer += moe.n_experts  # e_score_correction_bias
    dense = min(moe.first_dense_layers, a.n_layers)
    return total + dense * dense_layer + (a.n_layers - dense) * moe_layer


def count_active_params(spec: ModelSpec) -> int | None:
    """Parameters touched per token for MoE models (routed top-k + shared), None for dense ones."""
    moe = spec.moe
    if moe is None:
        return None
    a = spec.architecture
    idle = moe.n_experts - moe.n_active_experts
    moe_layers = a.n_layers - min(moe.first_dense_layers, a.n_layers)
    return count_params(spec) - moe_layers * idle * _ffn(
        a.hidden_size, moe.expert_intermediate_size, a.mlp_bias
    )
