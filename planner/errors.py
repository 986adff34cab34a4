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
from collections.abc import Iterable


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
        self.path = str(path)
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


def flag(field: str) -> str:
    """The command-line option (and web API field) of a library input field: ``num_gpus`` is
    ``--num-gpus``. The command line and the web API share it, so their messages match."""
    return "--" + field.replace("_", "-")


def input_error_message(exc: BaseException) -> str | None:
    """The one line a bad input is reported with (exit code 2 on the command line, HTTP 422 in the web
    API), or None when ``exc`` is not a bad input. Library errors keep their message; a pydantic
    validation error (a workload out of range) names its first field; an OSError names its file."""
    from pydantic import ValidationError

    if isinstance(exc, FieldError):
        return exc.worded(flag)
    if isinstance(exc, PlannerError):
        return str(exc)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return f"{field}: {first['msg']}" if field else first["msg"]
    if isinstance(exc, ValueError):
        return str(exc).splitlines()[0] if str(exc) else "invalid value"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return None
