"""Plumbing every command shares: exit codes, mapping errors to one stderr line, running a Typer app."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps

import typer

from planner.errors import PlannerError, input_error_message

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT; never mistaken for "does not fit"


def fail_input(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(EXIT_INPUT)


def guarded(fn: Callable) -> Callable:
    """Map the library's input errors to one stderr line and exit code 2."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (PlannerError, ValueError, OSError) as exc:  # ValueError covers pydantic's ValidationError
            raise fail_input(input_error_message(exc)) from None

    return wrapper


def run(typer_app: typer.Typer, args: list[str] | None = None) -> int:
    """Run a Typer app and return its exit code; usage errors become one stderr line and exit 2."""
    # Typer >= 0.20 vendors click; its exceptions derive from typer.BadParameter's bases.
    usage_error = typer.BadParameter.__mro__[1]
    click_exception = typer.BadParameter.__mro__[2]
    try:
        rv = typer_app(args=args, standalone_mode=False)
    except usage_error as exc:
        message = (exc.format_message().splitlines() or ["invalid usage"])[0]
        print(f"error: {message}", file=sys.stderr)
        return EXIT_INPUT
    except click_exception as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return EXIT_INPUT
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return rv if isinstance(rv, int) else EXIT_OK


