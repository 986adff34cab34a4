"""Plan from a GGUF file: the model spec from its metadata, exact weight bytes from its tensor infos.

Only the header is read (see :mod:`planner.spec.readers.gguf_header`). Metadata keys follow llama.cpp's
``gguf-py/gguf/constants.py`` (``{arch}.block_count``, ``{arch}.attention.head_count`` ...).
Split files ``name-00001-of-0000N.gguf`` (``gguf-split``) are read part by part from the folder
of the first part and merged; a missing part is an error.

Tensor names follow llama.cpp's naming: ``token_embd.weight``, ``output.weight`` (absent when the
embedding table is tied), ``blk.N.*`` for decoder layer N, ``blk.N.ffn_{gate,up,down}_exps.*`` for the
routed experts, and everything else (``output_norm.weight``, ...) counted as other bytes.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from gguf.constants import Keys, LlamaFileType
from pydantic import ValidationError

from planner.errors import InputError, SpecFileError
from planner.spec.layout import WeightLayout
from planner.spec.readers._common import ModelFile, grouped_layout, make_id, period_from_flags, spec_error
from planner.spec.readers.gguf_header import GGUFArray, GGUFHeader, TensorInfo, read_gguf_header
from planner.spec.schema import MLA, Architecture, Family, ModelSpec, MoE, Published

SPLIT_RE = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
MAX_SPLIT_PARTS = 9999
_LAYER_RE = re.compile(r"^blk\.(\d{1,6})\.")
_EXPERT_RE = re.compile(r"^blk\.\d+\.ffn_[a-z_]*_exps\.")

GGUF_ARCHES: dict[str, Family] = {
    "llama": Family.llama,
    "qwen2": Family.qwen2,
    "qwen3": Family.qwen3,
    "qwen3moe": Family.qwen3_moe,
    "gemma2": Family.gemma2,
    "gemma3": Family.gemma3,
    "phi3": Family.phi3,
    "deepseek2": Family.deepseek_v3,
    "gpt-oss": Family.gpt_oss,
}

# llama.cpp file types that have a planner quant id; the others keep quant None and a label.
FILE_TYPE_QUANTS: dict[LlamaFileType, str] = {
    LlamaFileType.ALL_F32: "f32",
    LlamaFileType.MOSTLY_F16: "f16",
    LlamaFileType.MOSTLY_BF16: "bf16",
    LlamaFileType.MOSTLY_Q8_0: "q8_0",
    LlamaFileType.MOSTLY_Q6_K: "q6_k",
    LlamaFileType.MOSTLY_Q5_K_M: "q5_k_m",
    LlamaFileType.MOSTLY_Q5_0: "q5_0",
    LlamaFileType.MOSTLY_Q4_K_M: "q4_k_m",
    LlamaFileType.MOSTLY_Q4_0: "q4_0",
    LlamaFileType.MOSTLY_Q3_K_M: "q3_k_m",
    LlamaFileType.MOSTLY_Q2_K: "q2_k",
    LlamaFileType.MOSTLY_IQ4_XS: "iq4_xs",
    LlamaFileType.MOSTLY_MXFP4_MOE: "mxfp4",
}


def split_parts(path: Path) -> list[Path]:
    """All parts of a split GGUF (any part may be given), or just ``[path]``."""
    m = SPLIT_RE.match(path.name)
    if not m:
        return [path]
    count = int(m["count"])
    if not 1 <= count <= MAX_SPLIT_PARTS or not 1 <= int(m["no"]) <= count:
        raise SpecFileError(str(path), f"split file name says part {int(m['no'])} of {count}")
    width = len(m["count"])
    parts = [path.with_name(f"{m['stem']}-{i:0{width}d}-of-{m['count']}.gguf") for i in range(1, count + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise SpecFileError(
            str(path), f"split GGUF is missing part(s) {', '.join(missing[:3])} in {path.parent}"
        )
    return parts


def read_headers(path: Path) -> tuple[dict[str, object], list[TensorInfo], list[GGUFHeader]]:
    """Metadata of the first part and the tensors of all parts, checked for duplicates."""
    parts = split_parts(path)
    headers = [read_gguf_header(p) for p in parts]
    first = headers[0].metadata
    declared = first.get(Keys.Split.LLM_KV_SPLIT_COUNT)
    if declared is not None and declared != len(parts):
        raise SpecFileError(str(parts[0]), f"split.count is {declared} but {len(parts)} part(s) were found")
    tensors: list[TensorInfo] = []
    seen: set[str] = set()
    for h in headers:
        for t in h.tensors:
            if t.name in seen:
                raise SpecFileError(h.path, f"tensor '{t.name}' appears in more than one split part")
            seen.add(t.name)
            tensors.append(t)
    total = first.get(Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT)
    if total is not None and len(parts) > 1 and total != len(tensors):
        raise SpecFileError(
            str(parts[0]), f"split.tensors.count is {total} but the parts hold {len(tensors)}"
        )
    return first, tensors, headers


class _Meta:
    """Typed access to ``{arch}.*`` keys with one-line errors naming the key."""

    def __init__(self, metadata: dict[str, object], arch: str, path: str):
        self.md, self.arch, self.path = metadata, arch, path

    def key(self, template: str) -> str:
        return template.format(arch=self.arch)

    def int(self, template: str, default: int | None = None, required: bool = False) -> int | None:
        key = self.key(template)
        value = self.md.get(key)
        if isinstance(value, GGUFArray):  # per-layer values (e.g. head_count_kv): take the largest
            nums = [v for v in (value.values or ()) if isinstance(v, int) and not isinstance(v, bool)]
            value = max(nums) if nums else None
        if value is None:
            if required:
                raise SpecFileError(
                    self.path, f"GGUF metadata lacks '{key}' (needed for a {self.arch} model)"
                )
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecFileError(
                self.path, f"GGUF metadata '{key}' should be a non-negative integer, got {value!r}"
            )
        return value


def _sliding(meta: _Meta, family: Family, n_layers: int) -> tuple[int | None, int]:
    window = meta.int(Keys.Attention.SLIDING_WINDOW) or None
    if window is None:
        return None, 1
    if family in (Family.gemma2, Family.gpt_oss):
        return window, 2
    if family is Family.gemma3:
        pattern = meta.md.get(meta.key(Keys.Attention.SLIDING_WINDOW_PATTERN))
        if isinstance(pattern, GGUFArray) and pattern.values:
            flags = [bool(v) for v in pattern.values]
            return (window, period_from_flags(flags)) if any(flags) else (None, 1)
        return window, pattern if isinstance(pattern, int) and not isinstance(
            pattern, bool
        ) and pattern > 0 else 6
    return window, 1


def _family(metadata: dict[str, object], p: str) -> tuple[str, Family]:
    arch = metadata.get(Keys.General.ARCHITECTURE)
    if not isinstance(arch, str):
        raise SpecFileError(p, "GGUF metadata lacks general.architecture")
    family = GGUF_ARCHES.get(arch)
    if family is None:
        raise InputError(
            f"{p}: GGUF architecture '{arch[:60]}' is not supported "
            f"(supported: {', '.join(sorted(GGUF_ARCHES))})"
        )
    return arch, family


def _vocab(meta: _Meta, metadata: dict[str, object], embd: TensorInfo | None, arch: str, p: str) -> int:
    vocab = meta.int(Keys.LLM.VOCAB_SIZE) or (embd.shape[1] if embd and len(embd.shape) > 1 else None)
    tokens = metadata.get(Keys.Tokenizer.LIST)
    if not vocab and isinstance(tokens, GGUFArray):
        vocab = tokens.count
    if not vocab:
        raise SpecFileError(p, f"GGUF has no {arch}.vocab_size, token_embd.weight or tokenizer list")
    return vocab


def _mla_block(meta: _Meta, p: str) -> dict:
    """deepseek2 keys → the MLA block (the key length includes the rope part)."""
    rope = meta.int(Keys.Rope.DIMENSION_COUNT, required=True)
    qk = meta.int(Keys.Attention.KEY_LENGTH_MLA) or meta.int(Keys.Attention.KEY_LENGTH, required=True)
    v = meta.int(Keys.Attention.VALUE_LENGTH_MLA) or meta.int(Keys.Attention.VALUE_LENGTH, required=True)
    if qk <= rope:
        raise SpecFileError(p, f"deepseek2 key length {qk} must exceed the rope dimension {rope}")
    return {
        "source": p,
        "q_lora_rank": meta.int(Keys.Attention.Q_LORA_RANK) or None,
        "kv_lora_rank": meta.int(Keys.Attention.KV_LORA_RANK, required=True),
        "qk_nope_head_dim": qk - rope,
        "qk_rope_head_dim": rope,
        "v_head_dim": v,
    }


def _moe_block(meta: _Meta, p: str, n_experts: int, ff: int, names: set[str]) -> dict:
    return {
        "source": p,
        "n_experts": n_experts,
        "n_active_experts": meta.int(Keys.LLM.EXPERT_USED_COUNT, required=True),
        "expert_intermediate_size": meta.int(Keys.LLM.EXPERT_FEED_FORWARD_LENGTH) or ff,
        "n_shared_experts": meta.int(Keys.LLM.EXPERT_SHARED_COUNT, 0),
        "first_dense_layers": meta.int(Keys.LLM.LEADING_DENSE_BLOCK_COUNT, 0),
        "router_bias": any(n.endswith("ffn_gate_inp.bias") for n in names),
    }


def _bias_flags(names: set[str]) -> dict[str, bool]:
    """Attention and MLP biases, and q/k norms, as layer 0's tensor names show them."""
    return {
        "attention_bias": any(
            n.startswith("blk.0.attn_") and n.endswith(".bias") and "norm" not in n for n in names
        ),
        "mlp_bias": any(
            n.startswith("blk.0.ffn_") and n.endswith(".bias") and "gate_inp" not in n and "norm" not in n
            for n in names
        ),
        "qk_norm": "blk.0.attn_q_norm.weight" in names,
    }


