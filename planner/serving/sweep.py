"""Latency against request rate for one layout, and the knee: the highest rate that meets the SLOs."""

from __future__ import annotations

from dataclasses import replace

from planner.errors import InputError
from planner.serving.engines import EngineKnobs, scheduler_for
from planner.serving.simulate import Metrics, Slo, Traffic, simulate
from planner.serving.steps import StepModel

SWEEP_FRACTIONS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0)


def sweep_rates(rps: float) -> list[float]:
    return [round(rps * f, 6) for f in SWEEP_FRACTIONS]


def sweep(d, replicas: int, traffic: Traffic, slo: Slo, knobs: EngineKnobs = EngineKnobs(),
          rates: list[float] | None = None) -> tuple[list[tuple[float, Metrics]], float | None]:
    """Metrics at each rate (Poisson/gamma arrivals as in ``traffic``) and the knee (None if no rate meets
    the SLOs)."""
    if traffic.rps is None:
        raise InputError("--sweep-rps needs --rps (an open-loop rate to sweep around)")
    sched, _ = scheduler_for(d, knobs)
    steps = StepModel(d)
    out = [(r, simulate(steps, sched, replicas, replace(traffic, rps=r), slo)) for r in rates or sweep_rates(traffic.rps)]
    ok = [r for r, m in out if m.meets_slo]
    return out, (max(ok) if ok else None)
