"""Model files through the CLI (`plan -m FILE`): GGUF metadata and array counts at the edges of their
types (sparse files that claim terabytes), Hugging Face config.json values, safetensors headers."""

from __future__ import annotations

import json
import struct

import numpy as np
from gguf import GGUFWriter
from gguf.constants import GGUFValueType
from hypothesis import given
from hypothesis import strategies as st
from safetensors.numpy import save_file

from _contract import ADVERSARIAL, contract, fresh

U64 = st.sampled_from([0, 1, 2, 3, 64, 4096, 2**20, 2**26, 2**31, 2**32 - 1, 2**32, 2**53, 2**63 - 1, 2**63,
                       2**64 - 1])
GGUF_KEYS = ["llama.block_count", "llama.context_length", "llama.embedding_length", "llama.feed_forward_length",
             "llama.attention.head_count", "llama.attention.head_count_kv", "llama.attention.key_length",
             "llama.vocab_size", "general.alignment", "general.file_type"]


def _gguf(path, overrides: dict) -> None:
    """A one-layer llama GGUF (hidden 64) whose metadata values are replaced by ``overrides``."""
    base = {"llama.block_count": 1, "llama.context_length": 512, "llama.embedding_length": 64,
            "llama.feed_forward_length": 128, "llama.attention.head_count": 4, "llama.attention.head_count_kv": 2,
            "general.file_type": 1}
    base.update(overrides)
    w = GGUFWriter(str(path), "llama")
    for key, value in base.items():
        if isinstance(value, float):
            w.add_float64(key, value)
        elif value < 0:
            w.add_int64(key, value)
        else:
            w.add_uint64(key, value)
    w.add_token_list([f"t{i}" for i in range(32)])
    w.add_tensor("token_embd.weight", np.zeros((32, 64), np.float16))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), np.float16))
    w.add_tensor("output_norm.weight", np.ones(64, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=80)
@given(overrides=st.dictionaries(st.sampled_from(GGUF_KEYS),
                                 st.one_of(U64, st.sampled_from([-1, -(2**63), 1e308, float("inf"), float("nan")])),
                                 min_size=1, max_size=3))
def test_gguf_metadata_at_the_edges_keeps_the_contract(overrides):
    path = fresh("model.gguf")
    _gguf(path, overrides)
    contract(["plan", "-m", path, "-g", "rtx4090", "--json"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=40)
@given(elem=st.sampled_from([GGUFValueType.STRING, GGUFValueType.UINT8, GGUFValueType.UINT64,
                             GGUFValueType.ARRAY, 99]),
       count=U64, claimed_size=st.sampled_from([0, 2**20, 2**30, 2**40]), n_kv=st.sampled_from([1, 2, 2**20]))
def test_sparse_gguf_claiming_huge_arrays_costs_nothing(elem, count, claimed_size, n_kv):
    """A few bytes on disk, terabytes claimed: arrays are skipped by length, never looped over."""
    path = fresh("sparse.gguf")
    key = b"tokenizer.ggml.tokens"
    head = (b"GGUF" + struct.pack("<IQQ", 3, 0, n_kv) + struct.pack("<Q", len(key)) + key
            + struct.pack("<IIQ", GGUFValueType.ARRAY, int(elem), count))
    with open(path, "wb") as fh:
        fh.write(head)
        fh.truncate(max(claimed_size, len(head)))
    outcome = contract(["plan", "-m", path, "-g", "rtx4090"])
    assert outcome.code == 2 and outcome.seconds < 10


LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
                "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                "vocab_size": 256, "max_position_embeddings": 512, "torch_dtype": "bfloat16",
                "tie_word_embeddings": False}
CONFIG_VALUES = st.sampled_from([0, -1, 1, 3, 2**31, 2**63, 10**30, 1e308, 0.5, True, None, "64", [], {},
                                 "NaN", "Infinity"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=60)
@given(changes=st.dictionaries(st.sampled_from(sorted(LLAMA_CONFIG) + ["head_dim", "sliding_window",
                                                                       "rope_scaling", "num_local_experts"]),
                               CONFIG_VALUES, min_size=1, max_size=3),
       raw_constant=st.sampled_from([None, "NaN", "Infinity", "-Infinity"]))
def test_hf_config_at_the_edges_keeps_the_contract(changes, raw_constant):
    folder = fresh("hf")
    folder.mkdir()
    text = json.dumps({**LLAMA_CONFIG, **changes})
    if raw_constant:
        text = text.replace('"hidden_size": ' + json.dumps(changes.get("hidden_size", 64)),
                            '"hidden_size": ' + raw_constant)
    (folder / "config.json").write_text(text)
    contract(["plan", "-m", folder, "-g", "rtx4090", "--json"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=40)
@given(shape=st.lists(st.sampled_from([0, 1, 64, 2**31, 2**63, -1]), max_size=3),
       offsets=st.tuples(U64, U64), dtype=st.sampled_from(["F16", "BF16", "F32", "I8", "F8_E4M3", "X"]),
       header_len=st.one_of(st.none(), U64))
def test_safetensors_headers_at_the_edges_keep_the_contract(shape, offsets, dtype, header_len):
    folder = fresh("st")
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    header = json.dumps({"model.embed_tokens.weight": {"dtype": dtype, "shape": shape,
                                                       "data_offsets": list(offsets)}}).encode()
    n = len(header) if header_len is None else header_len
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", n) + header + b"\0" * 64)
    contract(["plan", "-m", folder, "-g", "rtx4090", "--json"])


def test_a_zero_length_safetensors_tensor_is_accepted():
    folder = fresh("st0")
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    save_file({"model.embed_tokens.weight": np.zeros((256, 64), np.float16),
               "model.empty": np.zeros((0, 64), np.float16)}, str(folder / "model.safetensors"))
    outcome = contract(["plan", "-m", folder, "-g", "rtx4090", "--json"])
    assert outcome.code == 0, outcome.err
