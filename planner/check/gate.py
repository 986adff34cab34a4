"""The gate over any file `planner check` reads: planner deployment files and foreign configs alike.

``check_path`` returns a ``FileReport``: the ``CheckResult`` (the JSON contract of docs/check.md), the line
each deployment's failure belongs to (the ``--max-model-len`` flag, the ``num_ctx`` parameter, the ``ctx:``
key), and for foreign configs what was understood (``found``) and which documents were not deployments.

A foreign deployment the planner cannot evaluate (no GPU type, a model the catalog lacks, a model only in a
volume) is bad input for the gate: one ``SpecFileError`` at its line, exit 2, with the precise reason.
``explain`` never evaluates: it shows the mapping, complete or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from planner.check.deploy import SLO, CheckResult, DeploymentResult, DeploymentSpec, check_file, deployment_lines, \
    evaluate_one, load_text, one_line
from planner.check.evaluate import Evaluator, confine, default_root
from planner.check.found import Found
from planner.check.sources import Source, read_source
from planner.errors import InputError, SpecFileError

DEFAULT_CTX = {"llama.cpp": 4096, "ollama": 4096}  # llama.cpp common.h n_ctx; Ollama's default num_ctx
ENGINES = ("vllm", "llama.cpp", "ollama")


@dataclass
class Options:
    gpu: str | None = None  # default GPU for deployments whose file names none
    root: Path | None = None
    allow_outside: bool = False
    slo: dict = field(default_factory=dict)  # deployment name (or "default") -> SLO mapping, from --slo FILE


@dataclass
class FileReport:
    path: str
    kind: str
    result: CheckResult | None = None
    lines: list[int] = field(default_factory=list)
    found: list[Found] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def explain_path(path: Path | str, options: Options | None = None) -> FileReport:
    """What a file holds, mapped to planner fields, without evaluating anything."""
    options = options or Options()
    src = read_source(path)
    if src.kind == "planner":
        spec, _ = load_text(path)
        found = [Found(file=str(path), line=0, name=d.name, kind="planner deployment", engine=d.engine, model=d.model,
                       tp=d.num_gpus if d.engine == "vllm" else 1,
                       model_ref=d.model, quant=d.quant, gpu=d.gpu, num_gpus=d.num_gpus, ctx=d.ctx,
                       concurrency=d.concurrency, kv_dtype=d.kv_dtype) for d in spec.deployments]
        return FileReport(str(path), "planner", found=found)
    for f in src.found:
        _complete(f, options, None)
    return FileReport(str(path), src.kind, found=src.found, skipped=src.skipped)


def check_path(path: Path | str, options: Options | None = None, evaluator: Evaluator | None = None,
               lines: bool = True) -> FileReport:
    """Gate one file. ``lines``: find the line of each deployment of a planner file (for annotations and
    SARIF; it costs a second parse, so the plain report skips it)."""
    options = options or Options()
    evaluator = evaluator or Evaluator()
    path = Path(path)
    root = None if options.allow_outside else (options.root or default_root(path))
    src = read_source(path)
    if src.kind == "planner":
        result = check_file(path, root=root, allow_outside=options.allow_outside, evaluator=evaluator)
        where = deployment_lines(src.text, len(result.deployments)) if lines else []
        return FileReport(str(path), "planner", result, [ln or 1 for ln in where])
    return _gate_foreign(src, options, evaluator, root)


def _gate_foreign(src: Source, options: Options, evaluator: Evaluator, root: Path | None) -> FileReport:
    if not src.found:
        raise SpecFileError(src.path, f"no inference deployment found in this {src.kind} file")
    results: list[DeploymentResult] = []
    lines: list[int] = []
    for f in src.found:
        spec, layout = _complete(f, options, evaluator, root)
        if f.problem:
            raise SpecFileError(src.path, f"{one_line(f.name)}: {one_line(f.problem, 300)}", f.line_for("gpu", "model")
                                if "GPU" in f.problem else f.line_for("model"))
        try:
            r = evaluate_one(spec, Path(src.path).parent, evaluator, root, **layout)
        except InputError as exc:
            raise SpecFileError(src.path, f"{one_line(f.name)}: {one_line(str(exc), 300)}", f.line_for("model")) \
                from None
        results.append(r)
        lines.append(_failure_line(f, r))
    result = CheckResult(file=src.path, passed=all(r.passed for r in results), deployments=results)
    return FileReport(src.path, src.kind, result, lines, src.found, src.skipped)


def _failure_line(f: Found, r: DeploymentResult) -> int:
    failed = {c.check for c in r.failures}
    if failed & {"memory", "context", "headroom_fraction"}:
        return f.line_for("ctx", "concurrency", "num_gpus", "model")
    return f.line_for("model")


def _default_quant(f: Found, evaluator: Evaluator | None) -> str | None:
    if f.engine == "vllm":
        return "mxfp4" if (f.model_ref or "").startswith("gpt-oss") else "bf16"
    return None


def _complete(f: Found, options: Options, evaluator: Evaluator | None, root: Path | None = None):
    """Fill the defaults the engine applies, record problems, and build the planner deployment."""
    if f.engine not in ENGINES and not any(p.startswith("unsupported engine") for p in f.problems):
        f.fail(f"unsupported engine: {f.engine or 'none found'}")
    if f.model is None and not f.problems:
        f.fail("no model named (no --model, -m, -hf or FROM): it may be built into the image")
    if f.cpu_only and "planner.gpu" not in f.settings.get("gpu", ""):
        f.fail("no GPU requested (no nvidia.com/gpu resource or GPU reservation): planner check gates GPU "
               "memory; set the annotation planner.gpu (a GPU or host profile) to check it")
    if f.gpu is None and not any("GPU" in p for p in f.problems):
        if options.gpu:
            f.gpu = options.gpu
            f.note("gpu", f"{options.gpu} (--gpu)")
        else:
            f.fail("no GPU type: the file names none (set a nodeSelector nvidia.com/gpu.product, the annotation "
                   "planner.gpu, or --gpu)")
    model_file = f.settings.get("model-file")
    if model_file and evaluator is not None and not model_file.startswith("/"):
        candidate = confine(model_file, Path(f.file).parent, root, (".gguf",), "model")
        if Path(candidate).is_file():  # in the repository: its header says what it is
            f.model_ref, f.quant = candidate, None
            f.problems[:] = [p for p in f.problems if not p.startswith("model '")]
            f.notes.append(f"model read from {model_file} (GGUF header)")
    if f.quant is None:
        f.quant = _default_quant(f, evaluator)
        if f.quant:
            f.notes.append(f"weights {f.quant} (the checkpoint's dtype, vLLM's default)")
        elif f.model_ref and not f.model_ref.endswith(".gguf"):
            f.fail("the weight format is not written anywhere (name the GGUF file with its quant, e.g. -Q4_K_M)")
    slo = _slo(f, options)
    if f.problem or f.model_ref is None or f.gpu is None:
        return None, {}
    ctx = f.ctx
    if ctx in (None, 0) and f.engine == "vllm" or ctx == 0:
        try:
            ctx = (evaluator or Evaluator()).trained_context(f.model_ref)
        except InputError as exc:
            f.fail(str(exc))
            return None, {}
        f.notes.append(f"ctx {ctx:,}: the model's trained context (the engine's default)")
    elif ctx is None:
        ctx = DEFAULT_CTX[f.engine]
        f.notes.append(f"ctx {ctx:,}: {f.engine}'s default (the file sets none)")
    conc = f.concurrency or 1
    if f.engine == "llama.cpp" and conc > 1:
        ctx = max(1, ctx // conc)  # llama-server splits -c among its -np slots
        f.notes.append(f"{conc} slots share the context: {ctx:,} tokens each")
    gen = min(256, ctx)
    slo.setdefault("gen_tokens", min(gen, ctx))
    slo.setdefault("prompt_tokens", max(0, min(512, ctx - slo["gen_tokens"])))
    if f.engine == "vllm":
        parallel, nodes = ("tp", f.pp) if f.tp > 1 and f.pp > 1 else (("pp", 1) if f.pp > 1 else ("tp", 1))
        num_gpus = f.tp * f.pp
    else:
        parallel, nodes, num_gpus = None, 1, max(1, f.num_gpus)
    try:
        spec = DeploymentSpec(name=f.name, model=f.model_ref, gpu=f.gpu, num_gpus=num_gpus, engine=f.engine,
                              quant=f.quant, kv_dtype=f.kv_dtype or "f16", ctx=ctx, concurrency=conc,
                              slo=SLO.model_validate(slo))
    except ValidationError as exc:
        first = exc.errors()[0]
        f.fail(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
        return None, {}
    f.settings.setdefault("ctx", str(ctx))
    return spec, {"nodes": nodes, "parallel": parallel, "ngl": f.ngl}


def _slo(f: Found, options: Options) -> dict:
    """Objectives: --slo FILE (by deployment name, else its ``default``), then the annotation planner.slo."""
    from planner.spec.catalog import parse_yaml

    slo = dict(f.slo)
    extra = {k: v for k, v in slo.items() if k.startswith("__")}
    for k in extra:
        slo.pop(k)
    side = options.slo.get(f.name, options.slo.get("default"))
    if isinstance(side, dict):
        slo.update(side)
    if "__planner.slo" in extra:
        value, line = extra["__planner.slo"]
        try:
            data = parse_yaml(f.file, str(value)) if isinstance(value, str) else value
        except InputError as exc:
            f.fail(f"annotation planner.slo (line {line}): {exc}")
            return slo
        if not isinstance(data, dict):
            f.fail(f"annotation planner.slo (line {line}) must be a mapping such as {{max_ttft_s: 2}}")
            return slo
        slo.update(data)
        f.note("slo", ", ".join(f"{k}={v}" for k, v in data.items()), line)
    if "__planner.concurrency" in extra:
        value, line = extra["__planner.concurrency"]
        from planner.check.found import MAX_SEQS, positive_int

        v = positive_int(value, MAX_SEQS)
        if not v:
            f.fail(f"annotation planner.concurrency (line {line}) is not a positive integer")
        else:
            f.concurrency = v
            f.lines["concurrency"] = line
    try:
        SLO.model_validate(slo)
    except ValidationError as exc:
        first = exc.errors()[0]
        f.fail(f"slo.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    return slo
