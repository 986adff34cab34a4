"""Plain-text and JSON views of what `planner check` understood of each deployment (``--explain`` and the
lines under each verdict). Everything read from a file is printed through ``printable``: one line, no
control characters."""

from __future__ import annotations

from planner.check.found import Found
from planner.check.report import printable


def found_summary(f: Found) -> str:
    model = f.model_ref or "?"
    if f.model and f.model != f.model_ref:
        model = f"{f.model} -> {model}"
    gpus = f"{f.tp} x {f.pp}" if f.engine == "vllm" and f.pp > 1 else str(f.tp if f.engine == "vllm" else f.num_gpus)
    parts = [f"engine {f.engine or '?'}", f"model {model}", f"quant {f.quant or '?'}",
             f"gpu {f.gpu or '?'} x {gpus}", f"ctx {f.settings.get('ctx', f.ctx if f.ctx is not None else 'default')}"]
    if f.concurrency:
        parts.append(f"concurrency {f.concurrency}")
    if f.kv_dtype:
        parts.append(f"kv {f.kv_dtype}")
    if f.replicas > 1:
        parts.append(f"{f.replicas} replicas (each checked as one)")
    return printable(", ".join(parts), 1000)


def found_lines(f: Found, indent: str = "      ") -> list[str]:
    out = [indent + found_summary(f)]
    settings = {k: v for k, v in f.settings.items() if k != "ctx"}
    if settings:
        out.append(indent + "read: " + printable(", ".join(f"{k}={v}" for k, v in settings.items()), 1500))
    out += [indent + "note: " + printable(n, 300) for n in f.notes]
    out += [indent + "warning: " + printable(w, 300) for w in f.warnings]
    if f.problems:
        out.append(indent + "cannot evaluate: " + printable("; ".join(f.problems), 600))
    return out


def explain_text(report) -> str:
    lines = [f"{printable(report.path)}: {report.kind}, {len(report.found)} deployment(s)"]
    for f in report.found:
        where = f"line {f.line}" if f.line else "entry"
        lines.append(f"  {printable(f.name, 200)} ({f.kind}, {where}): "
                     f"{'understood' if not f.problems else 'NOT evaluable'}")
        lines += found_lines(f, "      ")
    lines += [f"  skipped {printable(s, 300)}" for s in report.skipped]
    return "\n".join(lines)


def explain_json(report) -> dict:
    return {
        "file": report.path,
        "kind": report.kind,
        "deployments": [{
            "name": f.name, "kind": f.kind, "line": f.line, "engine": f.engine, "model": f.model,
            "model_id": f.model_ref, "quant": f.quant, "gpu": f.gpu, "num_gpus": f.tp * f.pp if f.engine == "vllm"
            else f.num_gpus, "tensor_parallel": f.tp, "pipeline_parallel": f.pp, "ctx": f.ctx,
            "concurrency": f.concurrency, "kv_dtype": f.kv_dtype, "replicas": f.replicas, "settings": f.settings,
            "lines": f.lines, "notes": f.notes, "warnings": f.warnings, "problems": f.problems,
            "understood": not f.problems,
        } for f in report.found],
        "skipped": report.skipped,
    }
