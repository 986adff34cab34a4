"""`planner check`: the CI gate for deployment files and the configs teams already have (docs/check.md)."""

from __future__ import annotations

import typer

from planner.cli.base import EXIT_FAIL, EXIT_OK, guarded
from planner.cli.options import one_format

MAX_FILES = 10_000


def check_command(
    paths: list[str] = typer.Argument(..., help="files or folders: planner deployment files, Kubernetes manifests, "
                                                "compose files, production-stack values, Modelfiles, command lines"),
    as_json: bool = typer.Option(False, "--json", help="per-deployment results as JSON"),
    junit_xml: str | None = typer.Option(None, "--junit-xml", help="also write a JUnit XML report here"),
    markdown: bool = typer.Option(False, "--markdown", help="a markdown report for pull-request comments"),
    explain: bool = typer.Option(False, "--explain", help="show what was understood of each deployment; no verdict"),
    glob: str | None = typer.Option(None, "--glob", help="in folders, only files whose name matches (e.g. '*.yaml')"),
    gpu: str | None = typer.Option(None, "--gpu", help="GPU for deployments whose file names none"),
    slo: str | None = typer.Option(None, "--slo", help="YAML file: deployment name (or 'default') -> objectives"),
    sarif: str | None = typer.Option(None, "--sarif", help="also write a SARIF 2.1.0 report here"),
    github: bool = typer.Option(False, "--annotations", help="print GitHub workflow annotations (::error ...)"),
    root: str | None = typer.Option(None, "--root", help="files named in deployment files must be inside this "
                                                         "folder (default: the file's git work tree, else its folder)"),
    allow_outside: bool = typer.Option(False, "--allow-outside", help="let deployment files name files anywhere"),
    skip_other: bool = typer.Option(False, "--skip-other", help="skip named files that hold no deployment, as a "
                                                               "folder walk does (for pre-commit)"),
) -> None:
    """Exit 0 when every deployment fits and meets its objectives, 1 when any does not, 2 when a file is
    invalid or a deployment in it cannot be evaluated (the reason, with file and line)."""
    import json
    import time
    from pathlib import Path

    from planner.check.evaluate import Evaluator
    from planner.check.gate import Options
    from planner.errors import InputError

    one_format(as_json, markdown)
    start = time.perf_counter()
    options = Options(gpu=_gpu(gpu), root=Path(root) if root else None, allow_outside=allow_outside,
                      slo=_slo_file(slo) if slo else {})
    files = _files(paths, glob)
    if skip_other:
        from planner.check.sources import is_candidate

        files = {f: False for f in files if is_candidate(f)}
    if explain:
        from planner.check.explain import explain_json, explain_text

        reports = [r for r in (_explain_one(f, options, explicit) for f, explicit in files.items()) if r]
        if as_json:
            print(json.dumps([explain_json(r) for r in reports], indent=2))
        else:
            print("\n".join(explain_text(r) for r in reports))
        raise typer.Exit(EXIT_OK)
    evaluator = Evaluator()
    need_lines = bool(github or sarif)
    reports = [r for r in (_check_one(f, options, evaluator, explicit, need_lines) for f, explicit in files.items())
               if r]
    if not reports:
        raise InputError("no deployment found in " + ", ".join(paths)[:300])
    results = [r.result for r in reports]
    passed = all(r.passed for r in results)
    if junit_xml:
        from planner.check import junit

        junit.write(results if len(results) > 1 else results[0], junit_xml, time.perf_counter() - start)
    if sarif:
        from planner import __version__
        from planner.check.report import sarif as to_sarif

        Path(sarif).write_text(json.dumps(to_sarif(reports, __version__), indent=2) + "\n", encoding="utf-8")
    if github:
        from planner.check.report import annotations

        for line in annotations(reports):
            print(line)
    if as_json:
        print(json.dumps(_json(results[0]) if len(results) == 1 else
                         {"passed": passed, "files": [_json(r) for r in results]}, indent=2))
    elif markdown:
        from planner.views import markdown as md

        print("\n\n".join(md.check(r) for r in results))
    else:
        print("\n".join(text(r.result, r.found) for r in reports))
    raise typer.Exit(EXIT_OK if passed else EXIT_FAIL)


_NOT_DEPLOYMENTS = ("not a file planner check reads", "no inference deployment", "no vllm, llama-server",
                    "empty file", "expected a mapping with")


def _check_one(path, options, evaluator, explicit: bool, need_lines: bool):
    """A file named on the command line must hold deployments; one found in a folder walk may hold none
    (a Service manifest, a README) and is then skipped."""
    from planner.check.gate import check_path
    from planner.errors import SpecFileError

    try:
        return check_path(path, options, evaluator, need_lines)
    except SpecFileError as exc:
        if not explicit and any(s in str(exc) for s in _NOT_DEPLOYMENTS):
            return None
        raise


def _explain_one(path, options, explicit: bool):
    from planner.check.gate import explain_path
    from planner.errors import SpecFileError

    try:
        return explain_path(path, options)
    except SpecFileError as exc:
        if not explicit and any(s in str(exc) for s in _NOT_DEPLOYMENTS):
            return None
        raise


def _files(paths: list[str], glob: str | None) -> dict:
    """Each path, and the files under each folder (sorted, symlinked folders not followed, hidden folders
    skipped); value True for a file named explicitly."""
    import fnmatch
    import os
    from pathlib import Path

    from planner.check.sources import is_candidate
    from planner.errors import InputError

    out: dict = {}
    for p in paths:
        path = Path(p)
        if not path.is_dir():
            out[path] = True
            continue
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                f = Path(folder) / name
                if (fnmatch.fnmatch(name, glob) if glob else is_candidate(f)) and f not in out:
                    out[f] = False
                    if len(out) > MAX_FILES:
                        raise InputError(f"{p}: more than {MAX_FILES:,} files; narrow it with --glob")
    return out


def _gpu(name: str | None) -> str | None:
    if name is None:
        return None
    from planner.spec import catalog

    return catalog.load_hardware(name).id if not name.endswith((".yaml", ".yml")) else name


def _slo_file(path: str) -> dict:
    from planner.spec.catalog import MAX_SPEC_FILE_BYTES, parse_yaml
    from planner.spec.safeio import read_text
    from planner.errors import SpecFileError

    data = parse_yaml(path, read_text(path, MAX_SPEC_FILE_BYTES))
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SpecFileError(path, "expected a mapping: deployment name (or 'default') -> objectives")
    return {str(k): v for k, v in data.items()}


def _json(result) -> dict:
    data = result.model_dump(mode="json")
    for d, r in zip(data["deployments"], result.deployments):
        d["failures"] = [c.message for c in r.failures]
    return data


def text(result, found=None) -> str:
    from planner.check.explain import found_lines
    from planner.check.report import printable

    lines = []
    for i, d in enumerate(result.deployments):
        e = d.plan
        lines.append(f"{'PASS' if d.passed else 'FAIL'}  {printable(d.name, 200)}: {e.model} {e.quant} on "
                     f"{e.num_gpus} x {e.gpu} with {e.engine}, ctx {e.ctx:,} x {e.batch}")
        for c in d.failures:
            lines.append(f"      {c.message}")
        if found and i < len(found):
            lines += found_lines(found[i])[1:]
    failed = sum(not d.passed for d in result.deployments)
    lines.append(f"{len(result.deployments) - failed} passed, {failed} failed ({printable(result.file)})")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    app.command("check")(guarded(check_command))
