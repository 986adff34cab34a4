"""Kubernetes manifests (Deployment, StatefulSet, ReplicaSet, DaemonSet, Pod, Job, CronJob, KServe
InferenceService, LeaderWorkerSet, KubeAI Model), docker-compose files and vLLM production-stack Helm values
-> ``Found`` deployments, one per inference container (or model spec).

Each reader takes documents from ``planner.check.yamldocs`` (lines kept) and returns the deployments it
understood plus ``skipped``: one sentence per document it does not read (a Service, a ConfigMap).
"""

from __future__ import annotations

from planner.check.argv import Word
from planner.check.containers import Where, find_pulled, gpu_from_selectors, gpu_from_terms, read_container
from planner.check.flags import apply_vllm, set_hf_model
from planner.check.found import MAX_GPUS, Found, positive_int
from planner.check.names import gpu_id
from planner.check.yamldocs import Document, Map, get

WORKLOADS = {"Deployment", "StatefulSet", "ReplicaSet", "DaemonSet", "Job", "Pod", "CronJob"}


def _meta(obj: object) -> tuple[str, dict, dict]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    name = str(meta.get("name")) if isinstance(meta, dict) and meta.get("name") is not None else "?"
    ann = meta.get("annotations") if isinstance(meta, dict) else None
    ann = ann if isinstance(ann, dict) else {}
    lines = {k: ann.line_of(k) for k in ann} if isinstance(ann, Map) else {}
    return name, dict(ann), lines


def _where(file: str, owner: object, pod_template: object, pod: object, replicas: int = 1) -> Where:
    _, ann, lines = _meta(owner)
    _, pann, plines = _meta(pod_template)
    w = Where(file=file, annotations={**pann, **ann}, annotation_lines={**plines, **lines}, replicas=replicas)
    w.gpu = gpu_from_selectors(pod)
    return w


def _containers(file: str, w: Where, pod: object, owner: str, kind: str) -> list[Found]:
    out = []
    containers = pod.get("containers") if isinstance(pod, dict) else None
    for c in containers if isinstance(containers, list) else []:
        if isinstance(c, Map):
            name = f"{owner}/{c.get('name', '?')}"
            f = read_container(w, c, name, kind)
            if f is not None:
                out.append(f)
    return out


def read_kubernetes(file: str, docs: list[Document]) -> tuple[list[Found], list[str]]:
    found: list[Found] = []
    skipped: list[str] = []
    for doc in docs:
        d = doc.data
        kind = get(d, "kind")
        if not isinstance(d, Map) or not isinstance(kind, str):
            skipped.append(f"document {doc.index + 1} (line {doc.line}): not a Kubernetes object")
            continue
        name, _, _ = _meta(d)
        before = len(found)
        if kind in WORKLOADS:
            found += _workload(file, d, kind, name, doc)
        elif kind == "InferenceService":
            found += _kserve(file, d, name, doc)
        elif kind == "LeaderWorkerSet":
            found += _lws(file, d, name, doc)
        elif kind == "Model" and str(get(d, "apiVersion", default="")).startswith("kubeai.org"):
            found += _kubeai(file, d, name)
        if len(found) == before:
            skipped.append(f"document {doc.index + 1} (line {doc.line}): {kind} {name}: no inference server in it")
    return found, skipped


def _workload(file: str, d: Map, kind: str, name: str, doc: Document) -> list[Found]:
    if kind == "Pod":
        template, pod = d, d.get("spec")
    elif kind == "CronJob":
        template = get(d, "spec", "jobTemplate", "spec", "template")
        pod = get(template, "spec")
    else:
        template = get(d, "spec", "template")
        pod = get(template, "spec")
    replicas = positive_int(get(d, "spec", "replicas", default=1), 1_000_000)
    w = _where(file, d, template, pod, 1 if replicas is None else replicas)
    w.pulled = find_pulled(doc.data)
    return _containers(file, w, pod, f"{kind}/{name}", f"Kubernetes {kind}")


