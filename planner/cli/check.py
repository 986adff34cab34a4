"""`planner check`: the CI gate for deployment files (docs/check.md)."""

from __future__ import annotations

import typer

from planner.cli.base import EXIT_FAIL, EXIT_OK, guarded


def check_command(
    file: str = typer.Argument(..., help="deployment file (YAML; schema in docs/check.md)"),
    as_json: bool = typer.Option(False, "--json", help="per-deployment results as JSON"),
    junit_xml: str | None = typer.Option(None, "--junit-xml", help="also write a JUnit XML report here"),
    markdown: bool = typer.Option(False, "--markdown", help="a markdown report for pull-request comments"),
) -> None:
    """Exit 0 when every deployment fits and meets its objectives, 1 when any does not, 2 when the
    file is invalid."""
    import json
    import time

    from planner.check.deploy import check_file
    from planner.errors import InputError

    if as_json and markdown:
        raise InputError("choose one of --json and --markdown")
    start = time.perf_counter()
    result = check_file(file)
    if junit_xml:
        from planner.check import junit

        junit.write(result, junit_xml, time.perf_counter() - start)
    if as_json:
        data = result.model_dump(mode="json")
        for d, r in zip(data["deployments"], result.deployments):
            d["failures"] = [c.message for c in r.failures]
        print(json.dumps(data, indent=2))
    elif markdown:
        from planner.views import markdown as md

        print(md.check(result))
    else:
        print(text(result))
    raise typer.Exit(EXIT_OK if result.passed else EXIT_FAIL)


def text(result) -> str:
    lines = []
    for d in result.deployments:
        e = d.plan
        lines.append(f"{'PASS' if d.passed else 'FAIL'}  {d.name}: {e.model} {e.quant} on "
                     f"{e.num_gpus} x {e.gpu} with {e.engine}, ctx {e.ctx:,} x {e.batch}")
        for c in d.failures:
            lines.append(f"      {c.message}")
    failed = sum(not d.passed for d in result.deployments)
    lines.append(f"{len(result.deployments) - failed} passed, {failed} failed ({result.file})")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("check")(guarded(check_command))
