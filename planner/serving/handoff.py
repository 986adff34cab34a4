"""Hand-off to the real engines: launch commands per replica and Kubernetes manifests.

vLLM: ``vllm serve`` with the layout's parallel sizes and the scheduler limits the simulation used;
a replica spanning nodes (pipeline parallel) runs on a Ray cluster (vLLM docs, "Distributed inference
and serving": ``ray start --head`` on one node, ``ray start --address`` on the others, then
``vllm serve ... --distributed-executor-backend ray`` on the head). Kubernetes: a Deployment and a
Service per replica group with ``nvidia.com/gpu`` limits and a node selector on the GPU product label of
NVIDIA GPU feature discovery; a LeaderWorkerSet (kubernetes-sigs/lws) for multi-node replicas, one pod
per node, as in vLLM's LWS deployment guide.
"""

from __future__ import annotations

import re

from planner.physics.quant import Engine
from planner.physics.workload import Deployment
from planner.serving.replica import Scheduler

VLLM_IMAGE = "vllm/vllm-openai:latest"
LLAMA_SERVER_IMAGE = "ghcr.io/ggml-org/llama.cpp:server-cuda"
OLLAMA_IMAGE = "ollama/ollama:latest"
PORT = {"vllm": 8000, "llama.cpp": 8080, "ollama": 11434}
RAY_PORT = 6379
_VLLM_QUANT_FLAG = {"fp8": "fp8", "awq-int4": "awq", "gptq-int4": "gptq", "nf4": "bitsandbytes", "int8": None}


def hf_repo(d: Deployment) -> str:
    """The Hugging Face repository of the model: its first alias of the form owner/name."""
    for a in d.model.aliases:
        if "/" in a:
            return a
    return d.model.id


def vllm_args(d: Deployment, sched: Scheduler, ctx: int, prefix_caching: bool = False) -> list[str]:
    args = [hf_repo(d), "--tensor-parallel-size", str(d.tp), "--pipeline-parallel-size", str(d.pp),
            "--max-model-len", str(ctx), "--max-num-seqs", str(sched.max_seqs),
            "--max-num-batched-tokens", str(sched.max_tokens), "--gpu-memory-utilization", "0.9",
            "--enable-chunked-prefill"]
    q = _VLLM_QUANT_FLAG.get(d.quant.id)
    if q:
        args += ["--quantization", q]
    if d.kv_dtype.id == "fp8":
        args += ["--kv-cache-dtype", "fp8"]
    elif d.quant.id in ("bf16",):
        args += ["--dtype", "bfloat16"]
    if prefix_caching:
        args += ["--enable-prefix-caching"]
    if d.nodes > 1:
        args += ["--distributed-executor-backend", "ray"]
    return args + ["--port", str(PORT["vllm"])]


def commands(d: Deployment, sched: Scheduler, ctx: int, replicas: int, prefix_caching: bool = False) -> list[str]:
    """Shell commands that start one replica (run them once per replica, on its own GPUs)."""
    if d.engine is Engine.vllm:
        serve = "vllm serve " + " ".join(vllm_args(d, sched, ctx, prefix_caching))
        if d.nodes == 1:
            return [f"# each of {replicas} replica(s), on {d.num_gpus} GPU(s) of one node:", serve]
        return [f"# each of {replicas} replica(s) spans {d.nodes} nodes of {d.gpus_per_node} GPUs (Ray cluster):",
                f"ray start --head --port={RAY_PORT}  # on the head node",
                f"ray start --address=HEAD_NODE_IP:{RAY_PORT}  # on each of the other {d.nodes - 1} node(s)",
                f"{serve}  # on the head node"]
    if d.engine is Engine.ollama:
        return [f"# each of {replicas} replica(s):",
                f"OLLAMA_NUM_PARALLEL={sched.max_seqs} OLLAMA_CONTEXT_LENGTH={ctx} ollama serve"]
    c = (sched.max_seq_tokens or ctx) * sched.max_seqs
    split = " -sm layer" if d.num_gpus > 1 else ""
    return [f"# each of {replicas} replica(s):",
            f"llama-server -m MODEL.gguf -c {c} -np {sched.max_seqs} -ngl 999{split} --port {PORT['llama.cpp']}"]


