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
    # Measured: RTX 4090, Llama-3-8B F16, llama.cpp tg1024 54.34 and tg4096 52.63 tok/s (XiongjieDai
    # GPU-Benchmarks-on-LLM-Inference, planner/data/measurements.csv); this run's context 1,024-1,536 lies between.
    assert "decode_tok_s: predicted 52.7 tok/s, required >= 80 tok/s" in res.out
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


# ------------------------------------------------------------------ review findings

ONE = """deployments:
  - name: a
    model: llama3.1-8b
    gpu: rtx4090
    quant: q4_k_m
"""


@pytest.mark.parametrize("extra,line,fragment", [
    ("    ctx: true\n", 6, "deployments.0.ctx: Input should be a valid integer"),
    ("    ctx: '8192'\n", 6, "deployments.0.ctx: Input should be a valid integer"),
    ('    concurrency: "3"\n', 6, "deployments.0.concurrency: Input should be a valid integer"),
    ("    num_gpus: 1.0\n", 6, "deployments.0.num_gpus: Input should be a valid integer"),
    ("    kv_dtype: 8\n", 6, "deployments.0.kv_dtype: Input should be a valid string"),
    ("    slo:\n      min_decode_tok_s: '60'\n", 7, "deployments.0.slo.min_decode_tok_s: Input should be a valid number"),
    ("    slo:\n      gen_tokens: false\n", 7, "deployments.0.slo.gen_tokens: Input should be a valid integer"),
])
def test_wrong_types_are_rejected_not_coerced(cli, write_yaml, extra, line, fragment):
    path = write_yaml("deploy.yaml", ONE + extra)
    res = cli("check", path)
    assert res.code == 2 and res.out == ""
    assert res.err_lines == [f"error: {path}:{line}: {fragment}"]


def test_float_objectives_take_integers(cli, write_yaml):
    path = write_yaml("deploy.yaml", ONE + "    slo:\n      max_ttft_s: 2\n      max_e2e_s: 30\n")
    res = cli("check", path, "--json")
    assert res.code == 0, res.err
    checks = {c["check"]: c for c in json.loads(res.out)["deployments"][0]["checks"]}
    assert checks["ttft_s"]["required"] == 2.0 and checks["e2e_s"]["required"] == 30.0


