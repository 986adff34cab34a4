"""One container (Kubernetes, KServe, compose) -> a ``Found``: which engine it starts, with which flags,
on how many GPUs of which type. Shared by the manifest readers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from planner.check.argv import Word, engine_command, shell_commands, ollama_pulled_model
from planner.check.flags import apply_llama, apply_ollama_env, apply_vllm, llama_env_words
from planner.check.found import MAX_GPUS, Found, positive_int
from planner.check.names import PRODUCT_LABELS, gpu_id, ollama_tag
from planner.check.yamldocs import Map, Seq

GPU_RESOURCES = ("nvidia.com/gpu", "amd.com/gpu")


@dataclass
class Where:
    """What the surrounding object says about the pods: GPU type (with its line), annotations, replicas."""

    file: str
    gpu: tuple[str | None, str, int] | None = None  # (catalog id, how it was read, line)
    annotations: dict = field(default_factory=dict)
    annotation_lines: dict = field(default_factory=dict)
    replicas: int = 1
    pods_per_group: int = 1  # LeaderWorkerSet group size
    pulled: Word | None = None  # `ollama pull NAME` seen elsewhere in the document


def words_of(value: object, seq_line: int, env: dict[str, str], container: Map | None = None,
             key: str = "") -> list[list[Word]]:
    """A command/args value (a list of words or one shell string) -> commands of words."""
    from planner.check.argv import expand

    if isinstance(value, str):
        line = container.text_line(key) if isinstance(container, Map) else seq_line
        return shell_commands(value, line, env)
    if isinstance(value, list):
        words = []
        for i, item in enumerate(value):
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                line = value.text_line(i) if isinstance(value, Seq) else seq_line
                words.append(Word(expand(str(item), env), line))
        return [words]
    return []


def env_of(c: Map) -> tuple[dict[str, str], dict[str, int]]:
    """A container's environment (``env:`` list or compose ``environment:`` list/mapping) with lines."""
    env: dict[str, str] = {}
    lines: dict[str, int] = {}
    raw = c.get("env", c.get("environment"))
    if isinstance(raw, list):
        for i, item in enumerate(raw[:10_000]):
            line = raw.line_of(i) if isinstance(raw, Seq) else c.line
            if isinstance(item, dict) and isinstance(item.get("name"), str) and item.get("value") is not None:
                env[item["name"]], lines[item["name"]] = str(item["value"]), line
            elif isinstance(item, str) and "=" in item:
                k, _, v = item.partition("=")
                env[k.strip()], lines[k.strip()] = v, line
    elif isinstance(raw, dict):
        for k, v in list(raw.items())[:10_000]:
            if v is not None:
                env[str(k)], lines[str(k)] = str(v), raw.line_of(k) if isinstance(raw, Map) else c.line
    from planner.check.argv import expand

    for k in list(env):  # compose ${VAR:-default} and Kubernetes $(VAR) inside values
        env[k] = expand(env[k], {kk: vv for kk, vv in env.items() if kk != k})
    return env, lines


def gpu_count(resources: object) -> tuple[int | None, int | None]:
    """(GPUs requested, line) from Kubernetes ``resources`` (limits, else requests)."""
    for part in ("limits", "requests"):
        block = resources.get(part) if isinstance(resources, dict) else None
        if isinstance(block, dict):
            for key in GPU_RESOURCES:
                if key in block:
                    n = positive_int(block[key], MAX_GPUS)
                    return n, block.line_of(key) if isinstance(block, Map) else None
    return None, None


def gpu_from_selectors(pod: object) -> tuple[str | None, str, int] | None:
    """The GPU type a pod spec pins through nodeSelector or required node affinity, with its line."""
    sel = pod.get("nodeSelector") if isinstance(pod, dict) else None
    if isinstance(sel, dict):
        for key in PRODUCT_LABELS:
            if key in sel and sel[key] is not None:
                gid, note = gpu_id(key, str(sel[key]))
                return gid, note, sel.line_of(key) if isinstance(sel, Map) else 1
    aff = pod.get("affinity") if isinstance(pod, dict) else None
    na = aff.get("nodeAffinity") if isinstance(aff, dict) else None
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution") if isinstance(na, dict) else None
    terms = req.get("nodeSelectorTerms") if isinstance(req, dict) else None
    return gpu_from_terms(terms)


