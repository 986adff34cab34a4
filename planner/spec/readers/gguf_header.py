"""A bounded reader for the header of one GGUF file (metadata and tensor infos, never tensor data).

Format reference: the GGUF spec (ggml ``docs/gguf.md``) and ``ggml/src/gguf.cpp``. All integers
little-endian::

    u32 magic "GGUF" | u32 version (2 or 3) | u64 tensor_count | u64 kv_count
    kv_count × (string key | u32 value_type | value)
    tensor_count × (string name | u32 n_dims | n_dims × u64 ne | u32 ggml_type | u64 offset)
    padding to general.alignment (default 32) | tensor data

    string = u64 length | UTF-8 bytes;  array = u32 element_type | u64 count | count × element

Why our own parser: ``gguf.GGUFReader`` 0.19.0 trusts the declared counts and lengths, so a crafted
~50-byte file makes it loop and allocate until killed (see docs/security.md).
Here every count and length is checked against the bytes left in the file (and a fixed cap)
before anything is allocated or looped over, value types are validated, strings are decoded
strictly as UTF-8, tensor sizes are computed with explicit int64 bounds, and the tensor data
region must lie inside the file. Every failure is a :class:`SpecFileError` naming the file.
The type tables come from ``gguf.constants`` so new ggml types follow the installed package.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, Keys

from planner.errors import SpecFileError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
INT64_MAX = 2**63 - 1
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 16
MAX_KEY_BYTES = 65_535  # the GGUF spec limits keys to 2^16 - 1 bytes
MAX_STRING_BYTES = 1 << 24  # 16 MiB: chat templates are kB; anything this large is hostile
MAX_NAME_BYTES = 1024  # ggml itself uses 64 (GGML_MAX_NAME)
MAX_ARRAY_ITEMS = 1 << 26
# String arrays are walked one length prefix at a time; real ones (tokenizer tokens and merges) hold a
# few hundred thousand entries, so 2^20 bounds the walk to about a second even in a crafted file.
MAX_STRING_ARRAY_ITEMS = 1 << 20
# Metadata and tensor infos together: real headers are tens of MB at most. The bound is on the bytes
# walked, not st_size, since a sparse file claims terabytes while holding a few bytes on disk.
MAX_HEADER_BYTES = 1 << 28
MAX_TENSORS = 1 << 20
MAX_KVS = 1 << 20
MAX_DIMS = 4  # GGML_MAX_DIMS
KEEP_ARRAY_ITEMS = 4096  # longer arrays (tokenizer lists) are validated, counted and dropped
_CHUNK = 1 << 20

_SCALAR_FORMATS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<B",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
_MIN_KV_BYTES = 8 + 1 + 4 + 1  # key length, 1-byte key, value type, smallest value
_MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8  # name length, 1-byte name, n_dims, one dim, type, offset


@dataclass(frozen=True)
class GGUFArray:
    """An array value: its element type and length; ``values`` only when it is short."""

    elem_type: GGUFValueType
    count: int
    values: tuple | None


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # ggml order: ne[0] is the row length
    ggml_type: GGMLQuantizationType
    offset: int  # relative to the start of the data region
    n_elements: int
    n_bytes: int


@dataclass
class GGUFHeader:
    path: str
    version: int
    metadata: dict[str, object]
    tensors: list[TensorInfo]
    alignment: int
    data_offset: int
    file_size: int
    tensor_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.tensor_bytes = sum(t.n_bytes for t in self.tensors)


class _Cursor:
    """Sequential reads through a bounded buffer; asking for more than the file holds is an error."""

    def __init__(self, fh, size: int, path: str):
        self.fh = fh
        self.size = size
        self.path = path
        self.pos = 0  # absolute offset of the next byte to return
        self._buf = b""
        self._buf_start = 0

    def fail(self, message: str) -> SpecFileError:
        return SpecFileError(self.path, f"not a valid GGUF file: {message} (at byte {self.pos})")

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def _check(self, n: int, what: str) -> None:
        if n < 0 or n > self.remaining:
            raise self.fail(f"{what} needs {n} bytes but only {self.remaining} remain (truncated file?)")
        if self.pos + n > MAX_HEADER_BYTES:
            raise self.fail(f"header is larger than {MAX_HEADER_BYTES:,} bytes")

    def skip(self, n: int, what: str) -> None:
        """Step over ``n`` bytes without reading them (array payloads planner does not keep)."""
        self._check(n, what)
        self.pos += n

    def take(self, n: int, what: str) -> bytes:
        self._check(n, what)
        rel = self.pos - self._buf_start
        if rel + n > len(self._buf):
            want = min(max(n, _CHUNK), self.remaining)
            self.fh.seek(self.pos)
            self._buf = self.fh.read(want)
            self._buf_start = self.pos
            rel = 0
            if len(self._buf) < n:
                raise self.fail(f"{what}: file shrank while reading")
        self.pos += n
        return self._buf[rel : rel + n]

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def u32(self, what: str) -> int:
        return self.unpack("<I", what)

    def u64(self, what: str) -> int:
        return self.unpack("<Q", what)

    def string(self, what: str, cap: int) -> str:
        n = self.u64(f"length of {what}")
        if n > cap:
            raise self.fail(f"{what} declares {n} bytes (limit {cap})")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail(f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _value_type(cur: _Cursor, what: str) -> GGUFValueType:
    raw = cur.u32(f"value type of {what}")
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise cur.fail(f"{what} has unknown value type {raw}") from None


def _scalar(cur: _Cursor, vtype: GGUFValueType, what: str) -> object:
    if vtype is GGUFValueType.STRING:
        return cur.string(what, MAX_STRING_BYTES)
    value = cur.unpack(_SCALAR_FORMATS[vtype], what)
    if vtype is GGUFValueType.BOOL:
        if value > 1:
            raise cur.fail(f"{what} is a bool with byte value {value}")
        return bool(value)
    return value


def _array(cur: _Cursor, what: str) -> GGUFArray:
    etype = _value_type(cur, f"elements of {what}")
    if etype is GGUFValueType.ARRAY:
        raise cur.fail(f"{what} is a nested array (not supported)")
    count = cur.u64(f"length of {what}")
    min_size = 8 if etype is GGUFValueType.STRING else struct.calcsize(_SCALAR_FORMATS[etype])
    if count > MAX_ARRAY_ITEMS or count * min_size > cur.remaining:
        raise cur.fail(
            f"{what} declares {count} elements; the file has room for at most {cur.remaining // min_size}"
        )
    keep = count <= KEEP_ARRAY_ITEMS
    if etype is GGUFValueType.STRING:
        if keep:
            items = [cur.string(f"{what}[{i}]", MAX_STRING_BYTES) for i in range(count)]
            return GGUFArray(etype, count, tuple(items))
        if count > MAX_STRING_ARRAY_ITEMS:
            raise cur.fail(f"{what} declares {count} strings (limit {MAX_STRING_ARRAY_ITEMS})")
        _skip_strings(cur, count, what)
        return GGUFArray(etype, count, None)
    fmt = _SCALAR_FORMATS[etype]
    if not keep:  # skipped by length: never read, never looped over
        cur.skip(count * min_size, what)
        return GGUFArray(etype, count, None)
    raw = cur.take(count * min_size, what)
    values = struct.unpack(f"<{count}{fmt[1]}", raw)
    if etype is GGUFValueType.BOOL:
        if any(v > 1 for v in values):
            raise cur.fail(f"{what} holds a bool byte other than 0 or 1")
        values = tuple(bool(v) for v in values)
    return GGUFArray(etype, count, tuple(values))


def _skip_strings(cur: _Cursor, count: int, what: str) -> None:
    """Step over ``count`` strings: walk the length prefixes through the read buffer in one tight loop
    (string bytes are skipped unread), refilling the buffer only when a prefix lies beyond it."""
    prefix = struct.Struct("<Q").unpack_from
    left = count
    while left:
        cur.take(8, f"length of {what}[{count - left}]")
        cur.pos -= 8  # peeked: the loop below consumes it
        buf, rel = cur._buf, cur.pos - cur._buf_start
        end = len(buf) - 8
        while left and rel <= end:
            n = prefix(buf, rel)[0]
            if n > MAX_STRING_BYTES:
                cur.pos = cur._buf_start + rel
                raise cur.fail(f"{what}[{count - left}] declares {n} bytes (limit {MAX_STRING_BYTES})")
            rel += 8 + n
            left -= 1
        cur.skip(cur._buf_start + rel - cur.pos, what)


def _tensor_info(
    cur: _Cursor, index: int
) -> tuple[str, tuple[int, ...], GGMLQuantizationType, int, int, int]:
    name = cur.string(f"name of tensor {index}", MAX_NAME_BYTES)
    if not name:
        raise cur.fail(f"tensor {index} has an empty name")
    n_dims = cur.u32(f"n_dims of tensor '{name}'")
    if not 1 <= n_dims <= MAX_DIMS:
        raise cur.fail(f"tensor '{name}' has n_dims {n_dims} (must be 1..{MAX_DIMS})")
    shape = tuple(cur.u64(f"dimension {d} of tensor '{name}'") for d in range(n_dims))
    n_elements = 1
    for d in shape:
        if d < 1 or d > INT64_MAX:
            raise cur.fail(f"tensor '{name}' has dimension {d}")
        n_elements *= d
        if n_elements > INT64_MAX:
            raise cur.fail(f"tensor '{name}' shape {list(shape)} overflows int64")
    raw_type = cur.u32(f"type of tensor '{name}'")
    try:
        gtype = GGMLQuantizationType(raw_type)
        block, type_size = GGML_QUANT_SIZES[gtype]
    except (ValueError, KeyError):
        raise cur.fail(f"tensor '{name}' has unknown ggml type {raw_type}") from None
    if shape[0] % block:
        raise cur.fail(
            f"tensor '{name}' row length {shape[0]} is not a multiple of the {gtype.name} block size {block}"
        )
    n_bytes = n_elements // block * type_size
    if n_bytes > INT64_MAX:
        raise cur.fail(f"tensor '{name}' byte size overflows int64")
    offset = cur.u64(f"offset of tensor '{name}'")
    return name, shape, gtype, offset, n_elements, n_bytes


def read_gguf_header(path: str | os.PathLike[str]) -> GGUFHeader:
    """Read and validate the header of one GGUF file; the tensor data is never read."""
    path_s = str(path)
    try:
        fh = open(path_s, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise SpecFileError(path_s, f"cannot read file: {exc.strerror or exc}") from None
    with fh:
        try:
            return parse_gguf_header(fh, os.fstat(fh.fileno()).st_size, path_s)
        except OSError as exc:
            raise SpecFileError(path_s, f"cannot read file: {exc.strerror or exc}") from None


def _preamble(cur: _Cursor) -> tuple[int, int, int]:
    """Magic, version and the two counts; the counts must fit in the bytes left before anything loops."""
    magic = cur.take(4, "magic") if cur.remaining >= 4 else b""
    if magic != GGUF_MAGIC:
        raise SpecFileError(cur.path, f"not a GGUF file (magic {magic[:4]!r}, expected b'GGUF')")
    version = cur.u32("version")
    if version not in SUPPORTED_VERSIONS:
        raise cur.fail(f"unsupported GGUF version {version} (this reader knows 2 and 3)")
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("metadata count")
    if (
        n_tensors > MAX_TENSORS
        or n_kv > MAX_KVS
        or (n_tensors * _MIN_TENSOR_INFO_BYTES + n_kv * _MIN_KV_BYTES > cur.remaining)
    ):
        raise cur.fail(
            f"header declares {n_tensors} tensors and {n_kv} metadata entries, "
            f"more than a {cur.size}-byte file can hold"
        )
    return version, n_tensors, n_kv


def _metadata(cur: _Cursor, n_kv: int) -> dict[str, object]:
    """The ``n_kv`` key/value pairs; keys must be non-empty and unique."""
    metadata: dict[str, object] = {}
    for i in range(n_kv):
        key = cur.string(f"key {i}", MAX_KEY_BYTES)
        if not key:
            raise cur.fail(f"metadata key {i} is empty")
        if key in metadata:
            raise cur.fail(f"duplicate metadata key '{key}'")
        vtype = _value_type(cur, f"'{key}'")
        metadata[key] = (
            _array(cur, f"'{key}'") if vtype is GGUFValueType.ARRAY else _scalar(cur, vtype, f"'{key}'")
        )
    return metadata


def _alignment(cur: _Cursor, metadata: dict[str, object]) -> int:
    """``general.alignment`` (default 32), which must be a power of two no larger than MAX_ALIGNMENT."""
    alignment = metadata.get(Keys.General.ALIGNMENT, DEFAULT_ALIGNMENT)
    if (
        isinstance(alignment, bool)
        or not isinstance(alignment, int)
        or alignment < 1
        or alignment & (alignment - 1)
        or alignment > MAX_ALIGNMENT
    ):
        raise cur.fail(f"general.alignment {alignment!r} must be a power of two ≤ {MAX_ALIGNMENT}")
    return alignment


def _tensor_infos(
    cur: _Cursor, n_tensors: int
) -> list[tuple[str, tuple[int, ...], GGMLQuantizationType, int, int, int]]:
    """The ``n_tensors`` tensor infos, in file order; names must be unique."""
    raw_infos = []
    names: set[str] = set()
    for i in range(n_tensors):
        info = _tensor_info(cur, i)
        if info[0] in names:
            raise cur.fail(f"duplicate tensor name '{info[0]}'")
        names.add(info[0])
        raw_infos.append(info)
    return raw_infos


def _place_tensors(
    cur: _Cursor, n_tensors: int, raw_infos: list, alignment: int
) -> tuple[int, list[TensorInfo]]:
    """Data region offset and the tensors, each aligned and lying inside the data region."""
    data_offset = -(-cur.pos // alignment) * alignment
    data_size = cur.size - data_offset
    if n_tensors and data_size < 0:
        raise cur.fail("tensor data region starts beyond the end of the file")
    tensors = []
    for name, shape, gtype, offset, n_elements, n_bytes in raw_infos:
        if offset % alignment:
            raise cur.fail(f"tensor '{name}' offset {offset} is not a multiple of the alignment {alignment}")
        if offset + n_bytes > data_size:
            raise cur.fail(
                f"tensor '{name}' data ({n_bytes} bytes at offset {offset}) extends beyond "
                f"the end of the file (data region holds {max(data_size, 0)} bytes)"
            )
        tensors.append(TensorInfo(name, shape, gtype, offset, n_elements, n_bytes))
    return data_offset, tensors


def _check_no_overlap(cur: _Cursor, tensors: list[TensorInfo]) -> None:
    """No two tensors' data may share bytes."""
    end = 0
    for t in sorted(tensors, key=lambda t: t.offset):
        if t.offset < end:
            raise cur.fail(f"tensor '{t.name}' overlaps the previous tensor's data")
        end = t.offset + t.n_bytes


def parse_gguf_header(fh: BinaryIO, size: int, path: str) -> GGUFHeader:
    """Parse a GGUF header from a seekable binary stream of ``size`` bytes (``path`` names it in errors)."""
    cur = _Cursor(fh, size, path)
    version, n_tensors, n_kv = _preamble(cur)
    metadata = _metadata(cur, n_kv)
    alignment = _alignment(cur, metadata)
    raw_infos = _tensor_infos(cur, n_tensors)
    data_offset, tensors = _place_tensors(cur, n_tensors, raw_infos, alignment)
    _check_no_overlap(cur, tensors)
    return GGUFHeader(cur.path, version, metadata, tensors, alignment, data_offset, cur.size)
