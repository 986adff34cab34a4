"""GGUF reader: files written with gguf.GGUFWriter read back exactly; crafted headers fail fast."""

from __future__ import annotations

import io
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES, GGUFValueType, LlamaFileType
from gguf.constants import GGMLQuantizationType as T

from planner.errors import InputError
from planner.spec.readers import is_model_file, read_model_file
from planner.spec.readers.gguf_header import parse_gguf_header, read_gguf_header

HIDDEN, FF, VOCAB, KV_DIM = 256, 512, 300, 128


def nbytes(shape: tuple[int, ...], qtype: T) -> int:
    """Bytes of a tensor with numpy shape ``shape`` (last axis = row length) in ``qtype``."""
    block, size = GGML_QUANT_SIZES[qtype]
    return int(np.prod(shape)) // block * size


def add(w: GGUFWriter, name: str, shape: tuple[int, ...], qtype: T) -> int:
    """Add a tensor of raw (zero) bytes with the right size for its type; returns its byte size."""
    block, size = GGML_QUANT_SIZES[qtype]
    byte_shape = (*shape[:-1], shape[-1] // block * size)
    w.add_tensor(name, np.zeros(byte_shape, np.uint8), raw_dtype=qtype)
    return nbytes(shape, qtype)


LAYER_TENSORS = [  # name, numpy shape (rows, row length), type
    ("attn_norm.weight", (HIDDEN,), T.F32),
    ("attn_q.weight", (HIDDEN, HIDDEN), T.Q4_K),
    ("attn_k.weight", (KV_DIM, HIDDEN), T.F16),
    ("attn_v.weight", (KV_DIM, HIDDEN), T.Q6_K),
    ("attn_output.weight", (HIDDEN, HIDDEN), T.Q4_K),
    ("ffn_norm.weight", (HIDDEN,), T.F32),
    ("ffn_gate.weight", (FF, HIDDEN), T.Q4_K),
    ("ffn_up.weight", (FF, HIDDEN), T.Q4_K),
    ("ffn_down.weight", (HIDDEN, FF), T.Q6_K),
]
LAYER_BYTES = sum(nbytes(s, t) for _, s, t in LAYER_TENSORS)


def write_tiny_llama(
    path: Path, *, tied: bool = False, n_layers: int = 2, split_max_tensors: int = 0, arch: str = "llama"
) -> int:
    """A tiny llama-arch Q4_K_M GGUF; returns the total tensor data bytes written."""
    w = GGUFWriter(str(path), arch, split_max_tensors=split_max_tensors)
    w.add_name("Tiny Llama")
    w.add_block_count(n_layers)
    w.add_context_length(4096)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FF)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_file_type(LlamaFileType.MOSTLY_Q4_K_M)
    w.add_token_list([f"tok{i}" for i in range(VOCAB)])
    total = add(w, "token_embd.weight", (VOCAB, HIDDEN), T.Q4_K)
    for i in range(n_layers):
        for name, shape, qtype in LAYER_TENSORS:
            total += add(w, f"blk.{i}.{name}", shape, qtype)
    total += add(w, "output_norm.weight", (HIDDEN,), T.F32)
    if not tied:
        total += add(w, "output.weight", (VOCAB, HIDDEN), T.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return total


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, int]:
    path = tmp_path / "tiny-llama-Q4_K_M.gguf"
    return path, write_tiny_llama(path)


def test_spec_read_back_equals_written(tiny):
    path, _ = tiny
    mf = read_model_file(path)
    a = mf.spec.architecture
    assert (a.family.value, a.n_layers, a.hidden_size, a.n_heads, a.n_kv_heads, a.head_dim) == (
        "llama",
        2,
        HIDDEN,
        4,
        2,
        HIDDEN // 4,
    )
    assert (a.intermediate_size, a.vocab_size, a.max_context, a.tie_word_embeddings) == (
        FF,
        VOCAB,
        4096,
        False,
    )
    assert mf.spec.moe is None and mf.spec.mla is None
    assert mf.spec.name == "Tiny Llama" and mf.spec.id == "tiny-llama-q4_k_m"
    assert mf.quant == "q4_k_m" and mf.label == "Q4_K_M (file)"
    assert mf.spec.published.source == str(path)


