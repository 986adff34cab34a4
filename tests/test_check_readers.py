"""planner check reads the configs teams already have (issue 12): command lines, Modelfiles, compose,
Kubernetes (Deployment, StatefulSet, Pod, Job, KServe, LeaderWorkerSet) and production-stack values.
Each fixture in tests/fixtures/check/ is compared with what expected.yaml says it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "check"
EXPECTED = yaml.safe_load((FIXTURES / "expected.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_is_understood_as_expected(cli, name):
    res = cli("check", "--explain", "--json", FIXTURES / name)
    assert res.code == 0, res.err
    (report,) = json.loads(res.out)
    got = report["deployments"]
    assert [d["name"] for d in got] == [e["name"] for e in EXPECTED[name]]
    for d, want in zip(got, EXPECTED[name]):
        for key, value in want.items():
            assert d[key] == value, (name, d["name"], key, d)


def test_every_fixture_kind_is_gated_with_a_default_gpu(cli):
    res = cli("check", FIXTURES, "--gpu", "h100-sxm", "--json")
    assert res.code in (0, 1), res.err
    files = json.loads(res.out)["files"]
    assert sorted(Path(f["file"]).name for f in files) == sorted(EXPECTED)
    assert sum(len(f["deployments"]) for f in files) == sum(len(v) for v in EXPECTED.values())


def test_explain_shows_the_mapping_and_no_verdict(cli):
    res = cli("check", "--explain", FIXTURES / "deployment.yaml")
    assert res.code == 0
    assert "PASS" not in res.out and "FAIL" not in res.out
    assert "llama3.1-8b" in res.out and "a100-80gb-sxm" in res.out and "max-model-len=65536" in res.out
    assert "skipped document 2 (line 33): Service chat" in res.out


@pytest.mark.parametrize("name,flag", [
    ("vllm-serve.sh", "--enable-prefix-caching"),
    ("vllm-api-server.sh", "--swap-space 8"),
    ("vllm-api-server.sh", "--cpu-offload-gb 4"),
    ("deployment.yaml", "--gpu-memory-utilization 0.95"),
    ("llama-server.sh", "-ub 1024"),
    ("llama-server.sh", "-ts 3,1"),
    ("Modelfile", "PARAMETER num_batch 256"),
    ("compose.yaml", "OLLAMA_GPU_OVERHEAD"),
])
def test_unmodelled_flags_are_warnings_by_name(cli, name, flag):
    (report,) = json.loads(cli("check", "--explain", "--json", FIXTURES / name).out)
    warnings = [w for d in report["deployments"] for w in d["warnings"]]
    assert any(w.startswith(flag) and "not modelled" in w for w in warnings), warnings


def test_flags_carry_their_lines(cli):
    (report,) = json.loads(cli("check", "--explain", "--json", FIXTURES / "vllm-serve.sh").out)
    lines = report["deployments"][0]["lines"]
    text = (FIXTURES / "vllm-serve.sh").read_text().splitlines()
    assert "--max-model-len 16384" in text[lines["ctx"] - 1]
    assert "--tensor-parallel-size 2" in text[lines["num_gpus"] - 1]


def test_examples_gate_each_deployment_and_fail_on_the_long_context(cli):
    ex = ROOT / "examples"
    res = cli("check", ex / "k8s", ex / "compose.yaml", ex / "Modelfile", "--annotations")
    assert res.code == 1, res.err
    assert res.out.count("PASS  ") == 4 and res.out.count("FAIL  ") == 1
    errors = [ln for ln in res.out.splitlines() if ln.startswith("::error ")]
    assert len(errors) == 1
    manifest = ex / "k8s" / "vllm-llama3.1-8b-l4-128k.yaml"
    line = next(i for i, t in enumerate(manifest.read_text().splitlines(), 1) if "--max-model-len=131072" in t)
    assert errors[0].startswith(f"::error file={manifest},line={line},title=planner check::")
    assert "memory: predicted" in errors[0]


def test_a_deployment_without_gpu_type_is_exit_2_with_the_reason_and_line(cli):
    path = FIXTURES / "values.yaml"
    res = cli("check", path)
    assert res.code == 2 and len(res.err_lines) == 1
    assert res.err_lines[0].startswith(f"error: {path}:20: modelSpec/gptoss: no GPU type")


def test_folder_walk_skips_files_that_hold_no_deployment(cli, tmp_path):
    (tmp_path / "svc.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n")
    (tmp_path / "notes.txt").write_text("just words\n")
    (tmp_path / "Modelfile").write_text("# planner.gpu: rtx4090\nFROM llama3.1:8b\n")
    res = cli("check", tmp_path)
    assert res.code == 0, res.err
    assert "1 passed" in res.out
    res = cli("check", tmp_path, "--glob", "*.yaml")
    assert res.code == 2 and res.err_lines == [f"error: no deployment found in {tmp_path}"]


@pytest.mark.parametrize("key,value,gpu", [
    ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-80GB", "a100-80gb-sxm"),
    ("nvidia.com/gpu.product", "NVIDIA-A100-SXM4-40GB", "a100-40gb"),
    ("nvidia.com/gpu.product", "NVIDIA-H100-80GB-HBM3", "h100-sxm"),
    ("nvidia.com/gpu.product", "NVIDIA-GeForce-RTX-4090", "rtx4090"),
    ("nvidia.com/gpu.product", "Tesla-T4", "t4"),
    ("nvidia.com/gpu.product", "NVIDIA-L4", "l4"),
    ("cloud.google.com/gke-accelerator", "nvidia-a100-80gb", "a100-80gb-sxm"),
    ("cloud.google.com/gke-accelerator", "nvidia-tesla-a100", "a100-40gb"),
    ("node.kubernetes.io/instance-type", "g5.8xlarge", "a10g"),
    ("nvidia.com/gpu.product", "Tesla-V100", None),
    ("nvidia.com/gpu.product", "NVIDIA-B9000", None),
])
def test_gpu_labels_map_to_catalog_ids(key, value, gpu):
    from planner.check.names import gpu_id

    got, note = gpu_id(key, value)
    assert got == gpu, note
    if gpu is None:
        assert value in note


@pytest.mark.parametrize("name,model,quant", [
    ("Llama-3.1-8B-Instruct-Q4_K_M.gguf", "llama3.1-8b", "q4_k_m"),
    ("models/Meta-Llama-3.1-70B-Instruct-Q5_K_M-00001-of-00002.gguf", "llama3.1-70b", "q5_k_m"),
    ("qwen2.5-7b-instruct-q8_0.gguf", "qwen2.5-7b", "q8_0"),
    ("Mistral-Nemo-12B-Q4_K_M.gguf", None, "q4_k_m"),
])
def test_gguf_file_names_map_to_catalog(name, model, quant):
    from planner.check.names import gguf_name

    got_model, got_quant, _ = gguf_name(name)
    assert (got_model, got_quant) == (model, quant)


def test_a_gguf_in_the_repository_is_read_from_its_header(cli, tmp_path):
    from test_readers_gguf import write_tiny_llama

    (tmp_path / ".git").mkdir()
    (tmp_path / "models").mkdir()
    write_tiny_llama(tmp_path / "models" / "tiny.gguf")
    script = tmp_path / "serve.sh"
    script.write_text("# planner.gpu: rtx4090\nllama-server -m models/tiny.gguf -c 512\n")
    res = cli("check", script, "--json")
    assert res.code == 0, res.err
    plan = json.loads(res.out)["deployments"][0]["plan"]
    assert plan["quant"] == "q4_k_m" and plan["ctx"] == 512


def test_action_and_pre_commit_hook_use_real_flags_and_are_documented(cli):
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    script = " ".join(str(s.get("run", "")) for s in action["runs"]["steps"] if "planner check" in str(s.get("run")))
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hooks[0]["id"] == "planner-check" and hooks[0]["entry"].startswith("planner check")
    import re

    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", script + " " + hooks[0]["entry"]))
    assert used >= {"--annotations", "--sarif", "--markdown", "--gpu", "--glob", "--skip-other"}
    help_text = cli("check", "--help").out
    for flag in used:
        assert flag in help_text, flag
    doc = (ROOT / "docs" / "check.md").read_text(encoding="utf-8")
    for name in ("action.yml", ".pre-commit-hooks.yaml", "examples/k8s/", "examples/compose.yaml",
                 "examples/Modelfile", "--explain", "--sarif", "--annotations", "--root", "--allow-outside"):
        assert name in doc, name


def test_objectives_from_a_side_file_are_gated(cli, tmp_path):
    slo = tmp_path / "slo.yaml"
    slo.write_text("default: {min_decode_tok_s: 1000}\nservice/llama: {min_decode_tok_s: 10}\n")
    res = cli("check", ROOT / "examples" / "compose.yaml", "--slo", slo)
    assert res.code == 0, res.out + res.err
    res = cli("check", ROOT / "examples" / "Modelfile", "--slo", slo)
    assert res.code == 1 and "decode_tok_s: predicted" in res.out and "required >= 1e+03 tok/s" in res.out
    slo.write_text("default: {min_decode_tok_s: fast}\n")
    res = cli("check", ROOT / "examples" / "Modelfile", "--slo", slo)
    assert res.code == 2 and len(res.err_lines) == 1 and "slo.min_decode_tok_s" in res.err_lines[0]


def test_compose_services_sharing_a_gpu_beyond_its_memory_are_warned(cli, tmp_path):
    svc = ("    image: vllm/vllm-openai:v0.6.6\n    environment:\n      CUDA_VISIBLE_DEVICES: \"0\"\n"
           "    command: [\"--model\", \"meta-llama/Llama-3.1-8B-Instruct\", \"--gpu-memory-utilization\", \"{u}\"]\n")
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  a:\n" + svc.format(u=0.5) + "  b:\n" + svc.format(u=0.85)
                    + "    profiles: [pd]\n  c:\n" + svc.format(u=0.4) + "    profiles: [other]\n")
    (report,) = json.loads(cli("check", "--explain", "--json", path).out)
    shared = {d["name"]: [w for w in d["warnings"] if w.startswith("shares GPU 0")] for d in report["deployments"]}
    assert len(shared["service/a"]) == 1 and "service/b" in shared["service/a"][0] and "1.35" in shared["service/a"][0]
    assert len(shared["service/b"]) == 1 and shared["service/c"] == []  # a + c = 0.9 fits; b and c never run together
