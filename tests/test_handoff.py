"""Hand-off artefacts: vLLM flags vLLM declares, Kubernetes manifests valid against the published schemas
(kubernetes-validate ships them offline; the LeaderWorkerSet CRD schema is a cited fixture)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from planner.estimate import deployment, resolve_hardware, resolve_model
from planner.physics.quant import Engine, get_quant
from planner.physics.workload import Workload
from planner.serving import handoff
from planner.serving.engines import EngineKnobs, scheduler_for

FIXTURES = Path(__file__).parent / "fixtures"
kv = pytest.importorskip("kubernetes_validate")
K8S_VERSION = "1.30.0"


def _vllm(model="llama3.1-8b", gpu="h100-sxm", quant="bf16", kv_dtype="bf16", gpus=1, nodes=1):
    return deployment(resolve_model(model), resolve_hardware(gpu), Engine.vllm, get_quant(quant), kv_dtype,
                      Workload(ctx=4096), num_gpus=gpus, nodes=nodes, parallel="tp")


def _llama(engine=Engine.llama_cpp):
    return deployment(resolve_model("llama3.1-8b"), resolve_hardware("rtx4090"), engine, get_quant("q4_k_m"), "f16",
                      Workload(ctx=4096, batch=4))


def _documented_flags() -> set[str]:
    lines = (FIXTURES / "vllm-serve-flags.txt").read_text().splitlines()
    return {x.strip() for x in lines if x.strip() and not x.startswith("#")}


@pytest.mark.parametrize("quant,kv_dtype,gpus,nodes", [("bf16", "bf16", 1, 1), ("fp8", "fp8", 4, 1),
                                                       ("awq-int4", "bf16", 2, 1), ("bf16", "bf16", 16, 2)])
def test_emitted_vllm_flags_are_ones_vllm_declares(quant, kv_dtype, gpus, nodes):
    d = _vllm(quant=quant, kv_dtype=kv_dtype, gpus=gpus, nodes=nodes)
    sched, _ = scheduler_for(d, EngineKnobs(prefix_hit=0.5))
    args = handoff.vllm_args(d, sched, 4096, prefix_caching=True)
    flags = {a for a in args if a.startswith("--")}
    assert flags <= _documented_flags()
    assert args[0] == "meta-llama/Llama-3.1-8B"
    assert args[args.index("--tensor-parallel-size") + 1] == str(gpus // nodes)
    assert args[args.index("--pipeline-parallel-size") + 1] == str(nodes)
    assert ("--distributed-executor-backend" in args) == (nodes > 1)


def test_multi_node_commands_start_a_ray_cluster_first():
    d = _vllm("llama3.1-70b", gpus=16, nodes=2)
    sched, _ = scheduler_for(d)
    cmds = handoff.commands(d, sched, 4096, replicas=3)
    assert any(c.startswith("ray start --head") for c in cmds)
    assert any(c.startswith("ray start --address=") for c in cmds)
    assert cmds[-1].startswith("vllm serve ") and "--pipeline-parallel-size 2" in cmds[-1]


@pytest.mark.parametrize("make", [lambda: _vllm(), lambda: _vllm(quant="fp8", gpus=4), lambda: _llama(),
                                  lambda: _llama(Engine.ollama)], ids=["vllm", "vllm-tp4", "llama-server", "ollama"])
def test_single_node_manifests_validate_against_the_kubernetes_schemas(make):
    d = make()
    knobs = EngineKnobs(slots=4, slot_ctx=4096) if d.engine is not Engine.vllm else EngineKnobs()
    sched, _ = scheduler_for(d, knobs)
    docs = handoff.manifests(d, sched, 4096, replicas=3)
    assert [m["kind"] for m in docs] == ["Deployment", "Service"]
    for m in docs:
        kv.validate(m, K8S_VERSION, strict=True)
    dep = docs[0]
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 3
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == d.num_gpus
    assert pod["nodeSelector"]["nvidia.com/gpu.product"] == handoff.gpu_product_label(d)


def test_a_broken_manifest_is_caught_by_the_same_validator():
    d = _vllm()
    sched, _ = scheduler_for(d)
    dep = handoff.manifests(d, sched, 4096, replicas=1)[0]
    dep["spec"]["replicas"] = "three"
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, K8S_VERSION, strict=True)


def _lws_schema() -> dict:
    with gzip.open(FIXTURES / "lws-v1-openapi-schema.json.gz") as f:
        return json.load(f)


def test_multi_node_replicas_become_a_leaderworkerset_valid_against_its_crd():
    jsonschema = pytest.importorskip("jsonschema")
    d = _vllm("llama3.1-70b", gpus=16, nodes=2)
    sched, _ = scheduler_for(d)
    lws, svc = handoff.manifests(d, sched, 4096, replicas=2)
    assert lws["kind"] == "LeaderWorkerSet" and lws["apiVersion"] == "leaderworkerset.x-k8s.io/v1"
    # The CRD's openAPIV3Schema is a JSON-schema subset; one validator for both checks (validate() would
    # re-check the 600 kB schema itself every call).
    validator = jsonschema.Draft7Validator(_lws_schema())
    validator.validate(lws)
    kv.validate(svc, K8S_VERSION, strict=True)
    tpl = lws["spec"]["leaderWorkerTemplate"]
    assert tpl["size"] == 2
    for role in ("leaderTemplate", "workerTemplate"):
        limits = tpl[role]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == 8
    bad = json.loads(json.dumps(lws))
    bad["spec"]["leaderWorkerTemplate"]["size"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)