def _lws(file: str, d: Map, name: str, doc: Document) -> list[Found]:
    tmpl = get(d, "spec", "leaderWorkerTemplate")
    size = positive_int(get(tmpl, "size", default=1), 10_000) or 1
    leader = get(tmpl, "leaderTemplate") or get(tmpl, "workerTemplate")
    pod = get(leader, "spec")
    w = _where(file, d, leader, pod, positive_int(get(d, "spec", "replicas", default=1), 1_000_000) or 1)
    w.pods_per_group = size
    w.pulled = find_pulled(doc.data)
    out = _containers(file, w, pod, f"LeaderWorkerSet/{name}", "LeaderWorkerSet")
    for f in out:
        f.nodes = size if f.engine == "vllm" and f.pp == size else 1
        f.note("group size", size, tmpl.line_of("size") if isinstance(tmpl, Map) else d.line)
    return out


def _kserve(file: str, d: Map, name: str, doc: Document) -> list[Found]:
    pred = get(d, "spec", "predictor")
    if not isinstance(pred, Map):
        return []
    w = _where(file, d, pred, pred)
    w.pulled = find_pulled(doc.data)
    if isinstance(pred.get("containers"), list):
        return _containers(file, w, pred, f"InferenceService/{name}", "KServe InferenceService")
    model = pred.get("model")
    if not isinstance(model, Map):
        return []
    fmt = str(get(model, "modelFormat", "name", default="")).lower()
    runtime = str(model.get("runtime") or "")
    f = Found(file=file, line=model.line, name=f"InferenceService/{name}", kind="KServe InferenceService")
    if fmt != "huggingface":
        if "nim" in fmt or "nim" in runtime.lower():
            f.fail(f"unsupported engine: NVIDIA NIM (modelFormat {fmt}) picks its own precision and profile")
            f.engine = "nim"
            _gpus_kserve(f, model, pred, w)
            from planner.check.containers import apply_where

            apply_where(f, w)
            return [f]
        return []
    f.note("modelFormat", "huggingface (KServe's vLLM backend)", model.line_of("modelFormat"))
    args = model.get("args")
    words = [Word(str(a), args.text_line(i)) for i, a in enumerate(args) if isinstance(a, (str, int, float))] \
        if isinstance(args, list) else []
    apply_vllm(f, [wd for wd in words if not wd.text.startswith("--model_name") and
                   not wd.text.startswith("--model-name")])
    uri = model.get("storageUri")
    if isinstance(uri, str) and f.model is None:
        set_hf_model(f, uri, model.line_of("storageUri"))
    elif f.model is None:
        f.fail("no model: neither storageUri nor --model")
    ws = pred.get("workerSpec")
    if isinstance(ws, Map):
        tp = positive_int(ws.get("tensorParallelSize", 1), MAX_GPUS) or 1
        pp = positive_int(ws.get("pipelineParallelSize", 1), MAX_GPUS) or 1
        f.tp, f.pp = tp, pp
        f.note("workerSpec", f"TP {tp} x PP {pp}", ws.line)
        f.lines["num_gpus"] = ws.line
        f.num_gpus = tp * pp
        f.gpu_count_known = True
    _gpus_kserve(f, model, pred, w)
    from planner.check.containers import apply_where

    apply_where(f, w)
    return [f]


def _gpus_kserve(f: Found, model: Map, pred: Map, w: Where) -> None:
    from planner.check.containers import env_of, gpu_count

    n, line = gpu_count(model.get("resources"))
    env, _ = env_of(model)
    if n is not None:
        f.gpu_count_known = True
        f.note("gpus requested", n, line)
        if n == 0:
            f.cpu_only = True
    elif not f.gpu_count_known and ("resources" in model or "VLLM_CPU_KVCACHE_SPACE" in env):
        f.cpu_only = True
    if f.engine == "nim" and n:
        f.num_gpus = n
    if "VLLM_CPU_KVCACHE_SPACE" in env:
        f.cpu_only = True


