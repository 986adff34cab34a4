"""Session plumbing of the adversarial suite: a scratch calibration cache and the totals line."""

from __future__ import annotations

import resource
import shutil

import pytest

from _contract import STATS, WORK


@pytest.fixture(scope="session", autouse=True)
def _scratch_and_cache(tmp_path_factory):
    import os

    # Calibrations written by the suite land in a scratch cache, never the user's.
    old = os.environ.get("PLANNER_CACHE_DIR")
    os.environ["PLANNER_CACHE_DIR"] = str(tmp_path_factory.mktemp("adversarial-cache"))
    yield
    if old is None:
        os.environ.pop("PLANNER_CACHE_DIR", None)
    else:
        os.environ["PLANNER_CACHE_DIR"] = old
    shutil.rmtree(WORK, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    if STATS["cases"]:
        terminalreporter.write_line(
            f"adversarial: {STATS['cases']} generated cases, {STATS['tracebacks']} tracebacks, exit codes "
            f"{dict(sorted(STATS['exit'].items()))}, slowest {STATS['slowest_s']:.2f} s ({STATS['slowest']}), "
            f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


