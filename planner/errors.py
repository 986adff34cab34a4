"""One error hierarchy for the whole library; the CLI maps it to exit codes once.

PlannerError
└── InputError            bad input: exit code 2, one line on stderr
    ├── FieldError        a bad value of named input fields; the CLI words them as flags, `check` as keys
    ├── UnknownNameError  an id that is not in a catalog, with the nearest names
    └── SpecFileError     a file that cannot be read or validated, with file and line

"Does not fit" is never an exception: it is a result (``fits=False``, exit code 1).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# C0 and C1 control characters and DEL: they would break a terminal line, a log or a parser downstream.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_NAME_CHARS = 120  # a name echoed in a message is cut to this, so a message stays one readable line
MAX_MESSAGE_CHARS = 1000


def strip_controls(text: str, keep: str = "") -> str:
    """``text`` without control characters (those in ``keep``, e.g. newline and tab, stay)."""
    return _CONTROL.sub(lambda m: m.group(0) if m.group(0) in keep else "", text)


def clean_name(name: str, limit: int = MAX_NAME_CHARS) -> str:
    """A name read from a file or a flag, made safe to echo: control characters shown as ``\\xNN``,
    at most ``limit`` characters (the rest replaced by ``…``)."""
    name = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(name))
    return name if len(name) <= limit else name[: limit - 1] + "…"


def one_line(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """A message as one line: line breaks become ``; ``, other control characters are dropped."""
    text = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    text = strip_controls(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PlannerError(Exception):
    """Base of every error the library raises on purpose."""


class InputError(PlannerError):
    """The user's input is wrong; the message is one line that says how to fix it."""


class FieldError(InputError):
    """A bad value of one or more named input fields. ``template`` names each field as ``{field}``; the
    message reads with plain field names until a caller words them its own way (``worded``)."""

    def __init__(self, template: str, *fields: str):
        self.template = template
        self.fields = fields
        super().__init__(self.worded(lambda f: f))

    def worded(self, name_of) -> str:
        """The message with each field named by ``name_of(field)``: a flag, a file key, ..."""
        return self.template.format(**{f: name_of(f) for f in self.fields})


class UnknownNameError(InputError):
    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind = kind
        self.name = name
        name = clean_name(name)
        known = list(dict.fromkeys(known))  # already ranked by the caller, or a plain list of names
        close = difflib.get_close_matches(name.lower(), [k.lower() for k in known], n=3, cutoff=0.5)
        by_lower = {k.lower(): k for k in known}
        self.suggestions = [by_lower[c] for c in close] if len(known) > 3 else known
        if self.suggestions:
            hint = f"; did you mean: {', '.join(self.suggestions)}?"
        elif 0 < len(known) <= 12:  # a short closed list (engines, KV dtypes, quants): show all of it
            hint = f"; choose one of: {', '.join(known)}"
        else:
            hint = ""
        super().__init__(f"unknown {kind} '{name}'{hint}")


class SpecFileError(InputError):
    def __init__(self, path: str, message: str, line: int | None = None, column: int | None = None):
        self.reason = message
        self.path = str(path)
        self.detail = message
        self.line = line
        self.column = column
        where = clean_name(self.path, 300)
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


# Fields of the library's input models that a flag of another name sets, so an error names the flag.
FLAGS = {"max_ttft_s": "--max-ttft", "max_e2e_s": "--max-e2e", "min_tok_s": "--min-tok-s", "min_ctx": "--min-ctx",
         "headroom_fraction": "--headroom", "prompt_tokens": "--prompt", "gen_tokens": "--gen"}


def flag(field: str) -> str:
    """The command-line option (and web API field) of a library input field: ``num_gpus`` is
    ``--num-gpus``. The command line and the web API share it, so their messages match."""
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def input_error_message(exc: BaseException) -> str | None:
    """The one line a bad input is reported with (exit code 2 on the command line, HTTP 422 in the web
    API), or None when ``exc`` is not a bad input. Library errors keep their message; a pydantic
    validation error (a workload out of range) names its first field; an OSError names its file; a number
    or a nesting out of range that a bound missed is still bad input, never a traceback."""
    from pydantic import ValidationError

    if isinstance(exc, FieldError):
        return exc.worded(flag)
    if isinstance(exc, PlannerError):
        return str(exc)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        field = FLAGS.get(field, field)
        return f"{field}: {first['msg']}" if field else first["msg"]
    if isinstance(exc, ValueError):
        return str(exc) or "invalid value"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    if isinstance(exc, (ArithmeticError, RuntimeWarning)):  # OverflowError, ZeroDivisionError, numpy overflow
        return f"a number in the input is out of range ({exc})"
    if isinstance(exc, RecursionError):
        return "input nested too deeply"
    return None
