"""Map a Hugging Face ``config.json`` to a :class:`ModelSpec` architecture (and MoE / MLA blocks).

Field names are those of the ``transformers`` configuration classes (``LlamaConfig``,
``Qwen3MoeConfig``, ``Gemma3TextConfig``, ``DeepseekV3Config``, ``GptOssConfig`` ...). Sliding-window
layouts map to ``sliding_window_period`` as the schema defines it (layer i is global iff
period > 1 and (i + 1) % period == 0; period 1 = every layer sliding):

* gemma2: period 2 (even layers sliding); gemma3: ``sliding_window_pattern`` (default 6) or ``layer_types``;
  gpt_oss: ``layer_types`` (alternating, period 2); mistral/mixtral/phi3: ``sliding_window`` on every layer.
* qwen2/qwen3/qwen3_moe: only with ``use_sliding_window: true``; then layers ≥ ``max_window_layers`` slide.
  When that is neither all nor none of the layers it cannot be expressed as a period, and the window is
  dropped (full attention everywhere: the larger, conservative KV cache).
"""

from __future__ import annotations

import json
from pathlib import Path

from planner.errors import InputError, SpecFileError
from planner.spec.safeio import refuse_json_constant
from planner.spec.readers._common import period_from_flags
from planner.spec.schema import Family

MAX_CONFIG_BYTES = 10_000_000

SUPPORTED = tuple(f.value for f in Family)  # the model_type values planner knows

# Gemma3ForConditionalGeneration configs often list only the text fields that differ from these
# (transformers Gemma3TextConfig defaults).
GEMMA3_TEXT_DEFAULTS = {
    "vocab_size": 262_208,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "max_position_embeddings": 131_072,
    "sliding_window": 4096,
    "sliding_window_pattern": 6,
    "tie_word_embeddings": True,
}
TORCH_DTYPES = {"bfloat16": "bf16", "float16": "f16", "half": "f16", "float32": "f32", "float": "f32"}


