"""`planner models` and `planner gpus`: what the catalog holds."""

from __future__ import annotations

import typer

from planner.cli.base import guarded


def models_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """List the model catalog."""
    from planner.views.text import json_text

    from planner.spec import catalog

    from planner.views import text as render
    from planner.spec.tensors import active_parameter_count, parameter_count

    rows = []
    for spec in catalog.models().items.values():
        params = parameter_count(spec)
        active = active_parameter_count(spec) if spec.moe else params
        rows.append({"id": spec.id, "name": spec.name, "aliases": list(spec.aliases), "params": params,
                     "active_params": active, "max_context": spec.architecture.max_context,
                     "family": spec.architecture.family.value})
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

    from planner.spec import catalog

    from planner.views import text as render

    rows = []
    for hw in catalog.hardware().items.values():
        rows.append({"id": hw.id, "name": hw.name, "aliases": list(hw.aliases), "vendor": hw.vendor.value,
                     "kind": hw.kind.value, "memory_bytes": hw.memory_bytes,
                     "bandwidth_bytes_per_s": hw.bandwidth_bytes_per_s,
                     "launch_usd": hw.price.launch_usd if hw.price else None})
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