def gpu_product_label(d: Deployment) -> str:
    """The value of nvidia.com/gpu.product that GPU feature discovery sets: the product name with spaces
    as dashes (e.g. NVIDIA-H100-80GB-HBM3)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", d.hardware.name).strip("-")[:63]


def _name(d: Deployment) -> str:
    raw = f"{d.model.id}-{d.hardware.id}-{d.quant.id}"
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-")[:52]


def _container(d: Deployment, sched: Scheduler, ctx: int, prefix_caching: bool, leader: bool = True) -> dict:
    engine = d.engine.value
    limits = {"nvidia.com/gpu": d.gpus_per_node}
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if d.engine is Engine.vllm:
        if d.nodes > 1:
            serve = "vllm serve " + " ".join(vllm_args(d, sched, ctx, prefix_caching))
            script = (f"ray start --head --port={RAY_PORT} && {serve}" if leader else
                      f"ray start --address=$(LWS_LEADER_ADDRESS):{RAY_PORT} --block")
            return {"name": "vllm-leader" if leader else "vllm-worker", "image": VLLM_IMAGE,
                    "command": ["sh", "-c", script], "resources": {"limits": limits},
                    "ports": [{"containerPort": PORT["vllm"]}] if leader else [], "volumeMounts": mounts}
        return {"name": "vllm", "image": VLLM_IMAGE, "command": ["vllm", "serve"],
                "args": vllm_args(d, sched, ctx, prefix_caching), "ports": [{"containerPort": PORT["vllm"]}],
                "resources": {"limits": limits}, "volumeMounts": mounts}
    if d.engine is Engine.ollama:
        return {"name": "ollama", "image": OLLAMA_IMAGE,
                "env": [{"name": "OLLAMA_NUM_PARALLEL", "value": str(sched.max_seqs)},
                        {"name": "OLLAMA_CONTEXT_LENGTH", "value": str(ctx)}],
                "ports": [{"containerPort": PORT["ollama"]}], "resources": {"limits": limits}, "volumeMounts": mounts}
    c = (sched.max_seq_tokens or ctx) * sched.max_seqs
    return {"name": "llama-server", "image": LLAMA_SERVER_IMAGE,
            "args": ["-m", "/models/model.gguf", "-c", str(c), "-np", str(sched.max_seqs), "-ngl", "999",
                     "--host", "0.0.0.0", "--port", str(PORT[engine])],
            "ports": [{"containerPort": PORT[engine]}], "resources": {"limits": limits}, "volumeMounts": mounts}


def _pod_spec(d: Deployment, container: dict) -> dict:
    return {"nodeSelector": {"nvidia.com/gpu.product": gpu_product_label(d)}, "containers": [container],
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]}


def manifests(d: Deployment, sched: Scheduler, ctx: int, replicas: int, prefix_caching: bool = False) -> list[dict]:
    """Kubernetes objects for the fleet: Deployment + Service, or LeaderWorkerSet + Service."""
    name = _name(d)
    labels = {"app": name}
    port = PORT[d.engine.value]
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": labels},
               "spec": {"selector": labels, "ports": [{"name": "http", "port": port, "targetPort": port,
                                                       "protocol": "TCP"}]}}
    if d.nodes == 1:
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": _pod_spec(d, _container(d, sched, ctx, prefix_caching))}}}
        return [deployment, service]
    leader = {"metadata": {"labels": {**labels, "role": "leader"}},
              "spec": _pod_spec(d, _container(d, sched, ctx, prefix_caching, leader=True))}
    worker = {"metadata": {"labels": labels},
              "spec": _pod_spec(d, _container(d, sched, ctx, prefix_caching, leader=False))}
    lws = {"apiVersion": "leaderworkerset.x-k8s.io/v1", "kind": "LeaderWorkerSet",
           "metadata": {"name": name, "labels": labels},
           "spec": {"replicas": replicas, "leaderWorkerTemplate": {
               "size": d.nodes, "restartPolicy": "RecreateGroupOnPodRestart",
               "leaderTemplate": leader, "workerTemplate": worker}}}
    service["spec"]["selector"] = {**labels, "role": "leader"}
    return [lws, service]
