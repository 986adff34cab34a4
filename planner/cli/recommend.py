"""`planner recommend`: settings that fit and meet targets, ranked, with launch commands."""

from __future__ import annotations

import typer

from planner.cli.base import EXIT_FAIL, EXIT_OK, guarded
from planner.cli.options import (
    PREFER_CHOICES,
    EngineName,
    Gpu,
    Json,
    Markdown,
    Model,
    PreferOption,
    check_choice,
    kv_dtype_option,
    one_format,
    quant_option,
)

OnlyQuant = quant_option("only this weight format")
OnlyKvDtype = kv_dtype_option("only this KV dtype")


def recommend_command(
    model: Model,
    gpu: Gpu,
    engine: EngineName = "llama.cpp",
    num_gpus: int = typer.Option(1, "--num-gpus", min=1, max=64, help="search GPU counts 1 … N"),
    min_ctx: int | None = typer.Option(None, "--min-ctx", min=1, help="context each sequence needs (tokens)"),
    min_tok_s: float | None = typer.Option(None, "--min-tok-s", min=0, help="decode tok/s per sequence, at least"),
    max_ttft: float | None = typer.Option(None, "--max-ttft", min=0, help="time to first token, at most (s)"),
    max_e2e: float | None = typer.Option(None, "--max-e2e", min=0, help="end-to-end latency, at most (s)"),
    prompt: int = typer.Option(512, "--prompt", min=0, help="prompt tokens"),
    gen: int = typer.Option(256, "--gen", min=1, help="generated tokens"),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="sequences served at once"),
    headroom: float = typer.Option(0.1, "--headroom", min=0, max=0.99, help="fraction of device memory kept free"),
    prefer: PreferOption = "quality",
    quant: OnlyQuant = None,
    kv_dtype: OnlyKvDtype = None,
    offload: bool = typer.Option(True, "--offload/--no-offload", help="allow llama.cpp layers in host memory"),
    host: str | None = typer.Option(None, "--host", help="host memory profile (default ddr5-6000-2ch)"),
    top: int = typer.Option(5, "--top", min=1, max=50, help="how many picks to show"),
    calibration: str | None = typer.Option(None, "--calibration", help="file from `planner calibrate`"),
    as_json: Json = False,
    markdown: Markdown = False,
) -> None:
    """Search quant x KV dtype x context x concurrency (x offload, x GPUs) for settings that fit with
    headroom and meet every target; print the best and why the others were rejected."""
    from planner.views.text import json_text

    from planner.search.recommend import Targets, prepare, recommend

    one_format(as_json, markdown)
    check_choice("--prefer", prefer, PREFER_CHOICES)
    targets = Targets(min_ctx=min_ctx, min_tok_s=min_tok_s, max_ttft_s=max_ttft, max_e2e_s=max_e2e,
                      headroom_fraction=headroom)
    hardware, efficiency = _calibrated(gpu, engine, calibration)
    s = prepare(model, gpu, engine, prompt=prompt, gen=gen, concurrency=concurrency, targets=targets,
                max_gpus=num_gpus, quant=quant, kv_dtype=kv_dtype, offload=offload, host=host,
                efficiency=efficiency, hardware=hardware)
    result = recommend(s, prefer, top)
    if as_json:
        from planner.views.documents import recommend_document

        print(json_text(recommend_document(result)))
    elif markdown:
        from planner.views import markdown as md

        print(md.recommend(result))
    else:
        from planner.views import recommend as recommend_view

        print(recommend_view.text(result))
    raise typer.Exit(EXIT_OK if result.recommendations else EXIT_FAIL)


def _calibrated(gpu: str, engine: str, calibration: str | None):
    """(device, efficiency) for ``--gpu local`` or ``--calibration``: the measured device and the engine's
    efficiency on it (a calibration for this engine, or the device roofs carried over); else (None, None)."""
    from planner.calibrate.store import efficiency_for, is_local, local_device

    if not is_local(gpu) and calibration is None:
        return None, None
    hardware = local_device(calibration) if is_local(gpu) else None
    return hardware, efficiency_for(gpu if calibration else hardware.id, engine, calibration)


def register(app: typer.Typer) -> None:
    app.command("recommend")(guarded(recommend_command))