def gpu_from_terms(terms: object) -> tuple[str | None, str, int] | None:
    for term in terms if isinstance(terms, list) else []:
        exprs = term.get("matchExpressions") if isinstance(term, dict) else None
        for e in exprs if isinstance(exprs, list) else []:
            if not isinstance(e, dict) or e.get("key") not in PRODUCT_LABELS or e.get("operator") != "In":
                continue
            values = [str(v) for v in e.get("values") or [] if v is not None] if isinstance(e.get("values"), list) else []
            line = e.line_of("values") if isinstance(e, Map) else 1
            ids = {gpu_id(e["key"], v) for v in values}
            if len({i for i, _ in ids}) == 1:
                return next(iter(ids))[0], next(iter(ids))[1], line
            return None, f"node affinity allows several GPU types ({', '.join(values[:4])}); set planner.gpu", line
    return None


_PULL = re.compile(r"ollama\s+(?:pull|run)\s+([A-Za-z0-9][\w./:-]*)")


def find_pulled(doc: object, budget: int = 20_000) -> Word | None:
    """The first ``ollama pull NAME`` written anywhere in a document (init containers, hooks)."""
    stack = [(doc, getattr(doc, "line", 1))]
    while stack and budget > 0:
        budget -= 1
        node, line = stack.pop()
        if isinstance(node, str):
            m = _PULL.search(node)
            if m:
                return Word(m.group(1), line)
        elif isinstance(node, dict):
            stack += [(v, node.line_of(k) if isinstance(node, Map) else line) for k, v in reversed(list(node.items()))]
        elif isinstance(node, list):
            stack += [(v, node.line_of(i) if isinstance(node, Seq) else line) for i, v in reversed(list(enumerate(node)))]
    return None


def engine_from_image(image: str, env: dict[str, str]) -> str | None:
    low = image.lower()
    if "vllm" in low:
        return "vllm"
    if "ollama" in low:
        return "ollama"
    if any(k.startswith("LLAMA_ARG_") for k in env) or "llama.cpp" in low or "llama-cpp" in low \
            or "llama-server" in low or "llamacpp" in low:
        return "llama.cpp"
    return None


