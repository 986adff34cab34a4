"""`planner models` and `planner gpus`: what the catalog holds."""

from __future__ import annotations

import typer

from planner.cli.base import guarded


def models_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List the model catalog."""
    from planner.views.text import json_text

    from planner.views import text as render
    from planner.views.documents import model_rows

    rows = model_rows()
    if as_json:
        print(json_text(rows))
        return
    print(render.table(
        [[r["id"], r["name"], f"{r['params'] / 1e9:.2f} B", f"{r['active_params'] / 1e9:.2f} B",
          f"{r['max_context']:,}"] for r in rows],
        ["id", "name", "params", "active", "max ctx"]))


def gpus_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List the hardware catalog."""
    from planner.views.text import json_text

    from planner.views import text as render
    from planner.views.documents import gpu_rows

    rows = gpu_rows()
    if as_json:
        print(json_text(rows))
        return
    print(render.table(
        [[r["id"], r["name"], r["kind"], render.gib(r["memory_bytes"]), f"{r['bandwidth_bytes_per_s'] / 1e9:,.0f}",
          "-" if r["launch_usd"] is None else f"${r['launch_usd']:,.0f}"] for r in rows],
        ["id", "name", "kind", "memory GiB", "bandwidth GB/s", "launch price"]))


def register(app: typer.Typer) -> None:
    app.command("models")(guarded(models_command))
    app.command("gpus")(guarded(gpus_command))
