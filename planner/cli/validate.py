"""`planner validate`: predictions against published measurements."""

from __future__ import annotations

import typer

from planner.cli.base import guarded


def validate_command(
    data: str | None = typer.Option(None, "--data", help="measurements CSV (default: validation/measurements.csv)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    rows: bool = typer.Option(True, "--rows/--summary-only", help="print every row, or only the summary"),
) -> None:
    """Compare predicted decode and prefill speed with measured ones; median and p90 absolute % error."""
    from planner.views.text import json_text

    from planner.views import text as render
    from planner.calibrate.validate import DEFAULT_DATA, validate

    report = validate(data or DEFAULT_DATA)
    if as_json:
        print(json_text({"rows": [r.model_dump(mode="json") for r in report.rows],
                          "summary": [s.model_dump(mode="json") for s in report.summary],
                          "skipped": [s.model_dump(mode="json") for s in report.skipped]}))
        return
    if rows:
        print(render.table(
            [[r.engine, r.model, r.quant, f"{r.num_gpus}x{r.gpu}" if r.num_gpus > 1 else r.gpu, r.batch,
              r.prompt_tokens, r.gen_tokens, render.num(r.decode_tok_s), render.num(r.predicted_decode_tok_s),
              _pct(r.decode_error_pct), render.num(r.prefill_tok_s), render.num(r.predicted_prefill_tok_s),
              _pct(r.prefill_error_pct)] for r in report.rows],
            ["engine", "model", "quant", "gpu", "batch", "P", "N", "decode", "predicted", "err",
             "prefill", "predicted", "err"]))
        print()
    print(render.table(
        [[s.engine, s.device_family, s.metric, s.n, f"{s.median_abs_pct_error:.1f}%",
          f"{s.p90_abs_pct_error:.1f}%", f"{s.median_signed_pct_error:+.1f}%"] for s in report.summary],
        ["engine", "devices", "metric", "rows", "median |err|", "p90 |err|", "median err"]))
    if report.skipped:
        print(f"\n{len(report.skipped)} row(s) not evaluated (left out of the summary):")
        for s in report.skipped:
            print(f"  line {s.line}: {s.reason}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.0f}%"


def register(app: typer.Typer) -> None:
    app.command("validate")(guarded(validate_command))
