"""One error hierarchy for the whole library; the CLI maps it to exit codes once.

PlannerError
└── InputError            bad input: exit code 2, one line on stderr
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
        self.reason = message
        self.path = str(path)
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")
