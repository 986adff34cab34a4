"""Plumbing every command shares: exit codes, mapping errors to one stderr line, running a Typer app."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable
from functools import wraps

import typer
from pydantic import ValidationError

from planner.errors import PlannerError, one_line, strip_controls

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT; never mistaken for "does not fit"


# Fields of the library's input models that a flag sets directly, so an error names the flag.
FLAGS = {"max_ttft_s": "--max-ttft", "max_e2e_s": "--max-e2e", "min_tok_s": "--min-tok-s", "min_ctx": "--min-ctx",
         "headroom_fraction": "--headroom"}


def fail_input(message: str) -> typer.Exit:
    print(f"error: {one_line(message)}", file=sys.stderr)
    return typer.Exit(EXIT_INPUT)


def guarded(fn: Callable) -> Callable:
    """Map the library's input errors to one stderr line and exit code 2."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PlannerError as exc:
            raise fail_input(str(exc)) from None
        except ValidationError as exc:  # a workload built from flags out of range
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            field = FLAGS.get(field, field)
            raise fail_input(f"{field}: {first['msg']}" if field else first["msg"]) from None
        except ValueError as exc:
            raise fail_input(str(exc) or "invalid value") from None
        except OSError as exc:  # e.g. a report or calibration file that cannot be written
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail_input(f"{where}{exc.strerror or exc}") from None
        except ArithmeticError as exc:  # OverflowError, ZeroDivisionError
            # A number at the edge of its type that a bound missed: still bad input, never a traceback.
            raise fail_input(f"a number in the input is out of range ({exc})") from None
        except RecursionError:
            raise fail_input("input nested too deeply") from None
        except RuntimeWarning as exc:  # numpy overflow or invalid value, raised as an error by `run`
            raise fail_input(f"a number in the input is out of range ({exc})") from None

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


