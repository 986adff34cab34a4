"""Time the serving simulator on one hour of traffic at 20 requests/s (about 72,000 requests) on one replica.

    python benchmarks/serving_1h.py [--gpu h200] [--runs 3]

The replica is Llama 3.1 8B in bf16 under vLLM (default scheduler limits, KV pool from the memory model);
prompts are 1,000 tokens and outputs 300 by default, Poisson arrivals, seed 0. Prints CPU and wall seconds
per run (median of the runs) and the simulated p95s, so a run can be checked for being in steady state.
"""

from __future__ import annotations

import argparse
import statistics
import time

from planner.estimate import deployment, resolve_hardware, resolve_model
from planner.physics.quant import Engine, get_quant
from planner.physics.workload import Workload
from planner.serving.engines import scheduler_for
from planner.serving.simulate import Slo, Traffic, simulate
from planner.serving.steps import StepModel
from planner.serving.traffic import parse_length


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gpu", default="h200")
    ap.add_argument("--rps", type=float, default=20.0)
    ap.add_argument("--prompt", default="1000")
    ap.add_argument("--gen", default="300")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    d = deployment(resolve_model("llama3.1-8b"), resolve_hardware(a.gpu), Engine.vllm, get_quant("bf16"), "bf16",
                   Workload(ctx=2048))
    sched, _ = scheduler_for(d)
    steps = StepModel(d)
    t = Traffic(prompt=parse_length(a.prompt), gen=parse_length(a.gen), rps=a.rps, duration_s=3600.0, seed=0)
    cpu, wall = [], []
    for _ in range(a.runs):
        c0, w0 = time.process_time(), time.perf_counter()
        m = simulate(steps, sched, 1, t, Slo(ttft_p95_s=2.0, tpot_p95_s=0.05))
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    print(f"{m.requests:,} requests, {m.finished:,} finished on one {a.gpu} replica; "
          f"p95 TTFT {m.ttft_s['p95']:.3f} s, p95 TPOT {m.tpot_s['p95'] * 1000:.1f} ms, mean batch {m.mean_batch:.1f}, "
          f"{m.throughput_tok_s:,.0f} tok/s, preemptions {m.preemptions}")
    print(f"simulating 1 h: median {statistics.median(cpu):.2f} s CPU, {statistics.median(wall):.2f} s wall "
          f"(runs: {', '.join(f'{x:.2f}' for x in wall)})")


if __name__ == "__main__":
    main()
