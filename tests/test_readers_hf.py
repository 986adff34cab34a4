"""Hugging Face reader: config.json → spec, safetensors headers → exact bytes, offline; bad input → InputError."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from planner.spec.catalog import load_model
from planner.errors import InputError, SpecFileError
from planner.spec.readers import is_model_file, read_model_file
from planner.spec.readers._params import count_active_params
from planner.spec.readers.safetensors_header import parse_safetensors_header

# values of meta-llama/Llama-3.1-8B config.json
LLAMA31_8B = {
    "architectures": ["LlamaForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "hidden_act": "silu",
    "hidden_size": 4096,
    "initializer_range": 0.02,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.43.0.dev0",
    "use_cache": True,
    "vocab_size": 128256,
}

# trimmed real configs; the last item is the parameter count the model card states
CONFIGS = {
    "gpt-oss-20b": (
        {
            "attention_bias": True,
            "experts_per_token": 4,
            "head_dim": 64,
            "hidden_size": 2880,
            "intermediate_size": 2880,
            "layer_types": ["sliding_attention", "full_attention"] * 12,
            "max_position_embeddings": 131072,
            "model_type": "gpt_oss",
            "num_attention_heads": 64,
            "num_experts_per_tok": 4,
            "num_hidden_layers": 24,
            "num_key_value_heads": 8,
            "num_local_experts": 32,
            "quantization_config": {"modules_to_not_convert": ["lm_head"], "quant_method": "mxfp4"},
            "sliding_window": 128,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "vocab_size": 201088,
        },
        20.91e9,
    ),
    "deepseek-v3": (
        {
            "model_type": "deepseek_v3",
            "hidden_size": 7168,
            "intermediate_size": 18432,
            "moe_intermediate_size": 2048,
            "n_routed_experts": 256,
            "n_shared_experts": 1,
            "num_experts_per_tok": 8,
            "first_k_dense_replace": 3,
            "num_hidden_layers": 61,
            "num_attention_heads": 128,
            "num_key_value_heads": 128,
            "q_lora_rank": 1536,
            "kv_lora_rank": 512,
            "qk_nope_head_dim": 128,
            "qk_rope_head_dim": 64,
            "v_head_dim": 128,
            "vocab_size": 129280,
            "max_position_embeddings": 163840,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "quantization_config": {"fmt": "e4m3", "quant_method": "fp8", "weight_block_size": [128, 128]},
        },
        671e9,
    ),
    "qwen3-30b-a3b": (
        {
            "model_type": "qwen3_moe",
            "hidden_size": 2048,
            "intermediate_size": 6144,
            "moe_intermediate_size": 768,
            "num_experts": 128,
            "num_experts_per_tok": 8,
            "num_hidden_layers": 48,
            "num_attention_heads": 32,
            "num_key_value_heads": 4,
            "head_dim": 128,
            "vocab_size": 151936,
            "max_position_embeddings": 40960,
            "tie_word_embeddings": False,
            "use_sliding_window": False,
            "sliding_window": None,
            "max_window_layers": 48,
            "decoder_sparse_step": 1,
            "mlp_only_layers": [],
            "torch_dtype": "bfloat16",
        },
        30.53e9,
    ),
    "gemma-2-9b": (
        {
            "model_type": "gemma2",
            "hidden_size": 3584,
            "intermediate_size": 14336,
            "num_hidden_layers": 42,
            "num_attention_heads": 16,
            "num_key_value_heads": 8,
            "head_dim": 256,
            "vocab_size": 256000,
            "max_position_embeddings": 8192,
            "sliding_window": 4096,
            "torch_dtype": "float32",
        },
        9.24e9,
    ),
    "gemma-3-4b-it": (
        {  # the multimodal config lists only the text fields that differ from the defaults
            "architectures": ["Gemma3ForConditionalGeneration"],
            "model_type": "gemma3",
            "text_config": {
                "hidden_size": 2560,
                "intermediate_size": 10240,
                "model_type": "gemma3_text",
                "num_hidden_layers": 34,
                "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
                "sliding_window": 1024,
            },
            "torch_dtype": "bfloat16",
            "vision_config": {"hidden_size": 1152, "model_type": "siglip_vision_model"},
        },
        3.88e9,
    ),  # text part
    "mistral-7b-v0.1": (
        {
            "model_type": "mistral",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "sliding_window": 4096,
            "vocab_size": 32000,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        7.24e9,
    ),
    "mixtral-8x7b": (
        {
            "model_type": "mixtral",
            "hidden_size": 4096,
            "intermediate_size": 14336,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "max_position_embeddings": 32768,
            "sliding_window": None,
            "vocab_size": 32000,
            "num_local_experts": 8,
            "num_experts_per_tok": 2,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        46.7e9,
    ),
    "qwen2.5-7b": (
        {
            "model_type": "qwen2",
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 131072,
            "sliding_window": 131072,
            "use_sliding_window": False,
            "max_window_layers": 28,
            "vocab_size": 152064,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        7.62e9,
    ),
    "phi-3-mini-4k": (
        {
            "model_type": "phi3",
            "hidden_size": 3072,
            "intermediate_size": 8192,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 4096,
            "sliding_window": 2047,
            "vocab_size": 32064,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        },
        3.82e9,
    ),
}


def write_config(folder: Path, cfg: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


def test_llama31_8b_matches_catalog(tmp_path):
    mf = read_model_file(write_config(tmp_path / "Llama-3.1-8B", LLAMA31_8B))
    ref = load_model("llama3.1-8b")
    assert mf.spec.architecture.model_dump(exclude={"source"}) == ref.architecture.model_dump(
        exclude={"source"}
    )
    assert mf.spec.published.total_params == ref.published.total_params  # computed from the config
    assert "computed from config.json" in mf.spec.published.source
    assert mf.layout is None and mf.quant == "bf16" and mf.spec.id == "llama-3.1-8b"


def test_index_total_size_without_weights(tmp_path):
    folder = tmp_path / "m"
    write_config(folder, LLAMA31_8B)
    index = {
        "metadata": {"total_size": 16060522496},
        "weight_map": {"lm_head.weight": "model-00004-of-00004.safetensors"},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    mf = read_model_file(folder)
    assert mf.spec.published.total_params == 8030261248 and "total_size" in mf.spec.published.source


@pytest.mark.parametrize("name", list(CONFIGS))
def test_model_types(name, tmp_path):
    cfg, published = CONFIGS[name]
    mf = read_model_file(write_config(tmp_path / name, cfg))
    assert abs(mf.spec.published.total_params / published - 1) < 0.002
    a, moe, mla = mf.spec.architecture, mf.spec.moe, mf.spec.mla
    if name == "gpt-oss-20b":
        assert (a.sliding_window, a.sliding_window_period, a.attention_bias, a.mlp_bias) == (
            128,
            2,
            True,
            True,
        )
        assert (moe.n_experts, moe.n_active_experts, moe.router_bias) == (32, 4, True)
        assert mf.quant == "mxfp4" and a.native_dtype == "mxfp4" and a.head_dim == 64
    elif name == "deepseek-v3":
        assert (
            moe.n_experts,
            moe.n_shared_experts,
            moe.first_dense_layers,
            moe.expert_intermediate_size,
        ) == (256, 1, 3, 2048)
        assert (
            mla.q_lora_rank,
            mla.kv_lora_rank,
            mla.qk_nope_head_dim,
            mla.qk_rope_head_dim,
            mla.v_head_dim,
        ) == (1536, 512, 128, 64, 128)
        assert mf.quant == "fp8" and a.native_dtype == "fp8"
        assert abs(count_active_params(mf.spec) / 37e9 - 1) < 0.02
    elif name == "qwen3-30b-a3b":
        assert a.qk_norm and a.sliding_window is None and (moe.n_experts, moe.n_active_experts) == (128, 8)
    elif name == "gemma-2-9b":
        assert (a.sliding_window, a.sliding_window_period, a.tie_word_embeddings, a.head_dim) == (
            4096,
            2,
            True,
            256,
        )
        assert mf.quant == "f32"
    elif name == "gemma-3-4b-it":
        assert (a.sliding_window, a.sliding_window_period, a.qk_norm, a.tie_word_embeddings) == (
            1024,
            6,
            True,
            True,
        )
        assert (a.n_heads, a.n_kv_heads, a.vocab_size, a.max_context) == (8, 4, 262208, 131072)
    elif name == "mistral-7b-v0.1":
        assert (a.sliding_window, a.sliding_window_period) == (4096, 1)
    elif name == "mixtral-8x7b":
        assert (moe.n_experts, moe.n_active_experts, moe.expert_intermediate_size) == (8, 2, 14336)
    elif name == "qwen2.5-7b":
        assert a.sliding_window is None and a.attention_bias
    elif name == "phi-3-mini-4k":
        assert (a.sliding_window, a.sliding_window_period) == (2047, 1)


def test_gemma3_layer_types_and_qwen_partial_window(tmp_path):
    cfg = {**CONFIGS["gemma-3-4b-it"][0]}
    cfg["text_config"] = {
        **cfg["text_config"],
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 6,
    }
    assert read_model_file(write_config(tmp_path / "g", cfg)).spec.architecture.sliding_window_period == 6
    qwen = {
        **CONFIGS["qwen2.5-7b"][0],
        "use_sliding_window": True,
        "max_window_layers": 0,
        "sliding_window": 4096,
    }
    a = read_model_file(write_config(tmp_path / "q", qwen)).spec.architecture
    assert (a.sliding_window, a.sliding_window_period) == (4096, 1)


@pytest.mark.parametrize(
    "qc, quant, label",
    [
        ({"quant_method": "awq", "bits": 4, "group_size": 128}, "awq-int4", "AWQ int4 (config)"),
        ({"quant_method": "gptq", "bits": 4}, "gptq-int4", "GPTQ int4 (config)"),
        ({"quant_method": "gptq", "bits": 8}, None, "GPTQ 8-bit (config)"),
        ({"quant_method": "bitsandbytes", "load_in_4bit": True}, None, "bitsandbytes (config)"),  # fp4
        (
            {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"},
            "nf4",
            "bitsandbytes NF4 (config)",
        ),
        ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "int8", "bitsandbytes LLM.int8 (config)"),
        ({"quant_method": "compressed-tensors"}, None, "compressed-tensors (config)"),
    ],
)
def test_quantization_config(qc, quant, label, tmp_path):
    mf = read_model_file(write_config(tmp_path / "q", {**LLAMA31_8B, "quantization_config": qc}))
    assert (mf.quant, mf.label) == (quant, label)


# ------------------------------------------------------------------------------------------
# safetensors checkpoints
# ------------------------------------------------------------------------------------------

TINY = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 128,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
}


def tiny_tensors(tied: bool = False) -> dict[str, np.ndarray]:
    t = {
        "model.embed_tokens.weight": np.zeros((128, 64), np.float16),
        "model.norm.weight": np.ones(64, np.float32),
    }
    for i in range(2):
        p = f"model.layers.{i}."
        t |= {
            p + "self_attn.q_proj.weight": np.zeros((64, 64), np.float16),
            p + "self_attn.k_proj.weight": np.zeros((32, 64), np.float16),
            p + "self_attn.v_proj.weight": np.zeros((32, 64), np.float16),
            p + "self_attn.o_proj.weight": np.zeros((64, 64), np.float16),
            p + "mlp.gate_proj.weight": np.zeros((128, 64), np.float16),
            p + "mlp.up_proj.weight": np.zeros((128, 64), np.float16),
            p + "mlp.down_proj.weight": np.zeros((64, 128), np.float16),
            p + "input_layernorm.weight": np.ones(64, np.float32),
            p + "post_attention_layernorm.weight": np.ones(64, np.float32),
        }
    if not tied:
        t["lm_head.weight"] = np.zeros((128, 64), np.float16)
    return t


LAYER_BYTES = 2 * (64 * 64 * 2 + 2 * 32 * 64 + 3 * 128 * 64) + 2 * 64 * 4


def test_safetensors_exact_bytes(tmp_path):
    folder = tmp_path / "tiny"
    write_config(folder, TINY)
    tensors = tiny_tensors()
    save_file(tensors, str(folder / "model.safetensors"))
    mf = read_model_file(folder)
    layout = mf.layout
    assert layout.file_bytes == sum(a.nbytes for a in tensors.values())
    assert layout.layer_bytes == (LAYER_BYTES, LAYER_BYTES) and layout.other_bytes == 64 * 4
    assert layout.token_embd_bytes == layout.output_bytes == 128 * 64 * 2 and not layout.tied_embeddings
    assert layout.n_params == mf.spec.published.total_params == sum(a.size for a in tensors.values())
    assert mf.quant == "f16" and mf.label == "F16 (safetensors)"


def test_sharded_checkpoint_and_missing_shard(tmp_path):
    folder = tmp_path / "sharded"
    write_config(folder, {**TINY, "tie_word_embeddings": True})
    tensors = tiny_tensors(tied=True)
    names = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": names[: len(names) // 2],
        "model-00002-of-00002.safetensors": names[len(names) // 2 :],
    }
    for shard, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, str(folder / shard))
    index = {
        "metadata": {"total_size": sum(a.nbytes for a in tensors.values())},
        "weight_map": {k: s for s, keys in shards.items() for k in keys},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    layout = read_model_file(folder).layout
    assert layout.tied_embeddings and layout.file_bytes == index["metadata"]["total_size"]
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(InputError, match="missing"):
        read_model_file(folder)


def test_hf_cache_snapshot(tmp_path):
    repo = tmp_path / "hub" / "models--acme--Tiny-Chat"
    snap = repo / "snapshots" / "0123abcd"
    write_config(snap, TINY)
    save_file(tiny_tensors(), str(snap / "model.safetensors"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for path in (snap, repo):
        assert is_model_file(str(path))
        mf = read_model_file(path)
        assert mf.spec.name == "acme/Tiny-Chat" and mf.spec.id == "tiny-chat" and mf.layout is not None


def test_packed_int4_parameter_rule(tmp_path):
    folder = tmp_path / "awq"
    write_config(
        folder, {**TINY, "quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 32}}
    )
    tensors = {k: v for k, v in tiny_tensors().items() if "mlp.gate_proj" not in k}
    for i in range(2):  # AWQ: 8 int4 values per int32 along the output dimension
        p = f"model.layers.{i}.mlp.gate_proj."
        tensors |= {
            p + "qweight": np.zeros((64, 16), np.int32),
            p + "qzeros": np.zeros((2, 16), np.int32),
            p + "scales": np.zeros((2, 128), np.float16),
        }
    save_file(tensors, str(folder / "model.safetensors"))
    mf = read_model_file(folder)
    assert mf.quant == "awq-int4"
    assert mf.layout.n_params == sum(a.size for a in tiny_tensors().values())  # same as unquantized
    assert mf.layout.file_bytes == sum(a.nbytes for a in tensors.values())


def test_moe_expert_bytes_and_mxfp4_blocks(tmp_path):
    folder = tmp_path / "moe"
    cfg = {
        **TINY,
        "model_type": "gpt_oss",
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "head_dim": 16,
        "sliding_window": 128,
        "layer_types": ["sliding_attention", "full_attention"],
        "quantization_config": {"quant_method": "mxfp4"},
    }
    write_config(folder, cfg)
    tensors = {k: v for k, v in tiny_tensors().items() if ".mlp." not in k}
    for i in range(
        2
    ):  # gpt-oss MXFP4 experts: uint8 blocks of 32 values in 16 bytes, one E8M0 scale per block
        p = f"model.layers.{i}.mlp."
        tensors |= {
            p + "router.weight": np.zeros((4, 64), np.float16),
            p + "router.bias": np.zeros(4, np.float16),
            p + "experts.gate_up_proj_blocks": np.zeros((4, 256, 2, 16), np.uint8),
            p + "experts.gate_up_proj_scales": np.zeros((4, 256, 2), np.uint8),
            p + "experts.down_proj_blocks": np.zeros((4, 64, 4, 16), np.uint8),
            p + "experts.down_proj_scales": np.zeros((4, 64, 4), np.uint8),
        }
    save_file(tensors, str(folder / "model.safetensors"))
    mf = read_model_file(folder)
    expert_bytes = 4 * (256 * 2 * 17 + 64 * 4 * 17)
    assert mf.layout.layer_expert_bytes == (expert_bytes, expert_bytes) and mf.quant == "mxfp4"
    assert mf.layout.file_bytes == sum(a.nbytes for a in tensors.values())
    experts_params = 2 * 4 * (256 * 64 + 64 * 128)  # unpacked values; scales are not parameters
    dense = sum(a.size for k, a in tensors.items() if "experts" not in k)
    assert mf.layout.n_params == dense + experts_params


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------


def test_unsupported_model_type_and_missing_field(tmp_path):
    with pytest.raises(InputError, match="model_type 'mamba' is not supported"):
        read_model_file(write_config(tmp_path / "a", {**TINY, "model_type": "mamba"}))
    cfg = {k: v for k, v in TINY.items() if k != "num_hidden_layers"}
    with pytest.raises(InputError, match="num_hidden_layers"):
        read_model_file(write_config(tmp_path / "b", cfg))
    with pytest.raises(InputError, match="hidden_size"):
        read_model_file(write_config(tmp_path / "c", {**TINY, "hidden_size": "64"}))
    with pytest.raises(InputError, match="n_heads"):
        read_model_file(write_config(tmp_path / "d", {**TINY, "num_attention_heads": 0}))


def test_malformed_json_has_line_and_column(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "model_type": "llama",\n  "hidden_size": 64,,\n}')
    with pytest.raises(SpecFileError) as err:
        read_model_file(path)
    assert (err.value.line, err.value.column) == (3, 21)  # the second comma
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        read_model_file(path)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(InputError, match="UTF-8"):
        read_model_file(path)


def test_config_too_large(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"x": "' + "a" * 10_000_001 + '"}')
    with pytest.raises(InputError, match="larger than"):
        read_model_file(path)


def _st(entries: dict, data: bytes = b"") -> bytes:
    header = json.dumps(entries).encode()
    return struct.pack("<Q", len(header)) + header + data


BAD_SAFETENSORS = {
    "header length 2^60": struct.pack("<Q", 2**60) + b"{}",
    "non-dict header": struct.pack("<Q", 6) + b"[1, 2]",
    "short file": b"\x01\x00",
    "not JSON": struct.pack("<Q", 4) + b"{{{{",
    "huge integer": struct.pack("<Q", 5006) + b'{"a":' + b"9" * 5000 + b"}",
    "offsets beyond EOF": _st({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8),
    "size mismatch": _st({"t": {"dtype": "F32", "shape": [4], "data_offsets": [0, 8]}}, b"\0" * 16),
    "unknown dtype": _st({"t": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 1]}}, b"\0"),
    "negative shape": _st({"t": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"\0"),
    "bad metadata": _st({"__metadata__": {"a": 1}}),
    "entry not an object": _st({"t": [1]}),
}


@pytest.mark.parametrize("name", list(BAD_SAFETENSORS))
def test_bad_safetensors(name, tmp_path):
    data = BAD_SAFETENSORS[name]
    with pytest.raises(InputError):
        parse_safetensors_header(io.BytesIO(data), len(data), name)
    folder = tmp_path / "m"
    write_config(folder, TINY)
    (folder / "model.safetensors").write_bytes(data)
    with pytest.raises(InputError):
        read_model_file(folder)


def test_index_with_path_traversal(tmp_path):
    folder = tmp_path / "m"
    write_config(folder, TINY)
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "../../etc/passwd"}})
    )
    with pytest.raises(InputError, match="plain"):
        read_model_file(folder)


def test_not_a_model(tmp_path):
    with pytest.raises(InputError):
        read_model_file(tmp_path / "nothing-here")
    with pytest.raises(InputError):
        read_model_file(tmp_path)  # empty folder
    (tmp_path / "w.safetensors").write_bytes(b"")
    with pytest.raises(InputError, match="config.json"):
        read_model_file(tmp_path / "w.safetensors")
