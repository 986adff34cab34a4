"""What planner check writes for other tools (issues 12 and 14): SARIF 2.1.0 valid against the OASIS schema,
GitHub annotations at the line of the offending flag, JUnit that stays well-formed, markdown that cannot be
forged from a name; and the gate's cost and its context check."""

from __future__ import annotations

import hashlib
import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"

MANIFEST = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: chat
spec:
  template:
    spec:
      nodeSelector:
        nvidia.com/gpu.product: NVIDIA-L4
      containers:
        - name: vllm
          image: vllm/vllm-openai:v0.8.5
          args:
            - --model=meta-llama/Llama-3.1-8B-Instruct
            - --max-model-len=8192
          resources:
            limits:
              nvidia.com/gpu: 1
"""
FLAG_LINE = 15  # the --max-model-len line above


def _validate_sarif(data: dict) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(data)


def test_schema_fixture_is_the_published_file():
    digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()
    assert digest == "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
    assert "c3b4bb2d" in (SCHEMA.parent / "SOURCE.md").read_text(encoding="utf-8")


def test_a_raised_max_model_len_is_reported_at_its_line_in_annotations_and_sarif(cli, tmp_path):
    path = tmp_path / "chat.yaml"
    path.write_text(MANIFEST, encoding="utf-8")
    sarif = tmp_path / "out.sarif"
    res = cli("check", path, "--annotations", "--sarif", sarif)
    assert res.code == 0, res.err
    assert "::error" not in res.out
    _validate_sarif(json.loads(sarif.read_text()))
    assert json.loads(sarif.read_text())["runs"][0]["results"] == []

    path.write_text(MANIFEST.replace("--max-model-len=8192", "--max-model-len=131072"), encoding="utf-8")
    assert "--max-model-len=131072" in path.read_text().splitlines()[FLAG_LINE - 1]
    res = cli("check", path, "--annotations", "--sarif", sarif)
    assert res.code == 1
    errors = [ln for ln in res.out.splitlines() if ln.startswith("::error")]
    assert errors == [errors[0]] and errors[0].startswith(f"::error file={path},line={FLAG_LINE},title=planner check::")
    assert "Deployment/chat/vllm: memory: predicted" in errors[0] and "ctx 131,072" in errors[0]
    data = json.loads(sarif.read_text())
    _validate_sarif(data)
    (result,) = data["runs"][0]["results"]
    assert result["ruleId"] == "memory" and result["level"] == "error"
    loc = result["locations"][0]["physicalLocation"]
    assert loc["region"]["startLine"] == FLAG_LINE
    assert loc["artifactLocation"]["uri"].endswith("chat.yaml")
    assert {r["id"] for r in data["runs"][0]["tool"]["driver"]["rules"]} >= {"memory", "context"}


def test_sarif_for_planner_files_is_valid_and_points_at_ctx(cli, tmp_path):
    sarif = tmp_path / "o.sarif"
    res = cli("check", ROOT / "examples" / "deploy-fail.yaml", "--sarif", sarif)
    assert res.code == 1
    data = json.loads(sarif.read_text())
    _validate_sarif(data)
    lines = {r["properties"]["deployment"]: r["locations"][0]["physicalLocation"]["region"]["startLine"]
             for r in data["runs"][0]["results"]}
    text = (ROOT / "examples" / "deploy-fail.yaml").read_text().splitlines()
    assert text[lines["chat-70b-one-card"] - 1].strip() == "ctx: 8192"


HOSTILE_NAME = "a\x01b |\n| ✅ | prod | forged <script>x</script> @octocat"


def _named(write_yaml, name: str):
    return write_yaml("d.yaml", "deployments:\n  - name: " + json.dumps(name) + "\n    model: llama3.1-70b\n"
                      "    gpu: rtx4090\n    quant: q4_k_m\n")


def test_junit_stays_well_formed_with_control_characters(cli, write_yaml, tmp_path):
    out = tmp_path / "j.xml"
    res = cli("check", _named(write_yaml, HOSTILE_NAME), "--junit-xml", out)
    assert res.code == 1
    case = ET.parse(out).getroot().find(".//testcase")
    assert case.get("name") == HOSTILE_NAME.replace("\x01", "\\x01")


def test_markdown_cannot_be_forged_by_a_name(cli, write_yaml):
    res = cli("check", _named(write_yaml, HOSTILE_NAME), "--markdown")
    assert res.code == 1
    rows = [ln for ln in res.out.splitlines() if ln.startswith("|")]
    assert len(rows) == 3  # header, rule, one deployment
    assert "<script>" not in res.out and "&lt;script&gt;" in res.out
    assert "@octocat" not in res.out and "\\| ✅ \\| prod \\| forged" in res.out
    assert "\x01" not in res.out


def test_annotations_and_text_stay_on_one_line(cli, write_yaml):
    res = cli("check", _named(write_yaml, HOSTILE_NAME), "--annotations")
    assert res.code == 1
    errors = [ln for ln in res.out.splitlines() if ln.startswith("::error")]
    assert len(errors) == 1 and "forged" in errors[0] and "\x01" not in res.out
    fail_lines = [ln for ln in res.out.splitlines() if ln.startswith("FAIL")]
    assert len(fail_lines) == 1 and "forged" in fail_lines[0]


def test_annotation_escapes_percent_and_property_separators():
    from planner.check.report import annotation

    line = annotation("error", "a,b:c.yaml", 3, "t", "50% of x\nnext")
    assert line == "::error file=a%2Cb%3Ac.yaml,line=3,title=t::50%25 of x next"


def test_a_prompt_longer_than_the_context_fails_with_the_reason(cli, write_yaml):
    path = write_yaml("d.yaml", "deployments:\n  - name: a\n    model: llama3.1-8b\n    gpu: rtx4090\n"
                      "    quant: q4_k_m\n    ctx: 4096\n    slo:\n      prompt_tokens: 8000\n")
    res = cli("check", path)
    assert res.code == 1
    assert "context: predicted 8.26e+03 tokens, required <= 4.1e+03 tokens" in res.out


def test_a_thousand_deployments_cost_well_under_three_seconds(cli, write_yaml):
    body = "".join(f"  - name: d{i}\n    model: llama3.1-8b\n    gpu: rtx4090\n    quant: q4_k_m\n    ctx: "
                   f"{4096 * (1 + i % 4)}\n" for i in range(1000))
    path = write_yaml("many.yaml", "deployments:\n" + body)
    cpu = time.process_time()
    res = cli("check", path)
    assert res.code == 0 and "1000 passed" in res.out
    assert time.process_time() - cpu < 3.0


def test_the_same_gguf_is_read_once_per_run(cli, tmp_path, monkeypatch):
    from test_readers_gguf import write_tiny_llama

    import planner.spec.readers as readers

    write_tiny_llama(tmp_path / "tiny.gguf")
    calls = []
    real = readers.read_model_file
    monkeypatch.setattr(readers, "read_model_file", lambda p: calls.append(p) or real(p))
    body = "".join(f"  - name: d{i}\n    model: tiny.gguf\n    gpu: rtx4090\n    ctx: {1024 * (1 + i % 2)}\n"
                   for i in range(50))
    path = tmp_path / "d.yaml"
    path.write_text("deployments:\n" + body, encoding="utf-8")
    res = cli("check", path, "--json")
    assert res.code == 0, res.err
    assert len(calls) == 1


@pytest.mark.parametrize("args", [("--json",), ("--markdown",), ()])
def test_several_files_in_one_run(cli, args):
    ex = ROOT / "examples"
    res = cli("check", ex / "deploy-pass.yaml", ex / "compose.yaml", *args)
    assert res.code == 0, res.err
    if args == ("--json",):
        data = json.loads(res.out)
        assert data["passed"] and [Path(f["file"]).name for f in data["files"]] == ["deploy-pass.yaml",
                                                                                   "compose.yaml"]


@pytest.mark.parametrize("field", ["model", "gpu", "quant"])
def test_error_messages_echoing_a_name_stay_on_one_line(cli, write_yaml, field):
    values = {"model": "llama3.1-8b", "gpu": "rtx4090", "quant": "q4_k_m"}
    values[field] = "bad\nname\x1b[31m"
    path = write_yaml("d.yaml", "deployments:\n  - name: \"a\\nb\"\n" + "".join(
        f"    {k}: {json.dumps(v)}\n" for k, v in values.items()))
    res = cli("check", path)
    assert res.code == 2 and len(res.err_lines) == 1 and "\x1b" not in res.err, res.err


def test_ten_thousand_deployments_cost_seconds_not_a_minute(cli, write_yaml):
    body = "".join(f"  - name: d{i}\n    model: llama3.1-8b\n    gpu: rtx4090\n    quant: q4_k_m\n"
                   for i in range(10_000))
    path = write_yaml("many.yaml", "deployments:\n" + body)
    cpu = time.process_time()
    res = cli("check", path)
    assert res.code == 0 and "10000 passed" in res.out
    assert time.process_time() - cpu < 10.0
