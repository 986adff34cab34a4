"""`planner plan` (also the `plan` script): will this model fit on this device, and how fast?"""

from __future__ import annotations

import typer

from planner.cli.base import EXIT_FAIL, EXIT_OK, guarded


def plan_command(
    model: str = typer.Option(..., "--model", "-m", help="catalog id or alias, a model YAML, GGUF, config.json or folder"),
    gpu: str = typer.Option(..., "--gpu", "-g", help="hardware id or alias, or a hardware YAML"),
    ctx: int = typer.Option(4096, "--ctx", min=1, help="context length per sequence (tokens)"),
    batch: int = typer.Option(1, "--batch", min=1, help="sequences decoded together"),
    quant: str | None = typer.Option(None, "--quant", "-q", help="weight format; omit to list every format"),
    kv_dtype: str = typer.Option("f16", "--kv-dtype", help="KV-cache dtype: f16, bf16, f32, q8_0, q4_0, fp8"),
    engine: str = typer.Option("llama.cpp", "--engine", "-e", help="llama.cpp, ollama, vllm or torch"),
    prompt: int = typer.Option(512, "--prompt", min=0, help="prompt tokens"),
    gen: int = typer.Option(256, "--gen", min=1, help="generated tokens"),
    num_gpus: int = typer.Option(1, "--num-gpus", min=1, help="GPUs in all (per node times nodes)"),
    parallel: str | None = typer.Option(None, "--parallel", help="tp, pp or layer (default: tp for vllm, else layer)"),
    nodes: int = typer.Option(1, "--nodes", min=1, help="nodes the GPUs are spread over (TP inside, PP across)"),
    offload: str = typer.Option("none", "--offload", help="llama.cpp layers in host memory: none, auto or N"),
    host: str | None = typer.Option(None, "--host", help="host memory profile for offload (default ddr5-6000-2ch)"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=8192,
                                       help="CPU threads for CPU-only runs and offloaded layers "
                                       "(default: physical cores)"),
    calibration: str | None = typer.Option(None, "--calibration", help="calibration file from `planner calibrate`"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    markdown: bool = typer.Option(False, "--markdown", help="a markdown report for pull-request comments"),
    plot: str | None = typer.Option(None, "--plot", help="write memory and speed against context to FILE.png"),
) -> None:
    """Memory (and speed) of MODEL on GPU; one row per quantization unless --quant is given."""
    from planner.errors import InputError
    from planner.estimate import plan, resolve
    from planner.calibrate.store import efficiency_for, is_local, local_device
    from planner.physics.workload import Workload
    from planner.views import text as render

    if as_json and markdown:
        raise InputError("choose one of --json and --markdown")
    if parallel is not None and parallel not in ("tp", "pp", "layer"):
        raise InputError(f"--parallel takes tp, pp or layer, not '{parallel}'")
    if plot:
        from planner.spec.safeio import remove_stale
        from planner.views.plot import target as plot_target

        remove_stale(plot_target(plot))  # refuse a folder or device before any work; no stale picture
    workload = Workload(ctx=ctx, batch=batch, prompt_tokens=prompt, gen_tokens=gen)
    device = local_device(calibration) if is_local(gpu) else gpu
    efficiency = efficiency_for(gpu if calibration else getattr(device, "id", device), engine, calibration)
    estimates = plan(resolve(model, device, quant=quant, engine=engine, kv_dtype=kv_dtype, workload=workload,
                     num_gpus=num_gpus, nodes=nodes, parallel=parallel, offload=offload, host=host,
                     efficiency=efficiency, threads=threads))
    if plot:
        from planner.views import plot as plotting

        chosen = estimates[0] if quant else next((e for e in estimates if e.memory.fits), estimates[0])
        plotting.plan_chart(model, chosen, plot, nodes=nodes, parallel=parallel, host=host,
                            efficiency=efficiency)
    if as_json:
        from planner.views.documents import plan_document

        print(render.to_json(plan_document(estimates, quant_given=bool(quant))))
    elif markdown:
        from planner.views import markdown as md

        print(md.plan(estimates))
    elif quant:
        from planner.views import plan as plan_view

        print(plan_view.detail(estimates[0]))
    else:
        from planner.views import plan as plan_view

        print(plan_view.summary(estimates))
    raise typer.Exit(EXIT_OK if any(e.memory.fits for e in estimates) else EXIT_FAIL)


def register(app: typer.Typer) -> None:
    app.command("plan")(guarded(plan_command))


plan_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
plan_app.command()(guarded(plan_command))
