"""A bounded reader for safetensors headers (never the tensor data).

Format reference (https://github.com/huggingface/safetensors, README "Format")::

    u64 little-endian N | N bytes of UTF-8 JSON | tensor data

The JSON is an object ``{name: {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, ...}``
with an optional ``"__metadata__"`` object of string values; offsets are relative to the start of
the data region. Here N is bounded (≤ 100 MB and ≤ the file size) before it is read, the JSON must
be an object, every entry is validated, ``end - begin`` must equal the bytes the dtype and shape
imply, and every tensor must lie inside the file. Failures are :class:`SpecFileError`.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO

from planner.errors import SpecFileError
from planner.spec.safeio import refuse_json_constant

MAX_HEADER_BYTES = 100_000_000
MAX_DIMS = 16
INT64_MAX = 2**63 - 1

# bits per element of each safetensors dtype (sub-byte float types pack several per byte)
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}


@dataclass(frozen=True)
class SafeTensor:
    name: str
    dtype: str
    shape: tuple[int, ...]
    n_elements: int
    n_bytes: int


def _fail(path: str, message: str) -> SpecFileError:
    return SpecFileError(path, f"not a valid safetensors file: {message}")


def read_safetensors_header(path: str | os.PathLike[str]) -> tuple[list[SafeTensor], dict[str, str]]:
    """The tensors listed in one safetensors file's header, and its ``__metadata__``."""
    p = str(path)
    try:
        with open(p, "rb") as fh:
            return parse_safetensors_header(fh, os.fstat(fh.fileno()).st_size, p)
    except OSError as exc:
        raise SpecFileError(p, f"cannot read file: {exc.strerror or exc}") from None


def parse_safetensors_header(fh: BinaryIO, size: int, p: str) -> tuple[list[SafeTensor], dict[str, str]]:
    """Parse the header from a binary stream of ``size`` bytes (``p`` names it in errors)."""
    if size < 8:
        raise _fail(p, f"file is {size} bytes, too short for the 8-byte header length")
    head = fh.read(8)
    if len(head) != 8:
        raise _fail(p, "file shrank while reading")
    n = struct.unpack("<Q", head)[0]
    if n > MAX_HEADER_BYTES or n > size - 8:
        raise _fail(p, f"header length {n} exceeds the limit ({min(MAX_HEADER_BYTES, size - 8)} bytes)")
    raw = fh.read(n)
    if len(raw) != n:
        raise _fail(p, "file shrank while reading")
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=refuse_json_constant)
    except UnicodeDecodeError as exc:
        raise _fail(p, f"header is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise _fail(p, f"header is not JSON ({exc.msg} at byte {exc.pos})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer literal over Python's digit limit
        raise _fail(p, f"header JSON cannot be parsed ({str(exc)[:80]})") from None
    if not isinstance(header, dict):
        raise _fail(p, f"header is a JSON {type(header).__name__}, expected an object")
    data_size = size - 8 - n
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise _fail(p, "__metadata__ must be an object of strings")
    tensors = [_entry(p, name, entry, data_size) for name, entry in header.items()]
    end = 0
    for t, begin in sorted(((t, b) for t, b in tensors), key=lambda x: x[1]):
        if t.n_bytes == 0:  # a tensor with a zero dimension occupies no bytes, so it overlaps nothing
            continue
        if begin < end:
            raise _fail(p, f"tensor '{t.name[:100]}' overlaps another tensor's data")
        end = begin + t.n_bytes
    return [t for t, _ in tensors], meta


def _entry(p: str, name: str, entry: object, data_size: int) -> tuple[SafeTensor, int]:
    short = name[:100]
    if not isinstance(entry, dict):
        raise _fail(p, f"entry '{short}' is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _fail(p, f"tensor '{short}' has unknown dtype {str(dtype)[:20]!r}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= INT64_MAX for d in shape)
    ):
        raise _fail(p, f"tensor '{short}' has an invalid shape")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
    ):
        raise _fail(p, f"tensor '{short}' has invalid data_offsets")
    begin, end = offsets
    n_elements = 1
    for d in shape:
        n_elements *= d
        if n_elements > INT64_MAX:
            raise _fail(p, f"tensor '{short}' shape overflows int64")
    n_bytes = (n_elements * DTYPE_BITS[dtype] + 7) // 8
    if not 0 <= begin <= end <= data_size:
        raise _fail(
            p, f"tensor '{short}' data [{begin}, {end}) lies outside the {data_size}-byte data region"
        )
    if end - begin != n_bytes:
        raise _fail(p, f"tensor '{short}' occupies {end - begin} bytes but {dtype}{shape} needs {n_bytes}")
    return SafeTensor(name, dtype, tuple(shape), n_elements, n_bytes), begin
