"""planner check, the CI gate: exit codes on the examples, JUnit XML, JSON, one-line file errors (issue 5)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

GOOD = """deployments:
  - name: a
    model: llama3.1-8b
    gpu: rtx4090
    quant: q4_k_m
    ctx: 8192
  - name: b
    model: llama3.1-8b
    gpu: rtx4090
    quant: q4_k_m
    slo:
      min_decode_tok_s: 60
"""


def test_passing_example_exit_0(cli):
    res = cli("check", EXAMPLES / "deploy-pass.yaml")
    assert res.code == 0, res.out + res.err
    assert "0 failed" in res.out


def test_failing_example_exit_1_with_predicted_and_required(cli, tmp_path):
    out = tmp_path / "junit.xml"
    res = cli("check", EXAMPLES / "deploy-fail.yaml", "--junit-xml", out)
    assert res.code == 1
    assert "FAIL  chat-8b-f16" in res.out
    assert "decode_tok_s: predicted 52.8 tok/s, required >= 80 tok/s" in res.out
    assert "memory: predicted" in res.out and "PASS  chat-8b-q4" in res.out
    root = ET.parse(out).getroot()
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["chat-70b-one-card", "chat-8b-f16", "chat-8b-q4"]
    failed = [c for c in cases if c.find("failure") is not None]
    assert len(failed) == 2 == int(root.get("failures")) == int(root.find("testsuite").get("failures"))
    assert "required >= 80" in failed[1].find("failure").get("message")


def test_junit_all_pass(cli, tmp_path):
    out = tmp_path / "j.xml"
    assert cli("check", EXAMPLES / "deploy-pass.yaml", "--junit-xml", out).code == 0
    root = ET.parse(out).getroot()
    assert root.get("failures") == "0" and len(root.findall(".//testcase")) == 2


def test_json(cli, write_yaml):
    res = cli("check", write_yaml("d.yaml", GOOD.replace("min_decode_tok_s: 60", "min_decode_tok_s: 1000")),
              "--json")
    assert res.code == 1
    data = json.loads(res.out)
    a, b = data["deployments"]
    assert a["passed"] and not b["passed"] and not data["passed"]
    fail = next(c for c in b["checks"] if not c["passed"])
    assert fail["check"] == "decode_tok_s" and fail["required"] == 1000 and fail["predicted"] < 1000
    assert b["failures"] and b["plan"]["quant"] == "q4_k_m"


def test_markdown(cli):
    res = cli("check", EXAMPLES / "deploy-fail.yaml", "--markdown")
    assert res.code == 1 and res.out.startswith("### planner check: ❌ 2 failing") and "Failures:" in res.out


def test_invalid_example_exit_2(cli):
    res = cli("check", EXAMPLES / "deploy-invalid.yaml")
    assert res.code == 2
    assert res.err_lines == [f"error: {EXAMPLES / 'deploy-invalid.yaml'}:7: deployments.0.context: unknown key"]


@pytest.mark.parametrize("text,line,fragment", [
    (GOOD.replace("    ctx: 8192", "    ctx: 8192\n    batch: 2"), 7, "deployments.0.batch: unknown key"),
    (GOOD.replace("      min_decode_tok_s: 60", "      min_tok_s: 60"), 12, "deployments.1.slo.min_tok_s: unknown key"),
    (GOOD.replace("ctx: 8192", "ctx: lots"), 6, "deployments.0.ctx: Input should be a valid integer"),
    (GOOD.replace("min_decode_tok_s: 60", "min_decode_tok_s: -1"), 12, "greater than 0"),
    (GOOD + "  - name: a\n    model: llama3.1-8b\n    gpu: rtx4090\n    quant: q4_k_m\n", None, "used twice"),
    (GOOD.replace("gpu: rtx4090", "gpu: rtx4099", 1), 2, "deployments.0 (a): unknown GPU 'rtx4099'"),
    (GOOD.replace("    quant: q4_k_m\n    slo", "    quant: awq-int4\n    slo"), 7,
     "deployments.1 (b): engine llama.cpp does not run quant 'awq-int4'"),
    ("deployments:\n  - name: a\n   model: x\n", 3, "invalid YAML"),
    ("deployments: [\n", 2, "invalid YAML"),
    ("- just\n- a list\n", 1, "expected a mapping"),
    ("deployments: []\n", None, "deployments: List should have at least 1 item"),
])
def test_bad_files_one_line_exit_2(cli, write_yaml, text, line, fragment):
    path = write_yaml("deploy.yaml", text)
    res = cli("check", path)
    assert res.code == 2, res.out
    assert len(res.err_lines) == 1 and "Traceback" not in res.err
    msg = res.err_lines[0]
    assert msg.startswith(f"error: {path}:{line}:" if line else f"error: {path}")
    assert fragment in msg


def test_missing_file(cli, tmp_path):
    res = cli("check", tmp_path / "nope.yaml")
    assert res.code == 2 and len(res.err_lines) == 1 and "cannot read file" in res.err


def test_examples_and_workflow_are_documented():
    root = EXAMPLES.parent
    doc = (root / "docs" / "check.md").read_text()
    for f in ("deploy-pass.yaml", "deploy-fail.yaml", "deploy-invalid.yaml"):
        assert f in doc and (EXAMPLES / f).exists()
    import yaml

    wf = yaml.safe_load((root / "docs" / "github-actions-check.yml").read_text())
    assert "pull_request" in wf[True] if True in wf else "pull_request" in wf["on"]
    steps = " ".join(str(s) for s in wf["jobs"]["capacity"]["steps"])
    assert "pip install" in steps and "planner check" in steps and "--junit-xml" in steps
