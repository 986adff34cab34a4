"""`planner compare`: one workload across many devices, for buying decisions."""

from __future__ import annotations

import typer

from planner.cli.base import EXIT_FAIL, EXIT_OK, guarded
from planner.cli.options import (
    PREFER_CHOICES,
    EngineName,
    Json,
    Markdown,
    Model,
    PreferOption,
    SortOption,
    check_choice,
    kv_dtype_option,
    one_format,
    plot_option,
    quant_option,
)

OnlyQuant = quant_option("only this weight format")
OnlyKvDtype = kv_dtype_option("only this KV dtype")
BarPlot = plot_option("a bar chart per device")


def compare_command(
    model: Model,
    gpus: str | None = typer.Option(None, "--gpus", help="comma-separated hardware ids"),
    all_devices: bool = typer.Option(False, "--all", help="every GPU and unified-memory device in the catalog"),
    ctx: int = typer.Option(4096, "--ctx", min=1, help="context each sequence needs (tokens)"),
    quant: OnlyQuant = None,
    kv_dtype: OnlyKvDtype = None,
    engine: EngineName = "llama.cpp",
    prompt: int = typer.Option(512, "--prompt", min=0, help="prompt tokens"),
    gen: int = typer.Option(256, "--gen", min=1, help="generated tokens"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="sequences served at once"),
    min_tok_s: float | None = typer.Option(None, "--min-tok-s", min=0, help="decode tok/s per sequence, at least"),
    max_ttft: float | None = typer.Option(None, "--max-ttft", min=0, help="time to first token, at most (s)"),
    max_e2e: float | None = typer.Option(None, "--max-e2e", min=0, help="end-to-end latency, at most (s)"),
    headroom: float = typer.Option(0.1, "--headroom", min=0, max=0.99, help="fraction of device memory kept free"),
    prefer: PreferOption = "quality",
    sort: SortOption = "tok_s",
    min_quality: str = typer.Option("q4_k_m", "--min-quality",
                                    help="weakest format class allowed (a quant id, e.g. q4_k_m, q8_0), or any"),
    usd_per_gpu_hour: float | None = typer.Option(None, "--usd-per-gpu-hour", help="override the catalog price"),
    as_json: Json = False,
    markdown: Markdown = False,
    plot: BarPlot = None,
) -> None:
    """Compare devices for one workload: fits, best quant, speed, context, concurrency, GPUs, price."""
    from planner.views.text import json_text

    from planner.search.compare import compare, device_ids
    from planner.errors import InputError
    from planner.search.recommend import Targets

    one_format(as_json, markdown)
    check_choice("--prefer", prefer, PREFER_CHOICES)
    if gpus and all_devices:
        raise InputError("give --gpus or --all, not both")
    if plot:
        from planner.spec.safeio import remove_stale
        from planner.views.plot import target as plot_target

        remove_stale(plot_target(plot))  # refuse a folder or device before any work; no stale picture
    targets = Targets(min_tok_s=min_tok_s, max_ttft_s=max_ttft, max_e2e_s=max_e2e, headroom_fraction=headroom)
    names, efficiencies = _with_local(device_ids(gpus, all_devices), engine)
    rows = compare(model, names, engine, ctx, quant, kv_dtype, prompt, gen, concurrency, targets, prefer, sort,
                   min_quality, usd_per_gpu_hour, efficiencies)
    if plot:
        from planner.views import plot as plotting

        plotting.compare_chart(rows, plot, title=f"{model}, ctx {ctx:,}, {engine}")
    if as_json:
        from planner.views.documents import compare_document

        print(json_text(compare_document(rows)))
    elif markdown:
        from planner.views import markdown as md

        print(md.compare(rows, model, ctx, engine))
    else:
        from planner.views import compare as compare_view

        print(compare_view.text(rows, model, ctx, engine, concurrency, min_quality, quant))
    raise typer.Exit(EXIT_OK if any(r.fits for r in rows) else EXIT_FAIL)


def _with_local(names: list[str], engine: str) -> tuple[list, dict]:
    """``local`` in --gpus: the calibrated device and the engine's efficiency on it (planner calibrate)."""
    from planner.calibrate.store import efficiency_for, is_local, local_device

    out, efficiencies = [], {}
    for name in names:
        if is_local(name):
            hw = local_device()
            out.append(hw)
            efficiencies[hw.id] = efficiency_for(hw.id, engine, None)
        else:
            out.append(name)
    return out, efficiencies


def register(app: typer.Typer) -> None:
    app.command("compare")(guarded(compare_command))
