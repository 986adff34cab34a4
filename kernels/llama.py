"""A llama-architecture transformer with random weights and a static KV cache, for timing real decode steps.

Architecture (Touvron et al. 2023, LLaMA; Ainslie et al. 2023, GQA): token embedding → n_layers × [RMSNorm →
grouped-query attention with rotary embeddings (Su et al. 2021, RoFormer; half-split form) → residual →
RMSNorm → SwiGLU MLP (Shazeer 2020) → residual] → final RMSNorm → LM head. Projections are fused (wqkv,
w_gate_up) to keep the kernel count per layer low, as gpt-fast does. The KV cache is preallocated as
[batch, n_kv_heads, max_seq, head_dim] per layer; a step writes its keys/values at ``pos`` and attends
over positions [0, pos + T), so a step reads exactly the KV bytes of its context (not the whole buffer).

``reference_logits`` recomputes every position without a cache, with explicit softmax attention and the
KV heads expanded, so tests can compare the cached path against an independent implementation.
torch is imported inside functions only; the classes are built by ``build_model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.kernels.shapes import ModelDims
from planner.kernels.timing import import_torch

NORM_EPS = 1e-5
ROPE_THETA = 10000.0


def _rms_norm(torch: Any, x: Any, weight: Any) -> Any:
    """x / sqrt(mean(x²) + eps) · weight, computed in fp32 and cast back (as HF LlamaRMSNorm does)."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + NORM_EPS)).to(x.dtype) * weight


def _rope(torch: Any, x: Any, cos: Any, sin: Any) -> Any:
    """Rotate the two halves of head_dim: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin); x is [B, H, T, D]."""
    half = x.shape[-1] // 2
    xf = x.float()
    x1, x2 = xf[..., :half], xf[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).to(x.dtype)


@dataclass
class KVCache:
    """Static per-layer K and V buffers, each [max_batch, n_kv_heads, max_seq, head_dim]."""

    k: list[Any]
    v: list[Any]

    @property
    def max_seq(self) -> int:
        return int(self.k[0].shape[2])

    def zero_(self) -> None:
        for t in (*self.k, *self.v):
            t.zero_()


class RandomLlama:
    """Weights as plain tensors; ``parameters()`` lists every weight so its numel can be checked."""

    def __init__(self, dims: ModelDims, n_layers: int, device: str, dtype: Any, max_seq: int, seed: int = 0):
        torch = import_torch()
        self.dims, self.n_layers, self.device, self.dtype = dims, n_layers, device, dtype
        gen = torch.Generator(device=device if device != "mps" else "cpu").manual_seed(seed)

        def matrix(k: int, n: int) -> Any:  # [out, in] as F.linear expects; std 1/sqrt(in) keeps outputs O(1)
            w = torch.empty(n, k, device=device if device != "mps" else "cpu", dtype=dtype)
            return w.normal_(0.0, k**-0.5, generator=gen).to(device)

        d, hd = dims.hidden, dims.head_dim
        qkv_out = (dims.n_heads + 2 * dims.n_kv_heads) * hd
        self.embedding = matrix(d, dims.vocab)  # [vocab, hidden]; gathered row by row, never streamed
        self.layers = [
            {
                "attn_norm": torch.ones(d, device=device, dtype=dtype),
                "wqkv": matrix(d, qkv_out),
                "wo": matrix(dims.n_heads * hd, d),
                "mlp_norm": torch.ones(d, device=device, dtype=dtype),
                "w_gate_up": matrix(d, 2 * dims.intermediate),
                "w_down": matrix(dims.intermediate, d),
            }
            for _ in range(n_layers)
        ]
        self.final_norm = torch.ones(d, device=device, dtype=dtype)
        self.lm_head = matrix(d, dims.vocab)
        inv_freq = 1.0 / ROPE_THETA ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd)
        angles = torch.outer(torch.arange(max_seq, dtype=torch.float32), inv_freq)  # [max_seq, hd/2]
        self.cos, self.sin = angles.cos().to(device), angles.sin().to(device)
        self.max_seq = max_seq

    def parameters(self) -> list[Any]:
        """Every weight tensor, embedding first."""
        out = [self.embedding]
        for layer in self.layers:
            out.extend(layer.values())
        return [*out, self.final_norm, self.lm_head]

    def new_cache(self, max_batch: int, max_seq: int | None = None) -> KVCache:
        """Zeroed K and V buffers for ``max_batch`` sequences of up to ``max_seq`` (default: the rotary table)."""
        torch = import_torch()
        if max_seq is not None and max_seq > self.max_seq:
            raise ValueError(f"max_seq {max_seq} exceeds the rotary table length {self.max_seq}")
        shape = (max_batch, self.dims.n_kv_heads, max_seq or self.max_seq, self.dims.head_dim)
        k = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(self.n_layers)]
        v = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(self.n_layers)]
        return KVCache(k, v)

    def _qkv(self, torch: Any, layer: dict, h: Any, pos: int) -> tuple[Any, Any, Any]:
        """Project, split into heads ([B, heads, T, D]) and rotate q and k for positions pos..pos+T-1."""
        dims, (b, t, _) = self.dims, h.shape
        q_size, kv_size = dims.n_heads * dims.head_dim, dims.n_kv_heads * dims.head_dim
        q, k, v = torch.nn.functional.linear(h, layer["wqkv"]).split([q_size, kv_size, kv_size], dim=-1)
        q = q.view(b, t, dims.n_heads, dims.head_dim).transpose(1, 2)
        k = k.view(b, t, dims.n_kv_heads, dims.head_dim).transpose(1, 2)
        v = v.view(b, t, dims.n_kv_heads, dims.head_dim).transpose(1, 2)
        cos, sin = self.cos[pos : pos + t], self.sin[pos : pos + t]
        return _rope(torch, q, cos, sin), _rope(torch, k, cos, sin), v

    def _mlp(self, torch: Any, layer: dict, x: Any) -> Any:
        """SwiGLU: w_down(silu(gate) · up), gate and up from one fused matmul."""
        gate, up = torch.nn.functional.linear(x, layer["w_gate_up"]).chunk(2, dim=-1)
        return torch.nn.functional.linear(torch.nn.functional.silu(gate) * up, layer["w_down"])

    def forward(self, tokens: Any, pos: int, cache: KVCache) -> Any:
        """Run tokens [B, T] at positions pos..pos+T-1, appending K/V to ``cache``; return last logits [B, vocab].

        Decode (T == 1) folds the G = n_heads / n_kv_heads query heads of each KV head into the query-length
        axis, so SDPA reads each cached K/V row once and needs no mask (all cached positions are visible).
        Prefill (T > 1) uses SDPA's GQA support with a causal mask offset by ``pos``.
        """
        torch = import_torch()
        sdpa = torch.nn.functional.scaled_dot_product_attention
        dims, (b, t) = self.dims, tokens.shape
        if pos + t > cache.max_seq:
            raise ValueError(f"positions up to {pos + t} exceed the KV cache length {cache.max_seq}")
        group = dims.n_heads // dims.n_kv_heads
        mask = None
        if t > 1 and pos > 0:
            rows = torch.arange(t, device=tokens.device)[:, None] + pos
            mask = torch.arange(pos + t, device=tokens.device)[None, :] <= rows  # True = attend
        x = self.embedding[tokens]
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(torch, layer, _rms_norm(torch, x, layer["attn_norm"]), pos)
            cache.k[i][:b, :, pos : pos + t] = k
            cache.v[i][:b, :, pos : pos + t] = v
            keys, values = cache.k[i][:b, :, : pos + t], cache.v[i][:b, :, : pos + t]
            if t == 1:
                grouped = q.reshape(b, dims.n_kv_heads, group, dims.head_dim)  # head h uses KV head h // group
                out = sdpa(grouped, keys, values).reshape(b, dims.n_heads, 1, dims.head_dim)
            else:
                out = sdpa(q, keys, values, attn_mask=mask, is_causal=mask is None, enable_gqa=group > 1)
            out = out.transpose(1, 2).reshape(b, t, dims.n_heads * dims.head_dim)
            x = x + torch.nn.functional.linear(out, layer["wo"])
            x = x + self._mlp(torch, layer, _rms_norm(torch, x, layer["mlp_norm"]))
        x = _rms_norm(torch, x[:, -1], self.final_norm)
        return torch.nn.functional.linear(x, self.lm_head)