def _kubeai(file: str, d: Map, name: str) -> list[Found]:
    """KubeAI ``Model``: ``url`` (hf://org/name), ``engine``, ``args``, ``resourceProfile`` (``nvidia-gpu-l4:8``)."""
    spec = d.get("spec")
    if not isinstance(spec, Map):
        return []
    engine = str(spec.get("engine") or "").lower()
    f = Found(file=file, line=spec.line, name=f"Model/{name}", kind="KubeAI Model")
    if engine != "vllm":
        f.fail(f"unsupported engine: KubeAI engine {engine or '?'}")
        return [f]
    args = spec.get("args")
    words = [Word(str(a), args.text_line(i)) for i, a in enumerate(args) if isinstance(a, (str, int, float))] \
        if isinstance(args, list) else []
    apply_vllm(f, words)
    if isinstance(spec.get("url"), str):
        set_hf_model(f, spec["url"], spec.line_of("url"))
    profile = str(spec.get("resourceProfile") or "")
    gpu, _, count = profile.partition(":")
    line = spec.line_of("resourceProfile")
    if gpu.startswith("nvidia-gpu-"):
        gid, note = gpu_id("resourceProfile", "nvidia-" + gpu.removeprefix("nvidia-gpu-"))
        if gid is None:
            gid, note = gpu_id("resourceProfile", gpu.removeprefix("nvidia-gpu-"))
        f.lines["gpu"] = line
        f.gpu = gid
        f.fail(note) if gid is None else f.note("gpu", note, line)
        n = positive_int(count or 1, MAX_GPUS) or 1
        f.gpu_count_known = True
        f.note("gpus requested", n, line)
        if f.tp * f.pp == 1 and n > 1:
            f.notes.append(f"{n} GPUs requested with TP 1: the engine uses one")
    elif profile.startswith("cpu"):
        f.cpu_only = True
    return [f]


# ------------------------------------------------------------------------------------ docker compose


def read_compose(file: str, docs: list[Document]) -> tuple[list[Found], list[str]]:
    found: list[Found] = []
    skipped: list[str] = []
    d = docs[0].data if docs else None
    services = get(d, "services")
    if not isinstance(services, Map):
        return [], ["no services"]
    pulled = find_pulled(d)
    for sname, svc in services.items():
        if not isinstance(svc, Map):
            continue
        labels = svc.get("labels")
        ann: dict = {}
        ann_lines: dict = {}
        if isinstance(labels, dict):
            ann = {str(k): v for k, v in labels.items()}
            ann_lines = {str(k): labels.line_of(k) for k in labels} if isinstance(labels, Map) else {}
        elif isinstance(labels, list):
            for i, item in enumerate(labels):
                if isinstance(item, str) and "=" in item:
                    k, _, v = item.partition("=")
                    ann[k], ann_lines[k] = v, labels.line_of(i)
        w = Where(file=file, annotations=ann, annotation_lines=ann_lines, pulled=pulled)
        f = read_container(w, svc, f"service/{sname}", "compose service")
        if f is None:
            skipped.append(f"service {sname} (line {services.line_of(sname)}): no inference server in it")
            continue
        devices = get(svc, "deploy", "resources", "reservations", "devices")
        for dev in devices if isinstance(devices, list) else []:
            if not isinstance(dev, Map):
                continue
            line = dev.line
            if "count" in dev:
                n = positive_int(dev["count"], MAX_GPUS)
                line = dev.line_of("count")
                if n:
                    f.num_gpus, f.gpu_count_known = n, True
                f.note("gpus reserved", dev["count"], line)
            elif isinstance(dev.get("device_ids"), list):
                f.num_gpus, f.gpu_count_known = max(1, len(dev["device_ids"])), True
                f.note("gpus reserved", len(dev["device_ids"]), dev.line_of("device_ids"))
            else:
                f.note("gpus reserved", "all (no count)", line)
                f.gpu_count_known = True
        if not f.gpu_count_known and svc.get("runtime") != "nvidia" and "CUDA_VISIBLE_DEVICES" not in f.settings:
            f.cpu_only = True
        if f.engine == "vllm":
            f.num_gpus = f.tp * f.pp
        if isinstance(svc.get("profiles"), list):
            f.note("profiles", ",".join(str(p) for p in svc["profiles"]), svc.line_of("profiles"))
        found.append(f)
    _shared_gpus(found)
    return found, skipped