def load_json(path: Path, limit: int = MAX_CONFIG_BYTES) -> object:
    """Parse a JSON file of bounded size; syntax errors carry line and column."""
    p = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        raise SpecFileError(p, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise SpecFileError(p, f"file is larger than {limit} bytes; not a model config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecFileError(p, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, parse_constant=refuse_json_constant)
    except json.JSONDecodeError as exc:
        raise SpecFileError(p, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except (ValueError, RecursionError) as exc:
        raise SpecFileError(p, f"invalid JSON: {str(exc)[:100]}") from None


class Config:
    """Typed, strict access to config.json fields; errors name the field and the model type."""

    def __init__(self, data: dict, path: str, model_type: str):
        self.data, self.path, self.model_type = data, path, model_type

    def _fail(self, message: str) -> SpecFileError:
        return SpecFileError(self.path, message)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def int(self, key: str, default: int | None = None, required: bool = True) -> int | None:
        value = self.data.get(key)
        if value is None:
            if default is None and required:
                raise self._fail(f"config.json lacks required field '{key}' for model_type {self.model_type}")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(f"config.json field '{key}' should be an integer, got {str(value)[:40]!r}")
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(f"config.json field '{key}' should be true or false, got {str(value)[:40]!r}")
        return value

    def dict(self, key: str) -> dict:
        value = self.data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._fail(f"config.json field '{key}' should be an object")
        return value


def period_from_layer_types(types: object, cfg: Config) -> int | None:
    """Period from ``layer_types`` (list of 'sliding_attention' / 'full_attention'); None = no sliding."""
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise cfg._fail("config.json field 'layer_types' should be a list of strings")
    sliding = [t == "sliding_attention" for t in types]
    if not any(sliding):
        return None
    return period_from_flags(sliding)


def _sliding(cfg: Config, family: Family, n_layers: int) -> tuple[int | None, int]:
    window = cfg.int("sliding_window", required=False) or None
    if window is None:
        return None, 1
    if cfg.has("layer_types"):
        period = period_from_layer_types(cfg.data["layer_types"], cfg)
        return (window, period) if period is not None else (None, 1)
    if family in (Family.qwen2, Family.qwen3, Family.qwen3_moe):
        if not cfg.bool("use_sliding_window", False):
            return None, 1
        first = cfg.int("max_window_layers", 0, required=False)
        return (window, 1) if first == 0 else (None, 1)  # see the module docstring
    if family is Family.gemma2 or family is Family.gpt_oss:
        return window, 2
    if family is Family.gemma3:
        return window, cfg.int("sliding_window_pattern", 6, required=False)
    if family in (Family.llama, Family.deepseek_v3):
        return None, 1
    return window, 1


def native_dtype(top: dict, text: dict, quant_method: str | None) -> str:
    if quant_method in ("fp8", "mxfp4"):
        return quant_method
    for d in (text, top):
        value = d.get("torch_dtype") or d.get("dtype")
        if isinstance(value, str) and value in TORCH_DTYPES:
            return TORCH_DTYPES[value]
    return "bf16"


def _text_fields(top: dict, path: str) -> tuple[str, dict]:
    """The model_type and the dict holding the text model's fields (gemma3 nests them and omits defaults)."""
    model_type = top.get("model_type")
    if not isinstance(model_type, str):
        raise SpecFileError(path, "config.json has no 'model_type'; is this a Hugging Face model config?")
    if model_type not in ("gemma3", "gemma3_text"):
        return model_type, top
    text = top.get("text_config", top) if model_type == "gemma3" else top
    if not isinstance(text, dict):
        raise SpecFileError(path, "config.json field 'text_config' should be an object")
    return "gemma3", {**GEMMA3_TEXT_DEFAULTS, **{k: v for k, v in text.items() if v is not None}}


def _family(model_type: str, path: str) -> Family:
    """The planner family of ``model_type``; unknown types are an input error listing the supported ones."""
    if model_type not in SUPPORTED:
        raise InputError(
            f"{path}: model_type '{model_type[:60]}' is not supported (supported: {', '.join(SUPPORTED)})"
        )
    return Family(model_type)


def _quant_method(cfg: Config, top: dict) -> str | None:
    """``quant_method`` of the text or top-level ``quantization_config``; it decides the native dtype."""
    qc = cfg.dict("quantization_config") or (top.get("quantization_config") or {})
    method = qc.get("quant_method") if isinstance(qc, dict) else None
    return method if isinstance(method, str) else None


def _architecture(cfg: Config, family: Family, top: dict) -> dict:
    """The keyword arguments of Architecture, with the family's defaults for fields configs leave out."""
    method = _quant_method(cfg, top)
    n_layers = cfg.int("num_hidden_layers")
    n_heads = cfg.int("num_attention_heads")
    head_dim = cfg.int("head_dim", required=False)
    arch = {
        "source": cfg.path,
        "family": family,
        "n_layers": n_layers,
        "hidden_size": cfg.int("hidden_size"),
        "n_heads": n_heads,
        "n_kv_heads": cfg.int("num_key_value_heads", required=False),
        "head_dim": head_dim,
        "intermediate_size": cfg.int("intermediate_size"),
        "vocab_size": cfg.int("vocab_size"),
        "max_context": cfg.int("max_position_embeddings"),
        "tie_word_embeddings": cfg.bool("tie_word_embeddings", family in (Family.gemma2, Family.gemma3)),
        "attention_bias": True
        if family is Family.qwen2
        else cfg.bool("attention_bias", family is Family.gpt_oss),
        "mlp_bias": True if family is Family.gpt_oss else cfg.bool("mlp_bias", False),
        "qk_norm": family in (Family.qwen3, Family.qwen3_moe, Family.gemma3),
        "native_dtype": native_dtype(top, cfg.data, method),
    }
    arch["sliding_window"], arch["sliding_window_period"] = _sliding(cfg, family, n_layers)
    return arch


def _mixtral_moe(cfg: Config, family: Family, intermediate_size: int) -> dict:
    """MoE block of mixtral and gpt_oss: every layer's MLP is the expert MLP."""
    return {
        "n_experts": cfg.int("num_local_experts"),
        "n_active_experts": cfg.int("num_experts_per_tok", cfg.int("experts_per_token", required=False)),
        "expert_intermediate_size": intermediate_size,
        "router_bias": family is Family.gpt_oss,
    }


def _qwen3_moe(cfg: Config) -> dict:
    """MoE block of qwen3_moe; layouts mixing dense and sparse layers are rejected."""
    moe = {
        "n_experts": cfg.int("num_experts"),
        "n_active_experts": cfg.int("num_experts_per_tok"),
        "expert_intermediate_size": cfg.int("moe_intermediate_size"),
    }
    if cfg.int("decoder_sparse_step", 1, required=False) != 1 or cfg.data.get("mlp_only_layers"):
        raise InputError(
            f"{cfg.path}: qwen3_moe with decoder_sparse_step != 1 or mlp_only_layers is not supported"
        )
    return moe


def _deepseek_v3_blocks(cfg: Config) -> tuple[dict, dict]:
    """MoE (shared experts, leading dense layers) and MLA blocks of deepseek_v3."""
    moe = {
        "n_experts": cfg.int("n_routed_experts"),
        "n_active_experts": cfg.int("num_experts_per_tok"),
        "expert_intermediate_size": cfg.int("moe_intermediate_size"),
        "n_shared_experts": cfg.int("n_shared_experts", 0, required=False),
        "first_dense_layers": cfg.int("first_k_dense_replace", 0, required=False),
    }
    mla = {
        "q_lora_rank": cfg.int("q_lora_rank", required=False),
        "kv_lora_rank": cfg.int("kv_lora_rank"),
        "qk_nope_head_dim": cfg.int("qk_nope_head_dim"),
        "qk_rope_head_dim": cfg.int("qk_rope_head_dim"),
        "v_head_dim": cfg.int("v_head_dim"),
    }
    return moe, mla


def _expert_blocks(cfg: Config, family: Family, arch: dict) -> tuple[dict | None, dict | None]:
    """The MoE and MLA blocks of the family (None when it has none); MLA also fixes arch's head_dim."""
    moe = mla = None
    if family is Family.mixtral or family is Family.gpt_oss:
        moe = _mixtral_moe(cfg, family, arch["intermediate_size"])
    elif family is Family.qwen3_moe:
        moe = _qwen3_moe(cfg)
    elif family is Family.deepseek_v3:
        moe, mla = _deepseek_v3_blocks(cfg)
        arch["head_dim"] = mla["qk_nope_head_dim"] + mla["qk_rope_head_dim"]  # same as the GGUF reader
    return moe, mla


def config_blocks(top: dict, path: str) -> tuple[dict, dict | None, dict | None]:
    """The keyword arguments of Architecture, MoE (or None) and MLA (or None) for one config.json."""
    model_type, data = _text_fields(top, path)
    family = _family(model_type, path)
    cfg = Config(data, path, model_type)
    arch = _architecture(cfg, family, top)
    moe, mla = _expert_blocks(cfg, family, arch)
    if moe is not None:
        moe["source"] = path
    if mla is not None:
        mla["source"] = path
    return arch, moe, mla


def quant_from_config(top: dict) -> tuple[str | None, str | None]:
    """(planner quant id, label) from ``quantization_config``; (None, None) when there is none."""
    text = top.get("text_config") if isinstance(top.get("text_config"), dict) else {}
    qc = top.get("quantization_config") or text.get("quantization_config")
    if not isinstance(qc, dict):
        return None, None
    method = qc.get("quant_method")
    method = method.lower() if isinstance(method, str) else "unknown"
    bits = qc.get("bits", qc.get("w_bit"))
    if method in ("awq", "gptq"):
        if bits == 4:
            return f"{method}-int4", f"{method.upper()} int4 (config)"
        return None, f"{method.upper()} {str(bits)[:8]}-bit (config)"
    if method in ("fp8", "mxfp4"):
        return method, f"{method.upper()} (config)"
    if method == "bitsandbytes":
        if qc.get("load_in_4bit") is True and qc.get("bnb_4bit_quant_type", "fp4") == "nf4":
            return "nf4", "bitsandbytes NF4 (config)"
        if qc.get("load_in_8bit") is True:
            return "int8", "bitsandbytes LLM.int8 (config)"
    return None, f"{method[:40]} (config)"