def read_container(w: Where, c: Map, name: str, kind: str, extra_args: list[list[Word]] | None = None) -> Found | None:
    """The Found for an inference container, or None for a container that runs no engine."""
    env, env_lines = env_of(c)
    commands = words_of(c.get("entrypoint"), c.line_of("entrypoint") if "entrypoint" in c else c.line, env, c,
                        "entrypoint")
    cmd = words_of(c.get("command"), c.line_of("command") if "command" in c else c.line, env, c, "command")
    args = words_of(c.get("args"), c.line_of("args") if "args" in c else c.line, env, c, "args")
    if commands and cmd:
        commands = [commands[-1] + cmd[0]] + cmd[1:]
    else:
        commands = commands or cmd
    if commands and args:
        commands = commands[:-1] + [commands[-1] + [w for a in args for w in a]]
    elif args:
        commands = args
    commands += extra_args or []
    engine, words = engine_command(commands, env)
    image = str(c.get("image") or "")
    if engine is None and commands and ollama_pulled_model(commands, env) is not None:
        return None  # a client that pulls a model for a server elsewhere (an init container)
    if engine is None or engine == "ollama":
        engine = engine or engine_from_image(image, env)
        words = [wd for cmd_ in commands for wd in cmd_] if engine in ("vllm", "llama.cpp") else words
    if engine is None:
        return None
    f = Found(file=w.file, line=c.line, name=name, kind=kind, replicas=w.replicas)
    if image:
        f.note("image", image, c.line_of("image"))
    if engine == "vllm":
        apply_vllm(f, [wd for wd in words if wd.text != "serve"] if words[:1] and words[0].text == "serve"
                   else words)
        if "VLLM_CPU_KVCACHE_SPACE" in env or "cpu" in image.lower().split(":")[-1]:
            f.cpu_only = True
    elif engine == "llama.cpp":
        apply_llama(f, llama_env_words(env, env_lines) + words)
    else:
        f.engine = "ollama"
        apply_ollama_env(f, env, env_lines)
        hook = c.get("lifecycle")
        hook = hook.get("postStart") if isinstance(hook, dict) else None
        hook = hook.get("exec") if isinstance(hook, dict) else None
        hook_words = words_of(hook.get("command"), hook.line, env) if isinstance(hook, Map) else []
        pulled = ollama_pulled_model(commands + hook_words, env) or w.pulled
        if pulled is None:
            f.fail("no model: the manifest names none (Ollama pulls models at run time)")
        else:
            mid, q, note = ollama_tag(pulled.text)
            f.model, f.model_ref, f.quant = pulled.text, mid, q
            f.lines["model"] = pulled.line
            f.fail(note) if mid is None else f.notes.append(f"{note} (from `ollama pull` at line {pulled.line})")
    if "CUDA_VISIBLE_DEVICES" in env:
        devs = [d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        f.note("CUDA_VISIBLE_DEVICES", env["CUDA_VISIBLE_DEVICES"], env_lines.get("CUDA_VISIBLE_DEVICES"))
        if devs and f.engine != "vllm":
            f.num_gpus, f.gpu_count_known = len(devs), True
    n, line = gpu_count(c.get("resources"))
    if n is not None:
        per_group = n * w.pods_per_group
        f.note("gpus requested", f"{n}" + (f" x {w.pods_per_group} pods" if w.pods_per_group > 1 else ""), line)
        f.gpu_count_known = True
        if n == 0:
            f.cpu_only = True
        elif f.engine == "vllm" and f.tp * f.pp != per_group and (f.tp * f.pp > 1):
            f.warnings.append(f"TP {f.tp} x PP {f.pp} = {f.tp * f.pp} GPUs, but {per_group} are requested "
                              f"(line {line})")
        elif f.engine == "vllm" and f.tp * f.pp == 1 and per_group > 1:
            f.notes.append(f"{per_group} GPUs requested with TP 1: the engine uses one")
        elif f.engine != "vllm":
            f.num_gpus = per_group
    elif f.engine != "vllm" and not f.gpu_count_known:
        f.cpu_only = f.cpu_only or "resources" in c
    apply_where(f, w)
    return f


def apply_where(f: Found, w: Where) -> None:
    """GPU type and SLO from the surrounding object: annotation planner.gpu wins over node labels."""
    ann = w.annotations
    if "planner.gpu" in ann:
        from planner.check.names import _key
        from planner.errors import InputError
        from planner.spec import catalog

        line = w.annotation_lines.get("planner.gpu", f.line)
        try:
            f.gpu = catalog.hardware().get(_key(str(ann["planner.gpu"]))).id
            f.note("gpu", f"{f.gpu} (annotation planner.gpu)", line)
            f.lines["gpu"] = line
        except InputError as exc:
            f.fail(f"annotation planner.gpu: {exc}")
    elif w.gpu is not None:
        gid, note, line = w.gpu
        f.lines["gpu"] = line
        if gid is None:
            f.fail(note)
        else:
            f.gpu = gid
            f.note("gpu", note, line)
            if "not a label" in note:
                f.warnings.append(note)
    for key in ("planner.slo", "planner.concurrency"):
        if key in ann:
            f.slo.setdefault("__" + key, (ann[key], w.annotation_lines.get(key, f.line)))