def _shared_gpus(found: list[Found]) -> None:
    """vLLM services pinned to the same GPU (CUDA_VISIBLE_DEVICES) whose memory shares add up to more than
    the GPU: the second engine to start cannot allocate its share. A service without ``profiles`` starts
    with every profile, so it may run beside any profiled one."""
    from planner.physics.engines import VLLM_GPU_MEMORY_UTILIZATION

    pinned = [(f, set(f.settings["CUDA_VISIBLE_DEVICES"].replace(" ", "").split(","))) for f in found
              if f.engine == "vllm" and f.settings.get("CUDA_VISIBLE_DEVICES")]
    for i, (a, devs_a) in enumerate(pinned):
        for b, devs_b in pinned[i + 1:]:
            prof_a, prof_b = a.settings.get("profiles"), b.settings.get("profiles")
            if not (devs_a & devs_b) or (prof_a and prof_b and not set(prof_a.split(",")) & set(prof_b.split(","))):
                continue
            share = sum(float(x.settings.get("gpu-memory-utilization", VLLM_GPU_MEMORY_UTILIZATION)) for x in (a, b))
            if share > 1.0:
                gpus = ",".join(sorted(devs_a & devs_b))
                for x, y in ((a, b), (b, a)):
                    x.warnings.append(f"shares GPU {gpus} with {y.name} (gpu-memory-utilization {share:.2f} in all, "
                                      f"line {x.lines.get('CUDA_VISIBLE_DEVICES', x.line)}): both cannot start "
                                      "when their profiles run together")


# ------------------------------------------------------------------------- production-stack Helm values


def read_helm(file: str, docs: list[Document]) -> tuple[list[Found], list[str]]:
    """vLLM production-stack values: one deployment per ``servingEngineSpec.modelSpec[]`` entry."""
    d = docs[0].data if docs else None
    specs = get(d, "servingEngineSpec", "modelSpec")
    found = []
    for i, spec in enumerate(specs if isinstance(specs, list) else []):
        if not isinstance(spec, Map):
            continue
        found.append(_model_spec(file, spec, i))
    return found, []


_HELM_VLLM = {"maxModelLen": "--max-model-len", "tensorParallelSize": "--tensor-parallel-size",
              "pipelineParallelSize": "--pipeline-parallel-size", "gpuMemoryUtilization": "--gpu-memory-utilization",
              "maxNumSeqs": "--max-num-seqs", "dtype": "--dtype", "maxLoras": "--max-loras"}
_HELM_BOOL = {"enablePrefixCaching": "--enable-prefix-caching", "enableChunkedPrefill": "--enable-chunked-prefill"}


def _model_spec(file: str, spec: Map, i: int) -> Found:
    name = str(spec.get("name") or f"modelSpec[{i}]")
    f = Found(file=file, line=spec.line, name=f"modelSpec/{name}", kind="production-stack modelSpec", engine="vllm")
    vc = spec.get("vllmConfig")
    words: list[Word] = []
    if isinstance(vc, Map):
        for key, flag in _HELM_VLLM.items():
            if key in vc and vc[key] is not None:
                words += [Word(flag, vc.line_of(key)), Word(str(vc[key]), vc.line_of(key))]
        for key, flag in _HELM_BOOL.items():
            if vc.get(key) is True:
                words.append(Word(flag, vc.line_of(key)))
        extra = vc.get("extraArgs")
        if isinstance(extra, list):
            words += [Word(str(a), extra.line_of(j)) for j, a in enumerate(extra) if isinstance(a, (str, int, float))]
    for key in ("extraArgs", "nodeSelector", "maxModelLen"):
        if key in spec:
            f.warnings.append(f"modelSpec.{key} (line {spec.line_of(key)}) has no effect: the chart reads "
                              f"{'vllmConfig.' + key if key != 'nodeSelector' else 'nodeSelectorTerms'}")
    apply_vllm(f, words)
    url = spec.get("modelURL")
    if isinstance(url, str):
        set_hf_model(f, url, spec.line_of("modelURL"))
    else:
        f.fail("no modelURL")
    n = positive_int(spec.get("requestGPU", 0), MAX_GPUS)
    if n:
        f.note("requestGPU", n, spec.line_of("requestGPU"))
        f.gpu_count_known = True
        if f.tp * f.pp not in (1, n):
            f.warnings.append(f"TP {f.tp} x PP {f.pp} = {f.tp * f.pp} GPUs, but requestGPU is {n}")
    else:
        f.cpu_only = True
    reps = positive_int(spec.get("replicaCount", 1), 1_000_000)
    f.replicas = reps or 1
    gpu = gpu_from_terms(spec.get("nodeSelectorTerms"))
    if isinstance(spec.get("requestGPUType"), str):
        gid, note = gpu_id("requestGPUType", spec["requestGPUType"])
        gpu = (gid, note, spec.line_of("requestGPUType"))
    if gpu is not None:
        f.lines["gpu"] = gpu[2]
        f.gpu = gpu[0]
        f.fail(gpu[1]) if gpu[0] is None else f.note("gpu", gpu[1], gpu[2])
    return f