def build_spec(metadata: dict[str, object], tensors: list[TensorInfo], path: Path) -> ModelSpec:
    """A ModelSpec from GGUF metadata and tensor names."""
    p = str(path)
    arch, family = _family(metadata, p)
    meta = _Meta(metadata, arch, p)
    names = {t.name for t in tensors}
    n_layers = meta.int(Keys.LLM.BLOCK_COUNT, required=True)
    n_heads = meta.int(Keys.Attention.HEAD_COUNT, required=True)
    n_experts = meta.int(Keys.LLM.EXPERT_COUNT, 0)
    if family is Family.llama and n_experts:
        family = Family.mixtral  # Mixtral is stored as arch "llama" with experts
    ff = meta.int(Keys.LLM.FEED_FORWARD_LENGTH) or meta.int(Keys.LLM.EXPERT_FEED_FORWARD_LENGTH, required=True)
    embd = next((t for t in tensors if t.name == "token_embd.weight"), None)
    window, period = _sliding(meta, family, n_layers)
    native = {0: "f32", 1: "f16", 32: "bf16"}.get(metadata.get(Keys.General.FILE_TYPE),
                                                   "mxfp4" if family is Family.gpt_oss else "bf16")
    mla = _mla_block(meta, p) if family is Family.deepseek_v3 else None
    kv_heads = meta.int(Keys.Attention.HEAD_COUNT_KV) or None
    head_dim = meta.int(Keys.Attention.KEY_LENGTH) or None
    if mla:  # same convention as the config.json reader
        kv_heads, head_dim = n_heads, mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]
    arch_block = {
        "source": p, "family": family, "n_layers": n_layers,
        "hidden_size": meta.int(Keys.LLM.EMBEDDING_LENGTH, required=True), "n_heads": n_heads,
        "n_kv_heads": kv_heads, "head_dim": head_dim, "intermediate_size": ff,
        "vocab_size": _vocab(meta, metadata, embd, arch, p),
        "max_context": meta.int(Keys.LLM.CONTEXT_LENGTH, required=True),
        "tie_word_embeddings": "output.weight" not in names, **_bias_flags(names),
        "sliding_window": window, "sliding_window_period": period, "native_dtype": native,
    }
    name = metadata.get(Keys.General.NAME)
    stem = _stem(path)
    try:
        return ModelSpec(
            id=make_id(stem),
            name=(name if isinstance(name, str) and name.strip() else stem)[:200],
            architecture=Architecture(**arch_block),
            moe=MoE(**_moe_block(meta, p, n_experts, ff, names)) if n_experts else None,
            mla=MLA(**mla) if mla else None,
            published=Published(source=p, total_params=max(1, sum(t.n_elements for t in tensors)),
                                note="total_params counted from the GGUF tensor infos"),
        )
    except ValidationError as exc:
        raise spec_error(p, exc) from None


