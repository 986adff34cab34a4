"""The weight tensors of a transformer, derived from its architecture.

Names follow llama.cpp's GGUF convention (``token_embd``, ``blk.N.attn_q``, ``output``) because the
GGUF quantization mixes key on them; Hugging Face checkpoints have the same tensors under other names.
Shapes are ``(rows, row_length)`` with ``row_length`` = the input dimension of a linear layer, which is
GGUF's ``ne[0]``, the axis a block quantizer runs along.

The parameter count that falls out (``sum(t.n_elements)``) is checked against each model's published
total in tests/test_shipped_specs.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from planner.spec.schema import Family, ModelSpec


class Role(str, Enum):
    embedding = "embedding"  # token_embd: a row gather, never a GEMV
    output = "output"  # lm_head
    linear = "linear"  # a dense matmul weight of a decoder layer
    expert = "expert"  # a routed-expert matmul weight (3-D in GGUF: n_expert stacked)
    router = "router"  # MoE gate; kept at high precision by every quantizer
    small = "small"  # norms, biases, attention sinks: 1-D, kept at high precision


@dataclass(frozen=True)
class Tensor:
    name: str
    layer: int | None
    rows: int
    row_length: int
    role: Role
    copies: int = 1  # n_expert for stacked expert tensors

    @property
    def n_elements(self) -> int:
        return self.rows * self.row_length * self.copies


def is_global_attention_layer(spec: ModelSpec, layer: int) -> bool:
    """Full-context layer, or a sliding-window one (schema.Architecture.sliding_window_period)."""
    arch = spec.architecture
    if arch.sliding_window is None:
        return True
    period = arch.sliding_window_period
    return period > 1 and (layer + 1) % period == 0


def is_moe_layer(spec: ModelSpec, layer: int) -> bool:
    return spec.moe is not None and layer >= spec.moe.first_dense_layers


def _attention(spec: ModelSpec, i: int) -> list[Tensor]:
    a = spec.architecture
    d = a.hidden_size
    p = f"blk.{i}."
    out: list[Tensor] = []
    if spec.mla is not None:
        m = spec.mla
        qk_head = m.qk_nope_head_dim + m.qk_rope_head_dim
        if m.q_lora_rank:
            out += [
                Tensor(p + "attn_q_a", i, m.q_lora_rank, d, Role.linear),
                Tensor(p + "attn_q_a_norm", i, 1, m.q_lora_rank, Role.small),
                Tensor(p + "attn_q_b", i, a.n_heads * qk_head, m.q_lora_rank, Role.linear),
            ]
        else:
            out.append(Tensor(p + "attn_q", i, a.n_heads * qk_head, d, Role.linear))
        out += [
            Tensor(p + "attn_kv_a_mqa", i, m.kv_lora_rank + m.qk_rope_head_dim, d, Role.linear),
            Tensor(p + "attn_kv_a_norm", i, 1, m.kv_lora_rank, Role.small),
            Tensor(p + "attn_kv_b", i, a.n_heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank, Role.linear),
            Tensor(p + "attn_output", i, d, a.n_heads * m.v_head_dim, Role.linear),
        ]
        return out
    q_width = a.n_heads * a.head_dim
    kv_width = a.n_kv_heads * a.head_dim
    if a.family is Family.phi3:  # Phi-3 stores q, k and v fused (qkv_proj)
        out.append(Tensor(p + "attn_qkv", i, q_width + 2 * kv_width, d, Role.linear))
    else:
        out += [
            Tensor(p + "attn_q", i, q_width, d, Role.linear),
            Tensor(p + "attn_k", i, kv_width, d, Role.linear),
            Tensor(p + "attn_v", i, kv_width, d, Role.linear),
        ]
    out.append(Tensor(p + "attn_output", i, d, q_width, Role.linear))
    if a.attention_bias:
        out += [
            Tensor(p + "attn_q.bias", i, 1, q_width, Role.small),
            Tensor(p + "attn_k.bias", i, 1, kv_width, Role.small),
            Tensor(p + "attn_v.bias", i, 1, kv_width, Role.small),
        ]
        if a.family is Family.gpt_oss:  # gpt-oss also biases o_proj and learns one sink logit per head
            out += [
                Tensor(p + "attn_output.bias", i, 1, d, Role.small),
                Tensor(p + "attn_sinks", i, 1, a.n_heads, Role.small),
            ]
    if a.qk_norm:
        out += [
            Tensor(p + "attn_q_norm", i, 1, a.head_dim, Role.small),
            Tensor(p + "attn_k_norm", i, 1, a.head_dim, Role.small),
        ]
    return out


def _feed_forward(spec: ModelSpec, i: int) -> list[Tensor]:
    a = spec.architecture
    d = a.hidden_size
    p = f"blk.{i}."
    if not is_moe_layer(spec, i):
        f = a.intermediate_size
        if a.family is Family.phi3:  # fused gate_up_proj
            return [Tensor(p + "ffn_up", i, 2 * f, d, Role.linear), Tensor(p + "ffn_down", i, d, f, Role.linear)]
        return [
            Tensor(p + "ffn_gate", i, f, d, Role.linear),
            Tensor(p + "ffn_up", i, f, d, Role.linear),
            Tensor(p + "ffn_down", i, d, f, Role.linear),
        ]
    m = spec.moe
    f, e = m.expert_intermediate_size, m.n_experts
    out = [
        Tensor(p + "ffn_gate_inp", i, e, d, Role.router),
        Tensor(p + "ffn_gate_exps", i, f, d, Role.expert, e),
        Tensor(p + "ffn_up_exps", i, f, d, Role.expert, e),
        Tensor(p + "ffn_down_exps", i, d, f, Role.expert, e),
    ]
    if m.router_bias:
        out.append(Tensor(p + "ffn_gate_inp.bias", i, 1, e, Role.small))
    if a.mlp_bias:
        out += [
            Tensor(p + "ffn_gate_exps.bias", i, 1, f, Role.small, e),
            Tensor(p + "ffn_up_exps.bias", i, 1, f, Role.small, e),
            Tensor(p + "ffn_down_exps.bias", i, 1, d, Role.small, e),
        ]
    if m.n_shared_experts:
        fs = f * m.n_shared_experts
        out += [
            Tensor(p + "ffn_gate_shexp", i, fs, d, Role.linear),
            Tensor(p + "ffn_up_shexp", i, fs, d, Role.linear),
            Tensor(p + "ffn_down_shexp", i, d, fs, Role.linear),
        ]
    return out


def _norms(spec: ModelSpec, i: int) -> list[Tensor]:
    d = spec.architecture.hidden_size
    p = f"blk.{i}."
    names = ["attn_norm", "ffn_norm"]
    if spec.architecture.family in (Family.gemma2, Family.gemma3):  # sandwich norms around both blocks
        names += ["post_attention_norm", "post_ffw_norm"]
    return [Tensor(p + n, i, 1, d, Role.small) for n in names]


def layer_tensors(spec: ModelSpec, i: int) -> list[Tensor]:
    return _norms(spec, i) + _attention(spec, i) + _feed_forward(spec, i)


@lru_cache(maxsize=128)
def tensor_inventory(spec: ModelSpec) -> tuple[Tensor, ...]:
    """Every weight tensor; a tied output head is not listed (it is token_embd). Cached: specs are
    frozen, and the search and validation paths ask for the same model thousands of times."""
    a = spec.architecture
    tensors = [Tensor("token_embd", None, a.vocab_size, a.hidden_size, Role.embedding)]
    for i in range(a.n_layers):
        tensors += layer_tensors(spec, i)
    tensors.append(Tensor("output_norm", None, 1, a.hidden_size, Role.small))
    if not a.tie_word_embeddings:
        tensors.append(Tensor("output", None, a.vocab_size, a.hidden_size, Role.output))
    return tuple(tensors)


def parameter_count(spec: ModelSpec) -> int:
    return sum(t.n_elements for t in tensor_inventory(spec))


def active_parameter_count(spec: ModelSpec) -> int:
    """Parameters one token touches: routed experts count k of E (the embedding table counts fully,
    as model cards do)."""
    total = 0
    for t in tensor_inventory(spec):
        if t.copies > 1 and spec.moe is not None:
            total += t.n_elements * spec.moe.n_active_experts // spec.moe.n_experts
        else:
            total += t.n_elements
    return total