def build_model(
    dims: ModelDims, n_layers: int, device: str = "cpu", dtype: Any = None, max_seq: int = 256, seed: int = 0
) -> RandomLlama:
    """A ``RandomLlama`` with ``n_layers`` layers of shape ``dims`` (fp32 unless ``dtype`` is given)."""
    torch = import_torch()
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    return RandomLlama(dims, n_layers, device, dtype or torch.float32, max_seq, seed)


def reference_logits(model: RandomLlama, tokens: Any) -> Any:
    """Logits [B, T, vocab] for every position by full recompute: no cache, explicit softmax(QKᵀ/√D + causal)·V."""
    torch = import_torch()
    dims, (b, t) = model.dims, tokens.shape
    group = dims.n_heads // dims.n_kv_heads
    causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).tril()
    x = model.embedding[tokens]
    for layer in model.layers:
        q, k, v = model._qkv(torch, layer, _rms_norm(torch, x, layer["attn_norm"]), 0)
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        scores = (q.float() @ k.float().transpose(-1, -2)) / dims.head_dim**0.5
        probs = scores.masked_fill(~causal, float("-inf")).softmax(-1)
        out = (probs @ v.float()).to(x.dtype).transpose(1, 2).reshape(b, t, dims.n_heads * dims.head_dim)
        x = x + torch.nn.functional.linear(out, layer["wo"])
        x = x + model._mlp(torch, layer, _rms_norm(torch, x, layer["mlp_norm"]))
    return torch.nn.functional.linear(_rms_norm(torch, x, model.final_norm), model.lm_head).float()


def greedy_generate(model: RandomLlama, prompt: Any, n_new: int, cache: KVCache | None = None) -> tuple[Any, Any]:
    """Prefill ``prompt`` [B, P], then decode ``n_new`` tokens greedily (argmax).

    Returns (tokens [B, P + n_new], logits [B, n_new, vocab]); logits[:, j] is the distribution that chose
    token P + j, so it should match ``reference_logits(tokens)[:, P - 1 + j]``.
    """
    torch = import_torch()
    b, p = prompt.shape
    cache = cache or model.new_cache(b)
    logits = [model.forward(prompt, 0, cache)]
    tokens = [prompt, logits[-1].argmax(-1, keepdim=True)]
    for j in range(1, n_new):
        logits.append(model.forward(tokens[-1], p + j - 1, cache))
        tokens.append(logits[-1].argmax(-1, keepdim=True))
    return torch.cat(tokens, dim=1), torch.stack(logits, dim=1).float()