def _gpu_file(folder: Path, name: str = "my-gpu", extra: str = "") -> Path:
    src = (EXAMPLES.parent / "hardware_profiles" / "rtx4090.yaml").read_text(encoding="utf-8")
    lines = [f"id: {name}" if ln.startswith("id:") else ln for ln in src.splitlines()
             if not ln.startswith("aliases:")]
    path = folder / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def _model_file(folder: Path) -> Path:
    src = (EXAMPLES.parent / "model_specs" / "llama3.1-8b.yaml").read_text(encoding="utf-8")
    lines = ["id: my-model" if ln.startswith("id:") else ln for ln in src.splitlines()
             if not ln.startswith("aliases:")]
    path = folder / "my-model.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_relative_model_and_gpu_files_resolve_against_the_deploy_files_folder(cli, tmp_path, monkeypatch):
    folder = tmp_path / "deploy"
    folder.mkdir()
    _gpu_file(folder)
    _model_file(folder)
    deploy = folder / "prod.yaml"
    deploy.write_text(ONE.replace("llama3.1-8b", "my-model.yaml").replace("rtx4090", "my-gpu.yaml"),
                      encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = cli("check", deploy, "--json")
    assert res.code == 0, res.err
    plan = json.loads(res.out)["deployments"][0]["plan"]
    assert (plan["model"], plan["gpu"]) == ("my-model", "my-gpu")
    monkeypatch.chdir(tmp_path)  # the same file named by a relative path: the same files are read
    res = cli("check", Path("deploy") / "prod.yaml", "--json")
    assert res.code == 0 and json.loads(res.out)["deployments"][0]["plan"]["gpu"] == "my-gpu"


def test_relative_gpu_file_missing_next_to_the_deploy_file_is_not_found_in_the_cwd(cli, tmp_path, monkeypatch):
    _gpu_file(tmp_path)  # in the working directory, not next to the deploy file
    folder = tmp_path / "deploy"
    folder.mkdir()
    deploy = folder / "prod.yaml"
    deploy.write_text(ONE.replace("rtx4090", "my-gpu.yaml"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    res = cli("check", deploy)
    assert res.code == 2 and len(res.err_lines) == 1
    assert res.err_lines[0].startswith(f"error: {deploy}:2: deployments.0 (a): {folder / 'my-gpu.yaml'}: ")
    assert "cannot read file" in res.err_lines[0]


def test_error_in_a_named_file_follows_the_deployment_line(cli, tmp_path):
    gpu = _gpu_file(tmp_path, extra="bogus: 1\n")
    bogus_line = gpu.read_text().splitlines().index("bogus: 1") + 1
    deploy = tmp_path / "d.yaml"
    deploy.write_text(GOOD.replace("gpu: rtx4090\n    quant: q4_k_m\n    slo",
                                   "gpu: my-gpu.yaml\n    quant: q4_k_m\n    slo"), encoding="utf-8")
    res = cli("check", deploy)
    assert res.code == 2
    assert res.err_lines == [f"error: {deploy}:7: deployments.1 (b): {gpu}:{bogus_line}: bogus: unknown key"]


def test_deploy_file_is_read_once_through_the_bounded_reader(cli, write_yaml, monkeypatch):
    import planner.check.deploy

    path = write_yaml("deploy.yaml", GOOD.replace("min_decode_tok_s: 60", "min_decode_tok_s: -1"))
    reads = []
    real = planner.check.deploy.read_text
    monkeypatch.setattr(planner.check.deploy, "read_text", lambda p, limit: reads.append((str(p), limit)) or real(p, limit))
    unbounded = []
    real_path_read = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: unbounded.append(str(self))
                        or real_path_read(self, *a, **k))
    res = cli("check", path)
    assert res.code == 2 and res.err_lines[0].startswith(f"error: {path}:12:")  # the line still comes back
    assert reads == [(str(path), 1_000_000)]
    assert str(path) not in unbounded


@pytest.mark.parametrize("text,fragment", [
    ("[" * 50000 + "]" * 50000, "nesting deeper than 64 levels"),
    ("deployments:\n" + "  - name: a\n    model: x\n    slo: " + "{a: " * 100 + "}" * 100 + "\n", "nesting deeper"),
    (ONE + "    quant: q8_0\n", "duplicate key 'quant'"),
    ("x" * 1_000_001, "larger than 1,000,000 bytes"),
])
def test_hostile_deploy_files_exit_2_in_one_line(cli, write_yaml, text, fragment):
    path = write_yaml("deploy.yaml", text)
    res = cli("check", path)
    assert res.code == 2 and len(res.err_lines) == 1 and "Traceback" not in res.err
    assert res.err_lines[0].startswith(f"error: {path}") and fragment in res.err_lines[0]


def test_duplicate_key_names_its_line(cli, write_yaml):
    path = write_yaml("deploy.yaml", ONE + "    quant: q8_0\n")
    assert cli("check", path).err_lines == [f"error: {path}:6:5: invalid YAML: duplicate key 'quant'"]


def test_dev_zero_and_a_fifo_exit_2_at_once(cli, tmp_path):
    import os
    import time

    targets = [Path("/dev/zero")]
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "deploy.yaml"
        os.mkfifo(fifo)
        targets.append(fifo)
    for target in targets:
        start = time.perf_counter()
        res = cli("check", target)
        assert time.perf_counter() - start < 2
        assert res.code == 2 and res.err_lines == [f"error: {target}: cannot read file: not a regular file"]


def test_json_and_markdown_together_is_an_input_error(cli):
    res = cli("check", EXAMPLES / "deploy-pass.yaml", "--json", "--markdown")
    assert res.code == 2 and res.out == ""
    assert res.err_lines == ["error: choose one of --json and --markdown"]


def test_docs_list_every_engine():
    from planner.physics.quant import Engine

    doc = (EXAMPLES.parent / "docs" / "check.md").read_text(encoding="utf-8")
    row = next(line for line in doc.splitlines() if line.startswith("| `engine`"))
    for e in Engine:
        assert f"`{e.value}`" in row
