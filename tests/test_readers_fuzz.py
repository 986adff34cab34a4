"""Fuzz the model-file readers: any input either reads or raises InputError, never anything else."""

from __future__ import annotations

import atexit
import io
import json
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGUFWriter
from gguf.constants import GGMLQuantizationType as T
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from planner.errors import InputError
from planner.spec.readers import read_model_file
from planner.spec.readers.gguf_header import parse_gguf_header
from planner.spec.readers.hf_config import SUPPORTED, config_blocks
from planner.spec.readers.safetensors_header import parse_safetensors_header

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORK = Path(tempfile.mkdtemp(prefix="planner-fuzz-"))
atexit.register(shutil.rmtree, WORK, ignore_errors=True)


def _valid_gguf() -> bytes:
    """A small llama-arch GGUF (hidden 64, one layer, Q8_0/F16/F32 tensors)."""
    path = WORK / "valid.gguf"
    w = GGUFWriter(str(path), "llama")
    w.add_name("fuzz")
    w.add_block_count(1)
    w.add_context_length(512)
    w.add_embedding_length(64)
    w.add_feed_forward_length(128)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_file_type(7)
    w.add_token_list([f"t{i}" for i in range(32)])
    w.add_array("llama.test_flags", [True, False])
    w.add_tensor("token_embd.weight", np.zeros((32, 64 // 32 * 34), np.uint8), raw_dtype=T.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", np.zeros((64, 64), np.float16))
    w.add_tensor("blk.0.attn_norm.weight", np.ones(64, np.float32))
    w.add_tensor("output_norm.weight", np.ones(64, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def _valid_safetensors() -> bytes:
    path = WORK / "valid.safetensors"
    save_file(
        {
            "model.embed_tokens.weight": np.zeros((32, 64), np.float16),
            "model.layers.0.self_attn.q_proj.weight": np.zeros((64, 64), np.float16),
            "model.norm.weight": np.ones(64, np.float32),
        },
        str(path),
        metadata={"format": "pt"},
    )
    return path.read_bytes()


VALID_GGUF = _valid_gguf()
VALID_ST = _valid_safetensors()
HEADER_END = parse_gguf_header(io.BytesIO(VALID_GGUF), len(VALID_GGUF), "valid").data_offset
INTERESTING_U64 = [0, 1, 2, 3, 4, 255, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1]


def _gguf_ok(data: bytes) -> None:
    try:
        parse_gguf_header(io.BytesIO(data), len(data), "fuzz.gguf")
    except InputError:
        pass


def _read_ok(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        read_model_file(path)
    except InputError:
        pass


@st.composite
def mutated(draw, valid: bytes, region: int) -> bytes:
    """A valid file with a few bytes / u64 fields overwritten in its header, maybe truncated."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, region - 1))
        if draw(st.booleans()):
            data[pos] = draw(st.integers(0, 255))
        else:
            value = draw(st.sampled_from(INTERESTING_U64) | st.integers(0, 2**64 - 1))
            data[pos : pos + 8] = struct.pack("<Q", value)
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes_gguf(data):
    _gguf_ok(data)
    _gguf_ok(b"GGUF" + struct.pack("<I", 3) + data)


@FUZZ
@given(mutated(VALID_GGUF, HEADER_END))
def test_mutated_gguf_full_read(data):
    _gguf_ok(data)
    _read_ok(WORK / "mutated.gguf", data)


@FUZZ
@given(st.binary(max_size=256))
def test_random_bytes_safetensors(data):
    for blob in (data, struct.pack("<Q", len(data)) + data):
        try:
            parse_safetensors_header(io.BytesIO(blob), len(blob), "fuzz.safetensors")
        except InputError:
            pass


@FUZZ
@given(mutated(VALID_ST, 8 + struct.unpack("<Q", VALID_ST[:8])[0]))
def test_mutated_safetensors_full_read(data):
    folder = WORK / "st"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 1,
                "num_attention_heads": 4,
                "vocab_size": 32,
                "max_position_embeddings": 512,
            }
        )
    )
    _read_ok(folder / "model.safetensors", data)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
FIELDS = [
    "model_type",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "vocab_size",
    "max_position_embeddings",
    "sliding_window",
    "layer_types",
    "use_sliding_window",
    "tie_word_embeddings",
    "quantization_config",
    "torch_dtype",
    "text_config",
    "num_local_experts",
    "num_experts_per_tok",
    "kv_lora_rank",
    "first_k_dense_replace",
]
BASE = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": 32,
    "max_position_embeddings": 512,
}
MODEL_TYPES = st.sampled_from([*SUPPORTED, "bert"])


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=5), MODEL_TYPES)
def test_random_config_fields(changes, model_type):
    cfg = {**BASE, "model_type": model_type, **changes}
    path = WORK / "cfg" / "config.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(cfg))
    try:
        config_blocks(cfg, str(path))
        read_model_file(path)
    except InputError:
        pass
