"""`planner validate`: the shipped measurements, the report's shape, its error targets and bad CSVs.

Issue 3, item 8. The shipped data set is validation/measurements.csv; its header is the issue's column list.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from planner.spec import catalog
from planner.cli import app, run
from planner.calibrate.validate import COLUMNS, DEFAULT_DATA

ISSUE_COLUMNS = ("engine,model,quant,gpu,num_gpus,batch,prompt_tokens,gen_tokens,decode_tok_s,prefill_tok_s,"
                 "source")
HEADER = ISSUE_COLUMNS + "\n"
INT_FIELDS = ("num_gpus", "batch", "prompt_tokens", "gen_tokens")
FLOAT_FIELDS = ("decode_tok_s", "prefill_tok_s")


def shipped_rows() -> list[dict]:
    with DEFAULT_DATA.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def report() -> dict:
    """`planner validate --json` on the shipped data, run once for the module (about 2 s)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(app, ["validate", "--json"])
    assert code == 0
    return json.loads(out.getvalue())


def summary_row(report: dict, engine: str, family: str, metric: str) -> dict:
    [row] = [s for s in report["summary"]
             if (s["engine"], s["device_family"], s["metric"]) == (engine, family, metric)]
    return row


# The shipped data set -------------------------------------------------------------------------------


def test_csv_header_is_exactly_the_issue_columns():
    assert DEFAULT_DATA == Path(__file__).resolve().parent.parent / "planner" / "data" / "measurements.csv"
    assert DEFAULT_DATA.read_text(encoding="utf-8").splitlines()[0] == ISSUE_COLUMNS
    assert ",".join(COLUMNS) == ISSUE_COLUMNS


def test_every_shipped_row_resolves_and_cites_a_url():
    rows = shipped_rows()
    assert len(rows) >= 100
    models = {catalog.load_model(r["model"]).id for r in rows}  # raises UnknownNameError if not
    gpus = {catalog.load_hardware(r["gpu"]).id for r in rows}
    assert len(models) > 5 and len(gpus) > 5
    for i, r in enumerate(rows, start=2):
        url = urlparse(r["source"])
        assert url.scheme == "https" and url.netloc, f"line {i}: {r['source']!r}"
        assert r["decode_tok_s"] or r["prefill_tok_s"], f"line {i}: no measurement"


def test_shipped_data_covers_several_engines_and_device_families(report):
    engines = {r["engine"] for r in report["rows"]}
    families = {r["device_family"] for r in report["rows"]}
    assert {"llama.cpp", "vllm", "torch"} <= engines
    assert {"nvidia", "apple"} <= families


# The report -----------------------------------------------------------------------------------------


def test_json_has_a_row_per_measurement_with_inputs_and_predictions(report):
    assert set(report) >= {"rows", "summary"}
    rows = shipped_rows()
    assert len(report["rows"]) == len(rows)
    for measured, out in zip(rows, report["rows"]):
        assert set(COLUMNS) | {"predicted_decode_tok_s", "predicted_prefill_tok_s"} <= set(out)
        for field in COLUMNS:
            if field in INT_FIELDS:
                assert out[field] == int(measured[field])
            elif field in FLOAT_FIELDS:
                assert out[field] == (float(measured[field]) if measured[field] else None)
            else:
                assert out[field] == measured[field]
        # A prediction for each measured quantity, and only for those.
        assert (out["predicted_decode_tok_s"] is not None) == (out["decode_tok_s"] is not None)
        assert (out["predicted_prefill_tok_s"] is not None) == (out["prefill_tok_s"] is not None)
        if out["decode_tok_s"] is not None:
            assert out["decode_error_pct"] == pytest.approx(
                100 * (out["predicted_decode_tok_s"] / out["decode_tok_s"] - 1), rel=1e-9)


def test_summary_has_median_and_p90_per_engine_and_device_family(report):
    for s in report["summary"]:
        assert {"engine", "device_family", "metric", "n", "median_abs_pct_error", "p90_abs_pct_error"} <= set(s)
        assert s["n"] >= 1 and 0 <= s["median_abs_pct_error"] <= s["p90_abs_pct_error"]
    pairs = {(r["engine"], r["device_family"]) for r in report["rows"] if r["decode_tok_s"] is not None}
    for engine, family in pairs:
        summary_row(report, engine, family, "decode")
    assert summary_row(report, "all", "all", "decode")["n"] == sum(r["decode_tok_s"] is not None
                                                                   for r in report["rows"])


def test_shipped_data_meets_the_issue_targets(report):
    """Issue 3: median absolute error ≤ 10% for decode and ≤ 25% for prefill on its own data.

    In-sample: the default efficiencies (planner/data/efficiency.yaml) were fitted to these rows, so this
    checks the fit and guards against regressions; validation/fit_defaults.py reports the
    leave-one-model-out (held-out) error, which is the honest figure for unseen models."""
    assert summary_row(report, "all", "all", "decode")["median_abs_pct_error"] <= 10
    assert summary_row(report, "all", "all", "prefill")["median_abs_pct_error"] <= 25


