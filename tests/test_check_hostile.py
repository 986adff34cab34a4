"""Hostile files for planner check (issues 12 and 14): each gives exit 2 with one line, within a second,
in bounded memory; a path in a deployment file cannot leave the repository, and the error does not say
whether the file outside exists."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ALIAS_BOMB = """apiVersion: apps/v1
kind: Deployment
metadata: {name: bomb}
x0: &x0 [a, a, a, a, a, a, a, a, a, a]
x1: &x1 [*x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0]
x2: &x2 [*x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1]
x3: &x3 [*x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2]
x4: &x4 [*x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3]
x5: &x5 [*x4, *x4, *x4, *x4, *x4, *x4, *x4, *x4, *x4, *x4]
x6: &x6 [*x5, *x5, *x5, *x5, *x5, *x5, *x5, *x5, *x5, *x5]
x7: &x7 [*x6, *x6, *x6, *x6, *x6, *x6, *x6, *x6, *x6, *x6]
x8: &x8 [*x7, *x7, *x7, *x7, *x7, *x7, *x7, *x7, *x7, *x7]
"""

MERGE_BOMB = "services:\n" + "".join(
    f"  s{i}: &s{i}\n    image: vllm/vllm-openai\n" + (f"    <<: [*s{i - 1}, *s{i - 1}]\n" if i else "")
    + (f"    x{i}: [{', '.join(['*s' + str(i - 1)] * 8)}]\n" if i else "") for i in range(12))

HOSTILE = {
    "alias-bomb.yaml": (ALIAS_BOMB, "YAML expands to more than 100,000 values"),
    "merge-bomb.yaml": (MERGE_BOMB, "YAML expands to more than 100,000 values"),
    "recursive.yaml": ("kind: Pod\napiVersion: v1\nspec: &a {containers: [*a]}\n", "YAML"),
    "documents.yaml": ("---\nkind: ConfigMap\napiVersion: v1\n" * 10_000, "more than 1,000 YAML documents"),
    "deep-flow.yaml": ("kind: Pod\napiVersion: v1\nspec: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper than 64"),
    "deep-block.yaml": ("kind: Pod\napiVersion: v1\n" + "".join("  " * i + f"k{i}:\n" for i in range(200)),
                        "nesting deeper than 64"),
    "deep-args.yaml": ("kind: Pod\napiVersion: v1\nspec:\n  containers:\n  - args: " + "[" * 70 + "]" * 70 + "\n",
                       "nesting deeper than 64"),
}


def _run_timed(cli, *args):
    start = time.perf_counter()
    res = cli(*args)
    return res, time.perf_counter() - start


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_yaml_exit_2_one_line_within_a_second(cli, tmp_path, name):
    text, fragment = HOSTILE[name]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    res, seconds = _run_timed(cli, "check", path)
    assert res.code == 2 and res.out == "" and len(res.err_lines) == 1, res.err
    assert res.err_lines[0].startswith(f"error: {path}") and fragment in res.err_lines[0]
    assert "Traceback" not in res.err
    assert seconds < 1.0, seconds


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_hostile_files_stay_in_bounded_memory(tmp_path):
    """The worst two, in a fresh process each: its peak resident memory (VmHWM, which starts afresh at exec,
    unlike getrusage's maxrss that a forked child inherits from the test runner) stays far below what
    expanding the file would need."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    child = ("from planner.cli import main\ntry:\n    main()\nfinally:\n"
             "    print(next(ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')).split()[1])\n")
    for name in ("alias-bomb.yaml", "documents.yaml"):
        path = tmp_path / name
        path.write_text(HOSTILE[name][0], encoding="utf-8")
        proc = subprocess.run([sys.executable, "-c", child, "check", str(path)],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        peak_kib = int(proc.stdout.strip().splitlines()[-1])
        assert peak_kib < 300 * 1024, (name, peak_kib)


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    return repo


def test_model_path_escaping_the_repository_is_refused_without_revealing_existence(cli, tmp_path):
    repo = _repo(tmp_path)
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "real.gguf").write_bytes(b"GGUF")
    messages = []
    for target in ("../secret/real.gguf", "../secret/missing.gguf"):
        script = repo / "serve.sh"
        script.write_text(f"# planner.gpu: rtx4090\nllama-server -m {target} -c 4096\n")
        res, seconds = _run_timed(cli, "check", script)
        assert res.code == 2 and len(res.err_lines) == 1 and seconds < 1.0
        messages.append(res.err_lines[0].replace(target, "TARGET"))
        assert "outside the repository root" in res.err_lines[0]
    assert messages[0] == messages[1]


