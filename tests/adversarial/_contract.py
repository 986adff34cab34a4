"""The contract every command keeps, whatever it is given (docs/security.md).

``contract(args)`` runs ``planner ARGS`` in-process through ``planner.cli.run`` and asserts:
exit code 0, 1 or 2; exit 2 prints exactly one stderr line starting ``error: ``; no traceback and no
exception escaping; no Python warning (a numpy RuntimeWarning would reach stderr); stdout free of
control characters; ``--json`` output strict JSON (no NaN/Infinity); time and peak memory within bounds
(measured with ``time.perf_counter`` and ``resource``). Every case is counted; the totals are printed
at the end of the run.
"""

from __future__ import annotations

import io
import json
import re
import resource
import tempfile
import time
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, settings

# Bounds of one command on a busy 2-core CI machine; a healthy run is 10-100x below them.
MAX_SECONDS = 20.0
MAX_RSS_GROWTH_MIB = 1024
STATS = {"cases": 0, "tracebacks": 0, "exit": {0: 0, 1: 0, 2: 0}, "slowest_s": 0.0, "slowest": ""}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Deterministic (the same cases on every CI run), no example database, no per-example deadline (the
# contract checks the time itself).
ADVERSARIAL = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                              HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])

WORK = Path(tempfile.mkdtemp(prefix="planner-adversarial-"))


def _refuse_constant(name: str):
    raise AssertionError(f"--json output holds {name}, which is not JSON")


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str
    seconds: float


def contract(args: list[str], json_out: bool | None = None) -> Outcome:
    """Run one command and assert the contract; returns what it printed."""
    from planner.cli import app, run

    args = [str(a) for a in args]
    label = " ".join(a if len(a) < 60 else a[:57] + "..." for a in args)
    out, err = io.StringIO(), io.StringIO()
    peak_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with redirect_stdout(out), redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = run(app, args)
        except BaseException as exc:  # noqa: BLE001 - anything escaping is a traceback for the user
            STATS["tracebacks"] += 1
            raise AssertionError(f"planner {label}: {type(exc).__name__} escaped: {exc}") from exc
    seconds = time.perf_counter() - start
    STATS["cases"] += 1
    STATS["exit"][code] = STATS["exit"].get(code, 0) + 1
    if seconds > STATS["slowest_s"]:
        STATS["slowest_s"], STATS["slowest"] = seconds, label[:200]
    o, e = out.getvalue(), err.getvalue()
    assert code in (0, 1, 2), f"planner {label}: exit {code}\n{e}"
    assert "Traceback" not in e, f"planner {label}: traceback\n{e}"
    if code == 2:
        lines = e.rstrip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("error: "), f"planner {label}: exit 2 printed {e!r}"
    assert not caught, f"planner {label}: warnings {[str(w.message) for w in caught]}"
    assert not CONTROL.search(o), f"planner {label}: control characters on stdout"
    if (json_out if json_out is not None else "--json" in args) and code in (0, 1):
        json.loads(o, parse_constant=_refuse_constant)
    assert seconds < MAX_SECONDS, f"planner {label}: {seconds:.1f} s"
    # The process's peak (Linux reports KiB) only grows when a case needs more than any case before it,
    # so the growth bounds what this case allocated beyond the suite's earlier high-water mark.
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before_kib) / 1024
    assert grown_mib < MAX_RSS_GROWTH_MIB, f"planner {label}: peak memory grew by {grown_mib:.0f} MiB"
    return Outcome(code, o, e, seconds)


_counter = [0]


def fresh(name: str) -> Path:
    """A new path under the suite's scratch folder (hypothesis reuses one test call for many cases)."""
    _counter[0] += 1
    folder = WORK / f"c{_counter[0]}"
    folder.mkdir()
    return folder / name
