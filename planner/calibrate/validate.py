"""Predictions against published measurements: the validation report behind `planner validate`.

The CSV's columns are exactly ``engine,model,quant,gpu,num_gpus,batch,prompt_tokens,gen_tokens,
decode_tok_s,prefill_tok_s,source``; measured columns may be empty. A decode row (llama-bench
``tg N``) is compared with the mean decode speed over N tokens after P prompt tokens; a prefill row
(``pp P``) with the prompt throughput.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.errors import InputError, SpecFileError
from planner.spec.paths import MEASUREMENTS_FILE
from planner.spec.safeio import read_text

COLUMNS = ["engine", "model", "quant", "gpu", "num_gpus", "batch", "prompt_tokens", "gen_tokens",
           "decode_tok_s", "prefill_tok_s", "source"]
DEFAULT_DATA = MEASUREMENTS_FILE
MAX_ROWS = 10_000  # about 2 ms of CPU a row: a hostile file stays within tens of seconds
MAX_CSV_BYTES = 50_000_000


class Measurement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str = Field(max_length=50)
    model: str = Field(max_length=500)
    quant: str = Field(max_length=50)
    gpu: str = Field(max_length=500)
    num_gpus: int = Field(ge=1, le=4096)
    batch: int = Field(ge=1, le=100_000)
    prompt_tokens: int = Field(ge=0, le=10_000_000)
    gen_tokens: int = Field(ge=0, le=10_000_000)
    decode_tok_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    prefill_tok_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    source: str = Field(default="", max_length=2000)


class ValidationRow(Measurement):
    predicted_decode_tok_s: float | None = None
    predicted_prefill_tok_s: float | None = None
    decode_error_pct: float | None = None
    prefill_error_pct: float | None = None
    device_family: str = ""


class ErrorSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    engine: str
    device_family: str
    metric: str
    n: int
    median_abs_pct_error: float
    p90_abs_pct_error: float
    median_signed_pct_error: float


class SkippedRow(BaseModel):
    """A row `validate` could not evaluate: its file line, why, and its fields as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    line: int
    reason: str
    row: dict[str, str | None] = Field(default_factory=dict)


class ValidationReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: list[ValidationRow]
    summary: list[ErrorSummary]
    skipped: list[SkippedRow] = Field(default_factory=list, description="rows not evaluated, with the reason")


def read_measurements(path: Path | str) -> list[Measurement]:
    """Parse the CSV; a malformed file is one InputError naming the file and line."""
    return [m for _, m in read_measurements_with_lines(path)]


def read_measurements_with_lines(path: Path | str,
                                 skipped: list[SkippedRow] | None = None) -> list[tuple[int, Measurement]]:
    """(file line, measurement) for every row; a spreadsheet's UTF-8 byte-order mark is accepted. With a
    ``skipped`` list, a malformed row is appended there with its reason instead of failing the file."""
    path = Path(path)
    handle = io.StringIO(read_text(path, MAX_CSV_BYTES, encoding="utf-8-sig"), newline="")
    out: list[tuple[int, Measurement]] = []
    with handle:
        try:
            reader = csv.DictReader(handle)
            if reader.fieldnames != COLUMNS:
                raise SpecFileError(str(path), f"columns must be exactly {','.join(COLUMNS)}", 1)
            for row in reader:
                if len(out) + len(skipped or []) >= MAX_ROWS:
                    raise SpecFileError(str(path), f"more than {MAX_ROWS} rows")
                values = {k: (v if v != "" else None) for k, v in row.items() if k is not None}
                try:
                    out.append((reader.line_num, _measurement(path, row, values, reader.line_num)))
                except SpecFileError as exc:
                    if skipped is None:
                        raise
                    skipped.append(SkippedRow(line=reader.line_num, reason=exc.reason, row=_fields(values)))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise SpecFileError(str(path), f"malformed CSV: {exc}") from None
    return out


def _measurement(path: Path, row: dict, values: dict, line: int) -> Measurement:
    """One CSV row as a Measurement, or SpecFileError naming the line and the first problem."""
    if None in row:
        raise SpecFileError(str(path), "more fields than columns", line)
    try:
        m = Measurement.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise SpecFileError(str(path), f"{field}: {first['msg']}", line) from None
    if m.decode_tok_s is None and m.prefill_tok_s is None:
        raise SpecFileError(str(path), "row has neither decode_tok_s nor prefill_tok_s", line)
    return m