def test_weight_bytes_exact(tiny):
    path, total = tiny
    layout = read_model_file(path).layout
    assert layout.file_bytes == total
    assert layout.token_embd_bytes == nbytes((VOCAB, HIDDEN), T.Q4_K)
    assert layout.output_bytes == nbytes((VOCAB, HIDDEN), T.Q6_K) and not layout.tied_embeddings
    assert layout.layer_bytes == (LAYER_BYTES, LAYER_BYTES)
    assert layout.other_bytes == HIDDEN * 4 and layout.layer_expert_bytes == ()
    header = read_gguf_header(path)
    assert header.tensor_bytes == total
    # the data region is the tensors plus alignment padding, nothing more
    assert header.file_size - header.data_offset - total < header.alignment * len(header.tensors)
    n_params = VOCAB * HIDDEN * 2 + 2 * sum(int(np.prod(s)) for _, s, _ in LAYER_TENSORS) + HIDDEN
    assert layout.n_params == n_params == read_model_file(path).spec.published.total_params


def test_tied_embeddings(tmp_path):
    path = tmp_path / "tied.gguf"
    total = write_tiny_llama(path, tied=True)
    mf = read_model_file(path)
    assert mf.spec.architecture.tie_word_embeddings
    assert mf.layout.tied_embeddings and mf.layout.output_bytes == mf.layout.token_embd_bytes
    assert mf.layout.file_bytes == total
    assert mf.spec.published.total_params == mf.layout.n_params  # the shared table counted once


def test_split_files_read_as_one(tmp_path):
    whole = tmp_path / "whole.gguf"
    total = write_tiny_llama(whole)
    split = tmp_path / "split.gguf"
    write_tiny_llama(split, split_max_tensors=7)
    parts = sorted(tmp_path.glob("split-*-of-*.gguf"))
    assert len(parts) >= 3
    mf_whole, mf_split = read_model_file(whole), read_model_file(parts[0])
    assert mf_split.layout == mf_whole.layout and mf_split.layout.file_bytes == total
    assert mf_split.spec.architecture.model_dump(exclude={"source"}) == mf_whole.spec.architecture.model_dump(
        exclude={"source"}
    )
    assert read_model_file(parts[1]).layout == mf_whole.layout  # any part finds the others
    parts[-1].unlink()
    with pytest.raises(InputError, match="missing part"):
        read_model_file(parts[0])


def test_folder_with_one_gguf(tiny):
    path, total = tiny
    assert is_model_file(str(path.parent)) and is_model_file("x.gguf") and not is_model_file("x.yaml")
    assert read_model_file(path.parent).layout.file_bytes == total


