"""Property tests: no reader of planner check crashes on arbitrary YAML, argument lists, shell text or
Modelfiles. Every outcome is a result or an InputError (exit 2 with one line), never another exception."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.check.argv import Word, options, shell_commands
from planner.check.flags import LLAMA_VALUE_FLAGS, VLLM_VALUE_FLAGS, apply_llama, apply_vllm
from planner.check.found import Found
from planner.errors import InputError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])
FEW = settings(SETTINGS, max_examples=25)

KEYS = ["apiVersion", "kind", "metadata", "name", "annotations", "spec", "template", "containers", "image", "command",
        "args", "env", "value", "resources", "limits", "nvidia.com/gpu", "nodeSelector", "nvidia.com/gpu.product",
        "replicas", "predictor", "model", "modelFormat", "storageUri", "workerSpec", "leaderWorkerTemplate", "size",
        "leaderTemplate", "services", "environment", "deploy", "reservations", "devices", "count", "labels",
        "servingEngineSpec", "modelSpec", "modelURL", "requestGPU", "vllmConfig", "maxModelLen", "extraArgs",
        "planner.gpu", "planner.slo", "affinity", "lifecycle", "deployments", "ctx", "gpu", "quant"]
KINDS = ["Deployment", "StatefulSet", "Pod", "Job", "CronJob", "InferenceService", "LeaderWorkerSet", "Model",
         "Service"]
WORDS = sorted(VLLM_VALUE_FLAGS | LLAMA_VALUE_FLAGS) + [
    "vllm", "serve", "llama-server", "ollama", "sh", "-c", "python3", "-m", "vllm.entrypoints.openai.api_server",
    "meta-llama/Llama-3.1-8B-Instruct", "Llama-3.1-8B-Instruct-Q4_K_M.gguf", "0", "-1", "1e309", "nan", "32k", "99",
    "NVIDIA-L4", "l4", "rtx4090", "fp8", "q8_0", "$(X)", "${Y:-8}", "'", '"', "\\", ";", "&&", "|", "#", "=",
    "--max-model-len=", "--fim-qwen-7b-default", "99999999999999999999", "--tensor-parallel-size=0", "-fa"]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.sampled_from(WORDS + KINDS), st.text(max_size=30))
text_or_word = st.one_of(st.sampled_from(WORDS), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=6)),
    max_leaves=40)
documents = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=8)
                     .map(lambda d: {**d, "kind": d.get("kind", "Deployment"), "apiVersion": "v1"}), min_size=1,
                     max_size=3)


def _gate(path: Path) -> None:
    from planner.check.gate import Options, check_path, explain_path

    for run in (lambda: explain_path(path, Options()), lambda: check_path(path, Options(gpu="l4"))):
        try:
            run()
        except InputError:
            pass


@FEW
@given(docs=documents)
def test_arbitrary_kubernetes_like_yaml_never_crashes(tmp_path, docs):
    path = tmp_path / "k.yaml"
    path.write_text(yaml.safe_dump_all(docs), encoding="utf-8")
    _gate(path)


@FEW
@given(data=st.dictionaries(st.sampled_from(["services", "servingEngineSpec", "deployments"]), values, min_size=1))
def test_arbitrary_compose_helm_and_planner_yaml_never_crashes(tmp_path, data):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    _gate(path)


@SETTINGS
@given(text=st.text(max_size=400))
def test_arbitrary_text_as_yaml_never_crashes(tmp_path, text):
    path = tmp_path / "t.yaml"
    try:
        path.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        return
    _gate(path)


containers = st.fixed_dictionaries({
    "name": st.just("c"), "image": st.sampled_from(["vllm/vllm-openai", "ollama/ollama", "llama.cpp:server", "x"]),
    "command": st.one_of(st.lists(text_or_word, max_size=6), text_or_word),
    "args": st.one_of(st.lists(text_or_word, max_size=12), st.lists(text_or_word, max_size=12).map(" ".join)),
    "env": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["MODEL_ID", "X", "OLLAMA_NUM_PARALLEL",
                                                                    "LLAMA_ARG_CTX_SIZE", "CUDA_VISIBLE_DEVICES"]),
                                           "value": text_or_word}), max_size=4),
    "resources": st.fixed_dictionaries({"limits": st.fixed_dictionaries({"nvidia.com/gpu": scalars})}),
})


@FEW
@given(c=containers, selector=scalars, kind=st.sampled_from(["Deployment", "Pod", "StatefulSet", "Job"]))
def test_arbitrary_containers_never_crash(tmp_path, c, selector, kind):
    pod = {"nodeSelector": {"nvidia.com/gpu.product": selector}, "containers": [c]}
    doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "x"},
           "spec": pod if kind == "Pod" else {"template": {"spec": pod}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    _gate(path)


@SETTINGS
@given(words=st.lists(text_or_word, max_size=30))
def test_arbitrary_argument_lists_never_crash(words):
    ws = [Word(w, i + 1) for i, w in enumerate(words)]
    for apply in (apply_vllm, apply_llama):
        f = Found(file="x", line=1, name="x", kind="test")
        apply(f, ws)
        assert f.num_gpus >= 1 and (f.ctx is None or 0 <= f.ctx <= 100_000_000)
    assert all(isinstance(o[0], str) for o in options(ws, VLLM_VALUE_FLAGS))


@SETTINGS
@given(lines=st.lists(st.lists(text_or_word, max_size=10).map(" ".join), max_size=8))
def test_arbitrary_shell_text_never_crashes(tmp_path, lines):
    text = "\n".join(lines)
    shell_commands(text, 1, {"X": "1"})
    path = tmp_path / "cmd.sh"
    try:
        path.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        return
    _gate(path)


@SETTINGS
@given(body=st.lists(st.one_of(
    st.sampled_from(["FROM llama3.1:8b", "FROM ./x.gguf", "FROM hf.co/a/b-GGUF:Q4_K_M", "FROM /abs/x.gguf",
                     'SYSTEM """', '"""', "PARAMETER num_ctx", "PARAMETER num_gpu -1", "# planner.gpu: rtx4090"]),
    st.tuples(st.sampled_from(["FROM", "PARAMETER num_ctx", "PARAMETER num_predict", "parameter num_batch"]),
              text_or_word).map(" ".join)), max_size=8))
def test_arbitrary_modelfiles_never_crash(tmp_path, body):
    path = tmp_path / "Modelfile"
    try:
        path.write_text("\n".join(body), encoding="utf-8")
    except UnicodeEncodeError:
        return
    _gate(path)
