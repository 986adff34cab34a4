"""Plumbing every command shares: exit codes, mapping errors to one stderr line, running a Typer app."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from functools import wraps

import typer

from planner.errors import PlannerError, input_error_message, one_line, strip_controls

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT; never mistaken for "does not fit"


def fail_input(message: str) -> typer.Exit:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return typer.Exit(EXIT_INPUT)


def guarded(fn: Callable) -> Callable:
    """Map the library's input errors to one stderr line and exit code 2."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (PlannerError, ValueError, OSError, ArithmeticError, RecursionError, RuntimeWarning) as exc:
            # ValueError covers pydantic's ValidationError; the others are numbers or nesting out of range
            raise fail_input(input_error_message(exc)) from None

    return wrapper


class _CleanText:
    """A text stream that drops control characters (ANSI escapes, carriage returns, NUL) on the way
    out: names read from files reach tables and reports, and must not rewrite the reader's terminal
    or log. Newlines and tabs pass."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(strip_controls(text, keep="\n\t"))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def run(typer_app: typer.Typer, args: list[str] | None = None) -> int:
    """Run a Typer app and return its exit code; usage errors become one stderr line and exit 2."""
    # Typer >= 0.20 vendors click; its exceptions derive from typer.BadParameter's bases.
    usage_error = typer.BadParameter.__mro__[1]
    click_exception = typer.BadParameter.__mro__[2]
    stdout = sys.stdout
    sys.stdout = _CleanText(stdout)
    try:
        with warnings.catch_warnings():
            # A numpy RuntimeWarning (overflow, division by zero, invalid value) means a number went out
            # of range: it becomes bad input, exit 2 with one line, instead of text leaking to stderr.
            warnings.filterwarnings("error", category=RuntimeWarning)
            rv = typer_app(args=args, standalone_mode=False)
    except usage_error as exc:
        print(f"error: {one_line(exc.format_message()) or 'invalid usage'}", file=sys.stderr)
        return EXIT_INPUT
    except click_exception as exc:
        print(f"error: {one_line(exc.format_message())}", file=sys.stderr)
        return EXIT_INPUT
    except (typer.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = stdout
    return rv if isinstance(rv, int) else EXIT_OK


