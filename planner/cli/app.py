"""Command line: the `planner` app with every command registered, and the `plan` script.

Exit codes (a public contract, see README): 0 fine, 1 evaluated and does not fit / misses a target,
2 bad input (one line on stderr, never a traceback). The shared plumbing is in planner.cli.base.
"""

from __future__ import annotations

import sys

import typer

from planner.cli.base import EXIT_FAIL, EXIT_INPUT, EXIT_OK, fail_input, guarded, run

__all__ = ["EXIT_FAIL", "EXIT_INPUT", "EXIT_OK", "app", "fail_input", "guarded", "main", "plan_main", "run"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Capacity planner for LLM inference: will this model fit, and how fast will it be?",
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register() -> None:
    # Each command lives in its own module and imports the heavy parts of the library lazily.
    from planner.cli import calibrate, catalog, check, compare, fleet, plan, recommend, validate, web

    for module in (plan, catalog, validate, calibrate, recommend, compare, check, fleet, web):
        module.register(app)


_register()


def _without_pydantic_plugins() -> None:
    """Skip pydantic's plugin discovery (a scan of every installed package's entry points, ~30 ms per
    call): planner's models use no plugins, and typer already disables them for its own parameters.
    An explicit PYDANTIC_DISABLE_PLUGINS set by the user wins."""
    import os

    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")


def main() -> None:
    _without_pydantic_plugins()
    sys.exit(run(app))


def plan_main() -> None:
    """The `plan` console script: the same as `planner plan`."""
    from planner.cli.plan import plan_app

    _without_pydantic_plugins()
    sys.exit(run(plan_app))
