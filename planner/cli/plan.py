"""`planner plan` (also the `plan` script): will this model fit on this device, and how fast?"""

from __future__ import annotations

import typer

from planner.cli.base import EXIT_FAIL, EXIT_OK, guarded
from planner.cli.options import (
    PARALLEL_CHOICES,
    EngineName,
    Gpu,
    Json,
    Markdown,
    Model,
    ParallelOption,
    check_choice,
    kv_dtype_option,
    one_format,
    plot_option,
    quant_option,
)

PlanQuant = quant_option("weight format; omit to list every format")
PlanKvDtype = kv_dtype_option("KV-cache dtype")
PlanPlot = plot_option("memory and speed against context")


def plan_command(
    model: Model,
    gpu: Gpu,
    ctx: int = typer.Option(4096, "--ctx", min=1, help="context length per sequence (tokens)"),
    batch: int = typer.Option(1, "--batch", min=1, help="sequences decoded together"),
    quant: PlanQuant = None,
    kv_dtype: PlanKvDtype = "f16",
    engine: EngineName = "llama.cpp",
    prompt: int = typer.Option(512, "--prompt", min=0, help="prompt tokens"),
    gen: int = typer.Option(256, "--gen", min=1, help="generated tokens"),
    num_gpus: int = typer.Option(1, "--num-gpus", min=1, help="GPUs in all (per node times nodes)"),
    parallel: ParallelOption = None,
    nodes: int = typer.Option(1, "--nodes", min=1, help="nodes the GPUs are spread over (TP inside, PP across)"),
    offload: str = typer.Option("none", "--offload", help="llama.cpp layers in host memory: none, auto or N"),
    host: str | None = typer.Option(None, "--host", help="host memory profile for offload (default ddr5-6000-2ch)"),
    threads: int | None = typer.Option(None, "--threads", min=1, max=8192,
                                       help="CPU threads for CPU-only runs and offloaded layers "
                                       "(default: physical cores)"),
    calibration: str | None = typer.Option(None, "--calibration", help="calibration file from `planner calibrate`"),
    as_json: Json = False,
    markdown: Markdown = False,
    plot: PlanPlot = None,
) -> None:
    """Memory (and speed) of MODEL on GPU; one row per quantization unless --quant is given."""
    from planner.estimate import plan, resolve
    from planner.calibrate.store import efficiency_for, is_local, local_device
    from planner.physics.workload import Workload
    from planner.views import text as render

    one_format(as_json, markdown)
    check_choice("--parallel", parallel, PARALLEL_CHOICES)
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
