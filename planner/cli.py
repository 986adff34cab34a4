"""Command line: parse, call the library, render, choose the exit code.

Exit codes (a public contract, see README): 0 fine, 1 evaluated and does not fit / misses a target,
2 bad input (one line on stderr, never a traceback).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps

import typer

from planner.errors import PlannerError

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Capacity planner for LLM inference: will this model fit, and how fast will it be?",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def fail_input(message: str) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(EXIT_INPUT)


def guarded(fn: Callable) -> Callable:
    """Map the library's input errors to one stderr line and exit code 2."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PlannerError as exc:
            raise fail_input(str(exc)) from None
        except ValueError as exc:  # pydantic validation of a workload built from flags
            first = str(exc).splitlines()
            raise fail_input(first[-1].strip() if first else "invalid value") from None

    return wrapper


def _register() -> None:
    # Each command lives in its own module and imports the heavy parts of the library lazily.
    from planner.commands import (
        calibrate_cmd,
        catalog_cmds,
        check_cmd,
        compare_cmd,
        plan_cmd,
        recommend_cmd,
        validate_cmd,
    )

    for module in (plan_cmd, catalog_cmds, validate_cmd, calibrate_cmd, recommend_cmd, compare_cmd, check_cmd):
        module.register(app)


_register()


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
        print("error: aborted", file=sys.stderr)
        return EXIT_FAIL
    return rv if isinstance(rv, int) else EXIT_OK


def main() -> None:
    sys.exit(run(app))


def plan_main() -> None:
    """The `plan` console script: the same as `planner plan`."""
    from planner.commands.plan_cmd import plan_app

    sys.exit(run(plan_app))