@pytest.mark.parametrize("model", ["/etc/hostname.gguf", "/nonexistent/x.gguf", "../../../x.gguf",
                                   "sub/../../x.yaml"])
def test_planner_file_paths_are_confined_to_the_root(cli, tmp_path, model):
    repo = _repo(tmp_path)
    deploy = repo / "deploy.yaml"
    deploy.write_text(f"deployments:\n  - name: a\n    model: {model}\n    gpu: rtx4090\n    quant: q4_k_m\n")
    res = cli("check", deploy)
    assert res.code == 2 and len(res.err_lines) == 1
    assert res.err_lines[0] == (f"error: {deploy}:2: deployments.0 (a): model path '{model}' is outside the "
                                f"repository root {repo.resolve()} (pass --root or --allow-outside to read it)")


def test_allow_outside_and_root_widen_the_boundary(cli, tmp_path):
    repo = _repo(tmp_path)
    from test_check import _gpu_file

    _gpu_file(tmp_path)  # tmp_path/my-gpu.yaml, outside the repository
    deploy = repo / "deploy.yaml"
    deploy.write_text("deployments:\n  - name: a\n    model: llama3.1-8b\n    gpu: ../my-gpu.yaml\n    quant: q4_k_m\n")
    assert cli("check", deploy).code == 2
    assert cli("check", deploy, "--allow-outside").code == 0
    assert cli("check", deploy, "--root", tmp_path).code == 0


def test_symlink_to_dev_zero_as_the_file_and_as_the_model(cli, tmp_path):
    repo = _repo(tmp_path)
    link = repo / "deploy.yaml"
    link.symlink_to("/dev/zero")
    res, seconds = _run_timed(cli, "check", link)
    assert res.code == 2 and res.err_lines == [f"error: {link}: cannot read file: not a regular file"]
    assert seconds < 1.0
    (repo / "models").mkdir()
    (repo / "models" / "zero.gguf").symlink_to("/dev/zero")
    script = repo / "serve.sh"
    script.write_text("# planner.gpu: rtx4090\nllama-server -m models/zero.gguf\n")
    res, seconds = _run_timed(cli, "check", script)
    assert res.code == 2 and len(res.err_lines) == 1 and "outside the repository root" in res.err_lines[0]
    assert seconds < 1.0
    res = cli("check", script, "--allow-outside")
    assert res.code == 2 and len(res.err_lines) == 1 and "Traceback" not in res.err


def test_symlink_to_dev_zero_inside_a_walked_folder(cli, tmp_path):
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    res, seconds = _run_timed(cli, "check", tmp_path)
    assert res.code == 2 and res.err_lines == [f"error: {tmp_path / 'zero.yaml'}: cannot read file: not a regular file"]
    assert seconds < 1.0


@pytest.mark.parametrize("text,fragment", [
    ("\x00\x01binary", "not a text file"),
    ("\udcff".encode("utf-8", "surrogatepass").decode("latin-1"), ""),
    ("kind: Pod\napiVersion: v1\nspec: {containers: [{args: [--max-model-len, 99999999999999999999]}]}\n", ""),
])
def test_odd_bytes_never_traceback(cli, tmp_path, text, fragment):
    path = tmp_path / "x.yaml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    res = cli("check", path)
    assert res.code == 2 and len(res.err_lines) == 1 and "Traceback" not in res.err
    assert fragment in res.err
