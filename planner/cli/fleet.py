"""`planner fleet`: how many GPUs serve this traffic within the latency SLOs, per device, and at what cost."""

from __future__ import annotations

import sys

import typer

from planner.cli.base import EXIT_FAIL, EXIT_OK, guarded
from planner.cli.options import Model, kv_dtype_option, one_format, plot_option, quant_option

FixQuant = quant_option("fix the weight format")
FixKvDtype = kv_dtype_option("fix the KV dtype")
SweepPlot = plot_option("the rate sweep")


def _progress(enabled: bool, total: int):
    """A rich progress bar on stderr over the devices (and their rate sweeps), only on a terminal."""
    if not enabled or not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("simulating", total=total)
    bar.start()

    def update(message: str, advance: int = 0) -> None:
        bar.update(task, description=f"simulating {message}", advance=advance)

    return update, bar


def fleet_command(
    model: Model,
    gpus: str = typer.Option(..., "--gpus", help="comma-separated hardware ids"),
    engine: str = typer.Option("vllm", "--engine", "-e", help="vllm, llama.cpp (llama-server) or ollama"),
    rps: float | None = typer.Option(None, "--rps", help="requests per second (open loop)"),
    concurrency: int | None = typer.Option(None, "--concurrency", help="closed loop of N clients instead of --rps"),
    trace: str | None = typer.Option(None, "--trace", help="CSV/JSONL trace: arrival time, prompt and output tokens"),
    prompt: str = typer.Option("1000", "--prompt", help="prompt tokens: N, lognormal:mean=M,sigma=S, uniform:a,b, exp:M"),
    gen: str = typer.Option("300", "--gen", help="output tokens, same forms as --prompt"),
    burstiness: float = typer.Option(1.0, "--burstiness", help="gamma shape of inter-arrival gaps (1 = Poisson)"),
    duration: float = typer.Option(600.0, "--duration", help="simulated seconds of arrivals"),
    seed: int = typer.Option(0, "--seed", min=0, help="random stream"),
    lb: str = typer.Option("round-robin", "--lb", help="round-robin or least-loaded"),
    ttft_p95: float | None = typer.Option(None, "--ttft-p95", min=0, help="p95 time to first token, at most (s)"),
    tpot_p95: float | None = typer.Option(None, "--tpot-p95", min=0, help="p95 time per output token, at most (s)"),
    e2e_p95: float | None = typer.Option(None, "--e2e-p95", min=0, help="p95 end-to-end latency, at most (s)"),
    min_goodput: float | None = typer.Option(None, "--min-goodput", min=0, help="requests/s meeting every SLO"),
    quant: FixQuant = None,
    kv_dtype: FixKvDtype = None,
    tp: int | None = typer.Option(None, "--tp", help="fix tensor-parallel size per replica (GPUs per replica)"),
    pp: int | None = typer.Option(None, "--pp", help="fix pipeline-parallel size (nodes per replica, vLLM)"),
    replicas: int | None = typer.Option(None, "--replicas", help="fix the number of replicas"),
    max_gpus: int = typer.Option(64, "--max-gpus", help="largest fleet to consider"),
    usd_per_gpu_hour: float | None = typer.Option(None, "--usd-per-gpu-hour", help="override the catalog price"),
    prefix_hit: float = typer.Option(0.0, "--prefix-hit", help="share of each prompt found in vLLM's prefix cache"),
    slots: int | None = typer.Option(None, "--slots", help="llama-server -np / OLLAMA_NUM_PARALLEL"),
    max_num_seqs: int | None = typer.Option(None, "--max-num-seqs", help="vLLM max_num_seqs"),
    max_num_batched_tokens: int | None = typer.Option(None, "--max-num-batched-tokens", help="vLLM token budget"),
    sweep_rps: bool = typer.Option(False, "--sweep-rps", help="latency against rate for each chosen layout"),
    plot: SweepPlot = None,
    as_json: bool = typer.Option(False, "--json", help="machine-readable output (docs/fleet.md)"),
    markdown: bool = typer.Option(False, "--markdown", help="a markdown table"),
) -> None:
    """Size the fleet per device: layout, GPUs, goodput, p50/p95/p99 latencies, cost and energy."""
    import json

    from planner.errors import InputError
    from planner.search.compare import device_ids
    from planner.serving.engines import EngineKnobs
    from planner.serving.fleet import fleet
    from planner.serving.simulate import Slo, Traffic
    from planner.serving.traffic import parse_length
    from planner.views import fleet as view

    one_format(as_json, markdown)
    for name, v in (("--slots", slots), ("--max-num-seqs", max_num_seqs),
                    ("--max-num-batched-tokens", max_num_batched_tokens)):
        if v is not None and not 1 <= v <= 1_000_000:
            raise InputError(f"{name} must be between 1 and 1,000,000")
    traffic = Traffic(prompt=parse_length(prompt, "--prompt"), gen=parse_length(gen, "--gen"), rps=rps,
                      concurrency=concurrency, trace=trace, burstiness=burstiness, duration_s=duration, seed=seed,
                      lb=lb)
    traffic.check()
    if traffic.gen.kind == "fixed" and traffic.gen.a < 1:
        raise InputError("--gen must be at least 1")
    slo = Slo(ttft_p95, tpot_p95, e2e_p95, min_goodput)
    knobs = EngineKnobs(slots=slots, max_num_seqs=max_num_seqs, max_num_batched_tokens=max_num_batched_tokens,
                        prefix_hit=prefix_hit)
    devices = device_ids(gpus, False)
    progress, status = _progress(not as_json, len(devices) * (2 if (sweep_rps or plot) else 1))
    try:
        rows, workload = fleet(model, devices, engine, traffic, slo, max_gpus=max_gpus, quant=quant,
                               kv_dtype=kv_dtype, tp=tp, pp=pp, replicas=replicas, knobs=knobs,
                               usd_per_gpu_hour=usd_per_gpu_hour, progress=progress)
        sweeps = _sweeps(rows, traffic, slo, knobs, progress) if (sweep_rps or plot) else {}
    finally:
        if status is not None:
            status.stop()
    if plot:
        view.sweep_chart(sweeps, plot, title=f"{workload['model']}, {workload['engine']}")
    if as_json:
        out = {"rows": [r.values for r in rows], "workload": workload}
        if sweep_rps:
            out["sweep"] = {g: {"knee_rps": knee, "points": [_point(r, m) for r, m in curve]}
                            for g, (curve, knee) in sweeps.items()}
        print(json.dumps(out, indent=2))
    elif markdown:
        print(view.markdown(rows, workload))
    else:
        print(view.text(rows, workload))
        if sweep_rps:
            for g, (curve, knee) in sweeps.items():
                print()
                print(view.sweep_text(g, curve, knee))
    raise typer.Exit(EXIT_OK if any(r["meets_slo"] for r in rows) else EXIT_FAIL)


def _sweeps(rows, traffic, slo, knobs, progress) -> dict:
    from dataclasses import replace

    from planner.serving.sweep import sweep

    out = {}
    for r in rows:
        s = r.values
        if s["quant"] is None or r.deployment is None:
            continue
        if progress:
            progress(f"rate sweep on {s['gpu']}")
        k = replace(knobs, slots=r.slots, slot_ctx=r.ctx) if r.slots else knobs
        out[s["gpu"]] = sweep(r.deployment, s["replicas"], traffic, slo, k)
        if progress:
            progress(f"rate sweep on {s['gpu']}", 1)
    return out


def _point(rate, m) -> dict:
    return {"rps": rate, "meets_slo": m.meets_slo, "goodput_rps": m.goodput_rps,
            "throughput_tok_s": m.throughput_tok_s, "ttft_p95_s": m.ttft_s["p95"], "tpot_p95_s": m.tpot_s["p95"],
            "e2e_p95_s": m.e2e_s["p95"]}


def register(app: typer.Typer) -> None:
    app.command("fleet")(guarded(fleet_command))
