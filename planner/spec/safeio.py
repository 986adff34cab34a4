"""Reading untrusted input files safely: regular files only, bounded reads, bounded nesting.

`stat().st_size` is 0 for /dev/zero and FIFOs, so a size check alone lets `read_text()` run forever or
exhaust memory; a FIFO even blocks at open(). Everything that reads a user-supplied file goes through here.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from planner.errors import SpecFileError

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