def test_table_output_lists_rows_and_the_summary(cli):
    result = cli("validate", "--summary-only")
    assert result.code == 0, result.err
    assert "median |err|" in result.out and "p90 |err|" in result.out
    assert "llama.cpp" in result.out


# --data with a user's CSV ---------------------------------------------------------------------------


def write_csv(tmp_path: Path, body: str, name: str = "m.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def test_custom_small_csv(cli, tmp_path):
    # XiongjieDai/GPU-Benchmarks-on-LLM-Inference (May 2024): RTX 4090, Llama-3-8B Q4_K_M tg512 130.6, pp512 7139;
    # the second row names model and GPU by aliases.
    path = write_csv(tmp_path, HEADER
                     + "llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,130.6,,https://example.org/a\n"
                     + "llama.cpp,meta-llama/Meta-Llama-3-8B,q4_k_m,NVIDIA GeForce RTX 4090,1,1,512,0,,7139,https://example.org/b\n")
    result = cli("validate", "--data", str(path), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert [r["decode_tok_s"] for r in data["rows"]] == [130.6, None]
    assert [r["prefill_tok_s"] for r in data["rows"]] == [None, 7139.0]
    assert data["rows"][0]["predicted_decode_tok_s"] == pytest.approx(130.6, rel=0.15)
    assert data["rows"][1]["predicted_prefill_tok_s"] > 0
    assert {(s["engine"], s["metric"], s["n"]) for s in data["summary"] if s["device_family"] == "all"} == {
        ("llama.cpp", "decode", 1), ("llama.cpp", "prefill", 1), ("all", "decode", 1), ("all", "prefill", 1)}


GOOD_ROW = "llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,130.6,,https://x\n"
BAD_ROWS = {
    "bad number": ("llama.cpp,llama3-8b,q4_k_m,rtx4090,two,1,0,512,130.6,,https://x\n", "num_gpus: "),
    "negative speed": ("llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,-3,,https://x\n", "decode_tok_s: "),
    "infinite speed": ("llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,inf,,https://x\n", "decode_tok_s"),
    "extra field": ("llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,130.6,,https://x,oops\n", "more fields than columns"),
    "no measurement": ("llama.cpp,llama3-8b,q4_k_m,rtx4090,1,1,0,512,,,https://x\n",
                       "row has neither decode_tok_s nor prefill_tok_s"),
    "unknown model": ("llama.cpp,llama3-9b,q4_k_m,rtx4090,1,1,0,512,130.6,,https://x\n", "unknown model 'llama3-9b'"),
    "format the engine does not run": ("vllm,llama3-8b,q4_k_m,rtx4090,1,1,0,512,130.6,,https://x\n",
                                       "engine vllm does not run quant 'q4_k_m'"),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_rows_that_cannot_be_evaluated_are_listed_and_left_out_of_the_summary(cli, tmp_path, case):
    bad, reason = BAD_ROWS[case]
    path = write_csv(tmp_path, HEADER + GOOD_ROW + bad + GOOD_ROW)
    result = cli("validate", "--data", str(path), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert len(data["rows"]) == 2
    assert [s["line"] for s in data["skipped"]] == [3]
    assert reason in data["skipped"][0]["reason"]
    overall = next(s for s in data["summary"] if s["engine"] == "all" and s["metric"] == "decode")
    assert overall["n"] == 2
    text = cli("validate", "--data", str(path))
    assert text.code == 0 and "1 row(s) not evaluated" in text.out and "line 3: " in text.out


def test_skipped_rows_count_blank_lines(cli, tmp_path):
    path = write_csv(tmp_path, HEADER + GOOD_ROW + "\n" + BAD_ROWS["unknown model"][0])
    data = json.loads(cli("validate", "--data", str(path), "--json").out)
    assert [s["line"] for s in data["skipped"]] == [4]


def test_wrong_columns_make_the_file_unreadable(cli, tmp_path):
    path = write_csv(tmp_path, "engine,model,quant,gpu\nllama.cpp,llama3-8b,q4_k_m,rtx4090\n")
    result = cli("validate", "--data", str(path))
    assert result.code == 2
    assert result.out == ""
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith(f"error: {path}:1: columns must be exactly " + ISSUE_COLUMNS), result.err


def test_missing_file_is_an_input_error(cli, tmp_path):
    result = cli("validate", "--data", str(tmp_path / "nope.csv"))
    assert result.code == 2
    assert len(result.err_lines) == 1 and str(tmp_path / "nope.csv") in result.err
