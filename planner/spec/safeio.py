"""Reading untrusted input files safely (regular files only, bounded reads, bounded nesting), and
writing output files safely (regular files only, atomically).

`stat().st_size` is 0 for /dev/zero and FIFOs, so a size check alone lets `read_text()` run forever or
exhaust memory; a FIFO even blocks at open(). Everything that reads a user-supplied file goes through here.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from planner.errors import InputError, SpecFileError, clean_name

# Deeper nesting than this never appears in a spec, deploy or calibration file; libyaml and json recurse
# per level (libyaml can crash the process on tens of thousands of levels), so deeper input is refused.
MAX_NESTING = 64


def read_bytes(path: Path | str, limit: int) -> bytes:
    """The file's bytes; SpecFileError when it is missing, not a regular file, or larger than ``limit``."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise SpecFileError(str(path), f"cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise SpecFileError(str(path), f"cannot read file: {kind}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SpecFileError(str(path), f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SpecFileError(str(path), f"file is larger than {limit:,} bytes")
    return data


def read_text(path: Path | str, limit: int, encoding: str = "utf-8") -> str:
    """The file as text (strict decoding), with the checks of ``read_bytes``."""
    data = read_bytes(path, limit)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise SpecFileError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def refuse_json_constant(name: str) -> float:
    """``parse_constant`` for json.loads: NaN and Infinity are not JSON numbers (RFC 8259)."""
    raise ValueError(f"{name} is not a JSON number")


def parse_json(path: Path | str, text: str) -> object:
    """Strict JSON (RFC 8259): ``NaN``, ``Infinity`` and ``-Infinity`` are refused, nesting is bounded,
    and errors name the file, line and column."""
    check_nesting(path, text)
    try:
        return json.loads(text, parse_constant=refuse_json_constant)
    except json.JSONDecodeError as exc:
        raise SpecFileError(str(path), f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except ValueError as exc:
        raise SpecFileError(str(path), f"invalid JSON: {exc}") from None
    except RecursionError:
        raise SpecFileError(str(path), "invalid JSON: nested too deeply") from None


def check_nesting(path: Path | str, text: str, limit: int = MAX_NESTING) -> None:
    """Refuse flow nesting ('[', '{') or indentation deeper than ``limit`` levels before a parser recurses.

    A conservative scan: brackets inside quoted strings count too, which only matters for files no
    planner input would contain."""
    depth = worst = 0
    line = 1
    for ch in text:
        if ch in "[{":
            depth += 1
            if depth > worst:
                worst = depth
                if worst > limit:
                    raise SpecFileError(str(path), f"nesting deeper than {limit} levels", line)
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "\n":
            line += 1
    for number, raw in enumerate(text.splitlines(), start=1):
        indent = len(raw) - len(raw.lstrip(" -"))
        if indent > 2 * limit:
            raise SpecFileError(str(path), f"nesting deeper than {limit} levels", number)


# --------------------------------------------------------------------------------------------
# Writing: one safe writer for every file planner writes (plots, reports, calibrations)
# --------------------------------------------------------------------------------------------


def _refuse(path: Path, why: str) -> InputError:
    return InputError(f"cannot write {clean_name(str(path))}: {why}")


def writable_target(path: Path | str, make_parents: bool = False) -> Path:
    """The path a write to ``path`` lands on, after refusing what must never be replaced.

    Only regular files are written: an existing directory, device node, FIFO or socket is refused
    (``--out /dev/null`` must not replace the device, ``--plot DIR`` must not write ``DIR.png``
    beside it). A symlink to a regular file is followed, so the link stays a link. Call it before
    the work starts to fail early; ``write_bytes_atomic`` calls it again. With ``make_parents`` a
    missing folder is fine (it is created when writing)."""
    raw = str(path)
    if not raw or raw.endswith(("/", os.sep)):
        raise _refuse(Path(raw or "."), "a directory")
    target = Path(os.path.realpath(raw)) if os.path.islink(raw) else Path(raw)
    try:
        info = target.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _refuse(target, exc.strerror or str(exc)) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (device, FIFO or socket)"
        raise _refuse(target, kind)
    parent = target.parent
    if not make_parents and not parent.is_dir():
        raise _refuse(target, f"folder {clean_name(str(parent))} does not exist")
    return target


def write_bytes_atomic(path: Path | str, data: bytes, make_parents: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, fsync, rename.

    Readers see the old file or the new one, never a half-written one; on any error (disk full,
    permission) the temporary file is removed and InputError names the path in one line. A new file
    gets the usual permissions (0666 less the umask); an existing one keeps its mode."""
    if make_parents:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _refuse(Path(path), exc.strerror or str(exc)) from None
    target = writable_target(path)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise _refuse(target, exc.strerror or str(exc)) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return target


def write_text_atomic(path: Path | str, text: str, make_parents: bool = False) -> Path:
    """``write_bytes_atomic`` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"), make_parents=make_parents)


def remove_stale(path: Path | str) -> None:
    """Remove a previous run's output at ``path`` (regular files only), so that a failed run never
    leaves an old report for CI to read as this run's result. Missing files are fine."""
    raw = str(path)
    try:
        info = os.lstat(raw)
    except OSError:
        return
    if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode) and os.path.isfile(raw):
        target = os.path.realpath(raw) if stat.S_ISLNK(info.st_mode) else raw
        try:
            os.unlink(target)
        except OSError as exc:
            raise _refuse(Path(raw), exc.strerror or str(exc)) from None


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
