"""Measuring on a busy machine: interleaved repeats, their spread, and retries of noisy points.

Another process competing for the cores only ever makes a measurement slower, never faster, and it comes
and goes. So every roof (copy and read bandwidth, the SIMD rates on CPU) is measured in several rounds
that alternate between the kernels, and every decode configuration in several passes over the whole grid:
a burst of load then hits different points in different rounds instead of one point in all of them.

* spread of a point = (second fastest − fastest) / fastest over its rounds (or passes): whether two
  repeats agree on the undisturbed speed (a slower repeat only says that load came by)
* a point whose spread exceeds ``NOISY_SPREAD`` is measured again, at most ``MAX_RETRIES`` more times
* its value is its fastest round: the least disturbed one
* points still noisy after the retries are listed; ``planner calibrate`` refuses to save when too many are
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

NOISY_SPREAD = 0.25
MAX_RETRIES = 2


def spread(seconds: list[float]) -> float:
    """(second fastest − fastest) / fastest of repeated timings of one point; 0 for a single timing.
    Contention only adds time, so the two fastest repeats agreeing is what makes the fastest trustworthy,
    and a retry can only help."""
    if len(seconds) < 2:
        return 0.0
    fastest, second = sorted(seconds)[:2]
    return (second - fastest) / fastest


def load_average() -> float | None:
    """The 1-minute load average (None where the OS does not report one)."""
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


@dataclass
class Noise:
    """What the repeats saw: per point its spread, the points still noisy, the load around the run."""

    spreads: dict[str, float] = field(default_factory=dict)
    noisy: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    load_before: float | None = None
    load_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"spreads": dict(self.spreads), "noisy": list(self.noisy), "retried": list(self.retried),
                "load_before": self.load_before, "load_after": self.load_after}


def interleaved(measures: dict[str, Callable[[], Any]], seconds_of: Callable[[Any], float], rounds: int,
                noise: Noise) -> dict[str, Any]:
    """Run every measure once per round, alternating between them; retry the noisy ones; keep each
    one's fastest result. ``seconds_of`` reads the time of one result."""
    results: dict[str, list[Any]] = {name: [] for name in measures}
    for _ in range(rounds):
        for name, measure in measures.items():
            results[name].append(measure())
    for name, measure in measures.items():
        for _ in range(MAX_RETRIES):
            if spread([seconds_of(r) for r in results[name]]) <= NOISY_SPREAD:
                break
            noise.retried.append(name)
            results[name].append(measure())
        _record(noise, name, [seconds_of(r) for r in results[name]])
    return {name: min(rs, key=seconds_of) for name, rs in results.items()}


def _record(noise: Noise, name: str, seconds: list[float]) -> None:
    noise.spreads[name] = spread(seconds)
    if noise.spreads[name] > NOISY_SPREAD:
        noise.noisy.append(name)


def decode_passes(run_grid: Callable[[set[tuple] | None], list[Any]], passes: int, noise: Noise) -> list[Any]:
    """Run the whole decode grid ``passes`` times, then again for the configurations whose passes
    disagree; each configuration keeps its fastest pass. ``run_grid(only)`` runs the grid (restricted
    to the keys in ``only`` when given) and returns DecodeRun objects."""
    by_key: dict[tuple, list[Any]] = {}
    for _ in range(passes):
        for run in run_grid(None):
            by_key.setdefault(_key(run), []).append(run)
    for _ in range(MAX_RETRIES):
        noisy = {k for k, runs in by_key.items() if spread([r.seconds_per_step for r in runs]) > NOISY_SPREAD}
        if not noisy:
            break
        noise.retried.extend(_label(k) for k in sorted(noisy))
        for run in run_grid(noisy):
            by_key.setdefault(_key(run), []).append(run)
    out = []
    for key in sorted(by_key):
        runs = by_key[key]
        _record(noise, _label(key), [r.seconds_per_step for r in runs])
        best = min(runs, key=lambda r: r.seconds_per_step)
        out.append(replace(best, prefill_seconds=min(r.prefill_seconds for r in runs)))
    return out


def _key(run: Any) -> tuple:
    return (run.n_layers, run.batch, run.context_tokens)


def _label(key: tuple) -> str:
    return f"decode L{key[0]} B{key[1]} ctx{key[2]}"