def _fields(values: dict) -> dict[str, str | None]:
    return {str(k): (None if v is None else str(v)[:200]) for k, v in values.items() if k in COLUMNS}


def predict(m: Measurement, efficiency=None) -> ValidationRow:
    from planner.spec import catalog
    from planner.physics.efficiency import device_family
    from planner.estimate import plan, resolve
    from planner.physics.workload import Workload

    hw = catalog.load_hardware(m.gpu)
    gen = max(1, m.gen_tokens)
    workload = Workload(ctx=max(1, m.prompt_tokens + gen), batch=m.batch, prompt_tokens=m.prompt_tokens,
                        gen_tokens=gen)
    parallel = "layer" if m.engine in ("llama.cpp", "ollama") or m.num_gpus == 1 else "tp"
    est = plan(resolve(m.model, m.gpu, quant=m.quant, engine=m.engine, workload=workload, num_gpus=m.num_gpus,
               parallel=parallel, efficiency=efficiency))[0]
    p = est.performance
    pred_dec = p.decode_tok_s if m.decode_tok_s is not None else None
    pred_pre = p.prefill_tok_s if m.prefill_tok_s is not None else None
    return ValidationRow(
        **m.model_dump(),
        predicted_decode_tok_s=pred_dec,
        predicted_prefill_tok_s=pred_pre,
        decode_error_pct=_pct(pred_dec, m.decode_tok_s),
        prefill_error_pct=_pct(pred_pre, m.prefill_tok_s),
        device_family=device_family(hw),
    )


def _pct(predicted: float | None, measured: float | None) -> float | None:
    if predicted is None or measured is None:
        return None
    return 100.0 * (predicted - measured) / measured


def summarize(rows: list[ValidationRow]) -> list[ErrorSummary]:
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:
        for metric, err in (("decode", r.decode_error_pct), ("prefill", r.prefill_error_pct)):
            if err is None:
                continue
            for key in ((r.engine, r.device_family, metric), (r.engine, "all", metric), ("all", "all", metric)):
                groups.setdefault(key, []).append(err)
    out = []
    for (engine, family, metric), errs in sorted(groups.items()):
        a = np.array(errs)
        out.append(ErrorSummary(
            engine=engine, device_family=family, metric=metric, n=len(errs),
            median_abs_pct_error=float(np.median(np.abs(a))),
            p90_abs_pct_error=float(np.percentile(np.abs(a), 90)),
            median_signed_pct_error=float(np.median(a)),
        ))
    return out


def validate(path: Path | str = DEFAULT_DATA, efficiency=None) -> ValidationReport:
    """Every row predicted and compared; rows that cannot be read or evaluated (an unknown model, a
    format the engine does not run, a malformed value) are listed in ``skipped`` with the reason and
    left out of the summary. Only a file that cannot be read at all raises."""
    from planner.spec import catalog

    # Index both catalogs once, so each row is a dictionary lookup rather than a spec file parse.
    catalog.models().items, catalog.hardware().items  # noqa: B018
    skipped: list[SkippedRow] = []
    rows = []
    for i, m in read_measurements_with_lines(path, skipped):
        try:
            rows.append(predict(m, efficiency))
        except InputError as exc:
            skipped.append(SkippedRow(line=i, reason=str(exc), row=_fields(m.model_dump())))
    skipped.sort(key=lambda r: r.line)
    return ValidationReport(rows=rows, summary=summarize(rows), skipped=skipped)


def observation(m: Measurement):
    """A measurement as a fitting observation (planner.calibrate.fit): the deployment and its measured times."""
    from planner.spec import catalog
    from planner.estimate import ResolvedModel, deployment, get_engine
    from planner.calibrate.fit import Observation
    from planner.physics.quant import get_quant
    from planner.physics.workload import Workload

    engine = get_engine(m.engine)
    gen = max(1, m.gen_tokens)
    wl = Workload(ctx=max(1, m.prompt_tokens + gen), batch=m.batch, prompt_tokens=m.prompt_tokens, gen_tokens=gen)
    parallel = "layer" if engine.reads_gguf or m.num_gpus == 1 else "tp"
    d = deployment(ResolvedModel(spec=catalog.load_model(m.model)), catalog.load_hardware(m.gpu), engine,
                   get_quant(m.quant), "f16", wl, m.num_gpus, 1, parallel)
    return Observation(d, decode_step_s=1.0 / m.decode_tok_s if m.decode_tok_s else None,
                       prefill_s=m.batch * m.prompt_tokens / m.prefill_tok_s if m.prefill_tok_s else None,
                       label=m.source)