def _moe_file(path: Path, arch: str, extra: dict, tensors: list[tuple[str, tuple[int, ...], T]]) -> None:
    w = GGUFWriter(str(path), arch)
    w.add_block_count(2)
    w.add_context_length(8192)
    w.add_embedding_length(HIDDEN)
    w.add_feed_forward_length(FF)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_vocab_size(VOCAB)
    for key, value in extra.items():
        w.add_uint32(key.format(arch=arch), value)
    add(w, "token_embd.weight", (VOCAB, HIDDEN), T.Q8_0)
    for i in range(2):
        for name, shape, qtype in tensors:
            add(w, f"blk.{i}.{name}", shape, qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_qwen3moe_experts(tmp_path):
    path = tmp_path / "moe.gguf"
    experts = [(f"ffn_{n}_exps.weight", (8, 64, HIDDEN), T.Q8_0) for n in ("gate", "up")]
    experts.append(("ffn_down_exps.weight", (8, HIDDEN, 64), T.Q8_0))
    tensors = [("attn_q_norm.weight", (64,), T.F32), ("ffn_gate_inp.weight", (8, HIDDEN), T.F32), *experts]
    _moe_file(
        path,
        "qwen3moe",
        {"{arch}.expert_count": 8, "{arch}.expert_used_count": 2, "{arch}.expert_feed_forward_length": 64},
        tensors,
    )
    mf = read_model_file(path)
    assert mf.spec.architecture.family.value == "qwen3_moe" and mf.spec.architecture.qk_norm
    assert mf.spec.architecture.tie_word_embeddings and mf.spec.architecture.vocab_size == VOCAB
    moe = mf.spec.moe
    assert (moe.n_experts, moe.n_active_experts, moe.expert_intermediate_size) == (8, 2, 64)
    expert_bytes = 3 * nbytes((8, 64, HIDDEN), T.Q8_0)
    assert mf.layout.layer_expert_bytes == (expert_bytes, expert_bytes)
    assert mf.layout.layer_bytes[0] == expert_bytes + 64 * 4 + 8 * HIDDEN * 4
    assert mf.quant is None and mf.label == "mostly Q8_0 (file)"


def test_deepseek2_mla(tmp_path):
    path = tmp_path / "ds.gguf"
    extra = {
        "{arch}.expert_count": 4,
        "{arch}.expert_used_count": 2,
        "{arch}.expert_feed_forward_length": 64,
        "{arch}.expert_shared_count": 1,
        "{arch}.leading_dense_block_count": 1,
        "{arch}.attention.kv_lora_rank": 32,
        "{arch}.attention.q_lora_rank": 48,
        "{arch}.rope.dimension_count": 16,
        "{arch}.attention.key_length": 48,
        "{arch}.attention.value_length": 32,
    }
    _moe_file(path, "deepseek2", extra, [("attn_kv_a_mqa.weight", (48, HIDDEN), T.F16)])
    spec = read_model_file(path).spec
    assert spec.architecture.family.value == "deepseek_v3"
    assert (spec.mla.kv_lora_rank, spec.mla.q_lora_rank, spec.mla.qk_rope_head_dim) == (32, 48, 16)
    assert (spec.mla.qk_nope_head_dim, spec.mla.v_head_dim) == (32, 32)
    assert (spec.moe.n_shared_experts, spec.moe.first_dense_layers) == (1, 1)


def test_gemma2_sliding_and_unsupported_arch(tmp_path):
    path = tmp_path / "g2.gguf"
    _moe_file(path, "gemma2", {"{arch}.attention.sliding_window": 4096}, [])
    a = read_model_file(path).spec.architecture
    assert (a.sliding_window, a.sliding_window_period) == (4096, 2)
    bad = tmp_path / "mamba.gguf"
    _moe_file(bad, "mamba", {}, [])
    with pytest.raises(InputError, match="'mamba' is not supported"):
        read_model_file(bad)


# ------------------------------------------------------------------------------------------
# crafted files (docs/security.md): each must fail with InputError, fast
# ------------------------------------------------------------------------------------------


def _s(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def _head(n_tensors: int, n_kv: int, version: int = 3) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def _tensor(
    name: bytes, dims: list[int], qtype: int = 0, offset: int = 0, n_dims: int | None = None
) -> bytes:
    n = len(dims) if n_dims is None else n_dims
    return (
        _s(name)
        + struct.pack("<I", n)
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", qtype, offset)
    )


ARRAY, STRING, UINT8, UINT32 = (
    int(GGUFValueType.ARRAY),
    int(GGUFValueType.STRING),
    int(GGUFValueType.UINT8),
    int(GGUFValueType.UINT32),
)
CRAFTED = {
    "wrong magic": b"GGML" + struct.pack("<IQQ", 3, 0, 0),
    "version 99": _head(0, 0, version=99),
    "version 1": _head(0, 0, version=1),
    "tensor count 2^63": _head(2**63, 0),
    "kv count 2^64-1": _head(0, 2**64 - 1),
    "key length 2^63": _head(0, 1) + struct.pack("<Q", 2**63) + b"key" + b"\0" * 32,
    "value string length 2^63": _head(0, 1) + _s(b"k") + struct.pack("<IQ", STRING, 2**63),
    "array of 2^63 uint8": _head(0, 1) + _s(b"a") + struct.pack("<IIQ", ARRAY, UINT8, 2**63),
    "array of 2^63 strings": _head(0, 1) + _s(b"a") + struct.pack("<IIQ", ARRAY, STRING, 2**63),
    "nested array": _head(0, 1)
    + _s(b"a")
    + struct.pack("<IIQ", ARRAY, ARRAY, 1)
    + struct.pack("<IQ", UINT8, 0),
    "unknown value type": _head(0, 1) + _s(b"a") + struct.pack("<I", 99) + b"\0" * 8,
    "non-UTF-8 key": _head(0, 1) + _s(b"\xff\xfe") + struct.pack("<IB", UINT8, 1),
    "bad bool": _head(0, 1) + _s(b"b") + struct.pack("<IB", int(GGUFValueType.BOOL), 7),
    "alignment 3": _head(0, 1) + _s(b"general.alignment") + struct.pack("<II", UINT32, 3),
    "alignment 2^31": _head(0, 1) + _s(b"general.alignment") + struct.pack("<II", UINT32, 2**31),
    "n_dims 1000": _head(1, 0) + _s(b"t") + struct.pack("<I", 1000) + b"\0" * 64,
    "dims overflow int64": _head(1, 0) + _tensor(b"t", [2**40, 2**40]),
    "dim 2^64-1": _head(1, 0) + _tensor(b"t", [2**64 - 1]),
    "zero dim": _head(1, 0) + _tensor(b"t", [0]),
    "unknown ggml type": _head(1, 0) + _tensor(b"t", [32], qtype=4),
    "row not a block multiple": _head(1, 0) + _tensor(b"t", [100], qtype=int(T.Q4_K)),
    "data beyond EOF": _head(1, 0) + _tensor(b"t", [1024]) + b"\0" * 64,
    "misaligned offset": _head(1, 0) + _tensor(b"t", [8], offset=4) + b"\0" * 200,
    "duplicate tensor": _head(2, 0) + _tensor(b"t", [8]) + _tensor(b"t", [8], offset=32) + b"\0" * 200,
    "overlapping tensors": _head(2, 0) + _tensor(b"t", [16]) + _tensor(b"u", [16], offset=32) + b"\0" * 200,
    "empty file": b"",
}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_crafted_header_rejected(name, tmp_path):
    data = CRAFTED[name]
    start = time.perf_counter()
    with pytest.raises(InputError):
        parse_gguf_header(io.BytesIO(data), len(data), name)
    path = tmp_path / "crafted.gguf"
    path.write_bytes(data)
    with pytest.raises(InputError):
        read_model_file(path)
    assert time.perf_counter() - start < 1.0


def test_crafted_array_file_is_about_50_bytes():
    assert len(CRAFTED["array of 2^63 uint8"]) < 60


def _small_valid(path: Path) -> bytes:
    w = GGUFWriter(str(path), "llama")
    w.add_string("general.name", "x")
    w.add_array("a", [1, 2, 3])
    w.add_array("s", ["ab", "c"])
    w.add_tensor("t0", np.ones(8, np.float32))
    w.add_tensor("t1", np.ones((2, 32), np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def test_every_truncation_fails_cleanly(tmp_path):
    data = _small_valid(tmp_path / "small.gguf")
    header = parse_gguf_header(io.BytesIO(data), len(data), "ok")
    end = header.data_offset + max(t.offset + t.n_bytes for t in header.tensors)
    assert [t.name for t in header.tensors] == ["t0", "t1"] and header.metadata["general.name"] == "x"
    for n in range(end):
        with pytest.raises(InputError):
            parse_gguf_header(io.BytesIO(data[:n]), n, "cut")
    for n in range(end, len(data) + 1):  # only trailing padding missing: still valid
        parse_gguf_header(io.BytesIO(data[:n]), n, "cut")
