"""The serving simulator against published serving benchmarks (validation/serving_benchmarks.csv).

    PYTHONPATH=. python3 validation/serving_error.py [--duration 300]

Each row is simulated as it was run (closed loop of N clients, or a Poisson rate, fixed prompt and output
lengths) with the default efficiencies, i.e. out of sample: none of these rows was used to fit anything.
Prints, per row, measured vs simulated output tokens/s and TTFT, and the median absolute errors.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from planner.estimate import deployment, resolve_hardware, resolve_model
from planner.physics.engines import get_engine
from planner.physics.quant import get_quant
from planner.physics.workload import Workload
from planner.serving.capacity import evaluate
from planner.serving.simulate import Slo, Traffic
from planner.serving.traffic import parse_length

DATA = Path(__file__).with_name("serving_benchmarks.csv")


def simulate_row(r: dict, duration: float):
    eng = get_engine(r["engine"])
    ctx = int(r["prompt_tokens"]) + int(r["gen_tokens"])
    d = deployment(resolve_model(r["model"]), resolve_hardware(r["gpu"]), eng, get_quant(r["quant"]),
                   "bf16" if r["engine"] == "vllm" else "f16", Workload(ctx=-(-ctx // 1024) * 1024),
                   num_gpus=int(r["num_gpus"]), parallel="tp" if r["engine"] == "vllm" else None)
    t = Traffic(prompt=parse_length(r["prompt_tokens"]), gen=parse_length(r["gen_tokens"]),
                concurrency=int(r["concurrency"]) if r["load"] == "closed" else None,
                rps=float(r["rps"]) if r["load"] == "open" else None, duration_s=duration)
    return evaluate(d, t, Slo())


def err(sim: float, meas: float) -> float:
    return (sim - meas) / meas


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=300.0)
    a = ap.parse_args()
    rows = list(csv.DictReader(DATA.open()))
    tok_e, p50_e = [], []
    print(f"{'setup':42} {'load':>6} {'tok/s meas':>10} {'sim':>7} {'err':>6}   {'TTFT p50 meas':>13} {'sim':>7} "
          f"{'err':>6}   {'TTFT p99 meas':>13} {'sim':>7}")
    for r in rows:
        m = simulate_row(r, a.duration)
        te = err(m.throughput_tok_s, float(r["out_tok_s"]))
        pe = err(m.ttft_s["p50"] * 1000, float(r["ttft_p50_ms"]))
        tok_e.append(abs(te))
        p50_e.append(abs(pe))
        setup = f"{r['model']} {r['quant']} {r['gpu']} {r['prompt_tokens']}/{r['gen_tokens']}"
        load = f"C={r['concurrency']}" if r["load"] == "closed" else f"{r['rps']}/s"
        print(f"{setup:42} {load:>6} {float(r['out_tok_s']):>10,.0f} {m.throughput_tok_s:>7,.0f} {te:>+6.0%}   "
              f"{float(r['ttft_p50_ms']):>10,.0f} ms {m.ttft_s['p50'] * 1000:>4,.0f} ms {pe:>+6.0%}   "
              f"{float(r['ttft_p99_ms']):>10,.0f} ms {m.ttft_s['p99'] * 1000:>4,.0f} ms")
    print(f"median |error|: output tok/s {statistics.median(tok_e):.0%}, TTFT p50 {statistics.median(p50_e):.0%} "
          f"({len(rows)} rows)")


if __name__ == "__main__":
    main()