def _stem(path: Path) -> str:
    m = SPLIT_RE.match(path.name)
    return m["stem"] if m else path.stem


def build_layout(tensors: list[TensorInfo], n_layers: int, label: str) -> WeightLayout:
    """Exact bytes per tensor group (see the module docstring for the grouping)."""

    def classify(t: TensorInfo) -> tuple[str, int | None, bool, int]:
        if t.name == "token_embd.weight":
            return "embd", None, False, t.n_bytes
        if t.name == "output.weight":
            return "output", None, False, t.n_bytes
        m = _LAYER_RE.match(t.name)
        if m:
            return "layer", int(m[1]), bool(_EXPERT_RE.match(t.name)), t.n_bytes
        return "other", None, False, t.n_bytes

    return grouped_layout(map(classify, tensors), n_layers, sum(t.n_elements for t in tensors), label)


def quant_and_label(metadata: dict[str, object], tensors: list[TensorInfo]) -> tuple[str | None, str]:
    """Planner quant id (or None) and a label such as 'Q4_K_M (file)'."""
    ftype = metadata.get(Keys.General.FILE_TYPE)
    try:
        lft = LlamaFileType(ftype) if isinstance(ftype, int) and not isinstance(ftype, bool) else None
    except ValueError:
        lft = None
    if lft is not None and lft is not LlamaFileType.GUESSED:
        name = lft.name.removeprefix("MOSTLY_").removeprefix("ALL_")
        return FILE_TYPE_QUANTS.get(lft), f"{name} (file)"
    weight = Counter()
    for t in tensors:
        weight[t.ggml_type.name] += t.n_bytes
    main = weight.most_common(1)[0][0] if weight else "unknown"
    return None, f"mostly {main} (file)"


def read_gguf(path: str | Path) -> ModelFile:
    """Read a (possibly split) GGUF file's header into a spec, exact layout and quant."""
    path = Path(path)
    metadata, tensors, headers = read_headers(path)
    parts = [Path(h.path) for h in headers]
    spec = build_spec(metadata, tensors, parts[0])
    quant, label = quant_and_label(metadata, tensors)
    try:
        layout = build_layout(tensors, spec.architecture.n_layers, label)
    except ValidationError as exc:
        raise spec_error(str(parts[0]), exc) from None
    return ModelFile(spec=spec, layout=layout, quant=quant, label=label, path=str(parts[0]))
