"""Deployment files for the CI gate (`planner check`): schema, loading and evaluation (pure).

A file lists deployments; each names a model, a device, an engine and its settings, and service-level
objectives. The file is read once (``planner.spec.safeio``: regular files only, a size cap) and parsed by
``planner.spec.catalog.parse_yaml`` (a nesting limit, duplicate keys refused). Loading rejects unknown keys and
wrong types (strict: ``ctx: true`` or ``concurrency: "3"`` is not coerced) with ``file:line``
(``SpecFileError``), and so do names the catalog does not know; relative model and hardware file paths
are relative to the deploy file's folder. Evaluation runs ``planner.estimate.plan`` and compares each
prediction with its objective. Schema and examples: docs/check.md, examples/.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from planner.spec.catalog import MAX_SPEC_FILE_BYTES, format_validation_error, parse_yaml
from planner.errors import InputError, SpecFileError
from planner.estimate import Estimate
from planner.physics.workload import Workload
from planner.spec.safeio import read_text

from planner.check.evaluate import HARDWARE_FILE_SUFFIXES, MODEL_FILE_SUFFIXES, Evaluator, Job, default_root


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Input(BaseModel):
    """What a deploy file holds: unknown keys and wrong types are errors, never coerced (an int field
    refuses ``true`` and ``"3"``; a float field takes an int)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SLO(Input):
    prompt_tokens: int = Field(default=512, ge=0, le=100_000_000)
    gen_tokens: int = Field(default=256, ge=1, le=100_000_000)
    min_decode_tok_s: float | None = Field(default=None, gt=0, description="per sequence")
    max_ttft_s: float | None = Field(default=None, gt=0)
    max_e2e_s: float | None = Field(default=None, gt=0)
    min_headroom_fraction: float | None = Field(default=None, ge=0, lt=1, description="of usable device memory")
    # Percentiles under load: gated when the deployment carries `traffic` (planner.serving simulates it).
    ttft_p95_s: float | None = Field(default=None, gt=0, le=86_400)
    tpot_p95_s: float | None = Field(default=None, gt=0, le=3_600)
    e2e_p95_s: float | None = Field(default=None, gt=0, le=86_400)
    min_goodput_rps: float | None = Field(default=None, gt=0, le=1_000_000)


class TrafficSpec(Input):
    """The load a deployment must carry: an open loop (``rps``), a closed loop (``concurrency`` clients) or
    a ``trace`` file (CSV/JSONL, inside the repository); lengths as in ``planner fleet`` (a number or
    ``lognormal:mean=..,sigma=..``, ``uniform:a,b``, ``exp:mean``), default the slo's prompt and gen."""

    rps: float | None = Field(default=None, gt=0, le=100_000)
    concurrency: int | None = Field(default=None, ge=1, le=100_000)
    trace: str | None = Field(default=None, max_length=1000)
    prompt: int | str | None = Field(default=None, union_mode="left_to_right")
    gen: int | str | None = Field(default=None, union_mode="left_to_right")
    replicas: int = Field(default=1, ge=1, le=1024)
    duration_s: float = Field(default=300, gt=0, le=3_600, description="simulated seconds")
    seed: int = Field(default=0, ge=0, le=2**31)


class DeploymentSpec(Input):
    name: str = Field(min_length=1)
    model: str
    gpu: str
    num_gpus: int = Field(default=1, ge=1, le=4096)
    engine: str = "llama.cpp"
    quant: str | None = None
    kv_dtype: str = "f16"
    ctx: int = Field(default=4096, ge=1, le=100_000_000)
    concurrency: int = Field(default=1, ge=1, le=1_000_000)
    slo: SLO = SLO()
    traffic: TrafficSpec | None = None


class DeployFile(Input):
    deployments: list[DeploymentSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> DeployFile:
        seen = set()
        for d in self.deployments:
            if d.name in seen:
                raise ValueError(f"deployment name '{one_line(d.name)}' is used twice")
            seen.add(d.name)
        return self


class Check(Strict):
    check: str
    predicted: float
    required: float
    unit: str
    passed: bool
    message: str


class DeploymentResult(Strict):
    name: str
    passed: bool
    checks: list[Check]
    plan: Estimate

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


class CheckResult(Strict):
    file: str
    passed: bool
    deployments: list[DeploymentResult]


# ------------------------------------------------------------------------------ loading


def _node_line(root: yaml.Node | None, loc: tuple) -> int | None:
    """1-based line of the deepest YAML node on ``loc`` (keys and list indexes)."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _compose(text: str) -> yaml.Node | None:
    """The node tree, for line numbers (the text has passed ``parse_yaml``'s nesting check)."""
    try:
        return yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (yaml.YAMLError, RecursionError):
        return None


def load_text(path: Path | str) -> tuple[DeployFile, str]:
    """The validated file and its text, read once."""
    path = Path(path)
    text = read_text(path, MAX_SPEC_FILE_BYTES)
    data = parse_yaml(path, text)
    if not isinstance(data, dict):
        raise SpecFileError(str(path), f"expected a mapping with 'deployments:', got {type(data).__name__}", 1)
    try:
        return DeployFile.model_validate(data), text
    except ValidationError as exc:
        err = format_validation_error(path, exc, text)
        line = _node_line(_compose(text), tuple(exc.errors()[0]["loc"])) or err.line
        where = err.path + (f":{err.line}" if err.line is not None else "")
        raise SpecFileError(str(path), str(err)[len(where) + 2:], line) from None


def load(path: Path | str) -> DeployFile:
    return load_text(path)[0]


# ------------------------------------------------------------------------------ evaluation


def _check(name: str, predicted: float, required: float, unit: str, at_least: bool) -> Check:
    ok = predicted >= required if at_least else predicted <= required
    rel = ">=" if at_least else "<="
    return Check(check=name, predicted=predicted, required=required, unit=unit, passed=ok,
                 message=f"{name}: predicted {predicted:,.3g} {unit}, required {rel} {required:,.3g} {unit}")


TRACE_FILE_SUFFIXES = (".csv", ".jsonl", ".json")


def _traffic_checks(d: DeploymentSpec, e: Estimate, trace: str | None) -> list[Check]:
    """Simulate the deployment under its traffic (planner.serving, the simulator behind `planner fleet`) and
    gate the p95 latencies and the goodput the slo names."""
    from planner.serving.capacity import evaluate, traffic_of
    from planner.serving.engines import EngineKnobs
    from planner.serving.simulate import Slo

    s, t = d.slo, d.traffic
    traffic = traffic_of(rps=t.rps, concurrency=t.concurrency, trace=trace,
                         prompt=s.prompt_tokens if t.prompt is None else t.prompt,
                         gen=s.gen_tokens if t.gen is None else t.gen, duration_s=t.duration_s, seed=t.seed)
    slo = Slo(ttft_p95_s=s.ttft_p95_s, tpot_p95_s=s.tpot_p95_s, e2e_p95_s=s.e2e_p95_s, min_goodput_rps=s.min_goodput_rps)
    # llama-server / Ollama serve `concurrency` slots of `ctx` tokens; vLLM schedules by its own limits.
    knobs = EngineKnobs(slots=d.concurrency, slot_ctx=d.ctx) if e.deployment.engine.reads_gguf else EngineKnobs()
    m = evaluate(e.deployment, traffic, slo, replicas=t.replicas, knobs=knobs)
    checks = []
    for name, value, limit in (("ttft_p95_s", m.ttft_s["p95"], s.ttft_p95_s),
                               ("tpot_p95_s", m.tpot_s["p95"], s.tpot_p95_s),
                               ("e2e_p95_s", m.e2e_s["p95"], s.e2e_p95_s)):
        if limit is not None:
            checks.append(_check(name, value, limit, "s", at_least=False))
    if s.min_goodput_rps is not None:
        checks.append(_check("goodput_rps", m.goodput_rps, s.min_goodput_rps, "req/s", at_least=True))
    return checks


def evaluate_one(d: DeploymentSpec, folder: Path | None = None, evaluator: Evaluator | None = None,
                 root: Path | None = None, **layout) -> DeploymentResult:
    """Plan one deployment and check it; relative file paths in it are relative to ``folder`` and must stay
    inside ``root`` (None: anywhere). ``layout`` (nodes, parallel, ngl) comes from foreign configs."""
    from planner.units import GIB

    evaluator = evaluator or Evaluator()
    model, gpu = d.model, d.gpu
    if folder is not None:
        model = evaluator.path(model, folder, root, MODEL_FILE_SUFFIXES, "model", True)
        gpu = evaluator.path(gpu, folder, root, HARDWARE_FILE_SUFFIXES, "hardware", False)
    s = d.slo
    w = Workload(ctx=d.ctx, batch=d.concurrency, prompt_tokens=s.prompt_tokens, gen_tokens=s.gen_tokens)
    e = evaluator.estimate(Job(model=model, gpu=gpu, engine=d.engine, quant=d.quant,
                               kv_dtype=d.kv_dtype, workload=w, num_gpus=d.num_gpus, **layout))
    m, p = e.memory, e.performance
    checks = [_check("memory", m.total_bytes / GIB, m.device_bytes / GIB, "GiB", at_least=False)]
    checks[0] = checks[0].model_copy(update={"passed": m.fits})  # fits also checks the most loaded GPU
    # A prompt and its generation that do not fit the context cannot run as planned (the engine refuses
    # the request or cuts it off), whatever the memory says.
    checks.append(_check("context", s.prompt_tokens + s.gen_tokens, d.ctx, "tokens", at_least=False))
    if s.min_headroom_fraction is not None:
        checks.append(_check("headroom_fraction", m.headroom_bytes / m.device_bytes, s.min_headroom_fraction,
                             "of device memory", at_least=True))
    if s.min_decode_tok_s is not None:
        checks.append(_check("decode_tok_s", p.decode_tok_s, s.min_decode_tok_s, "tok/s", at_least=True))
    if s.max_ttft_s is not None:
        checks.append(_check("ttft_s", p.ttft_s, s.max_ttft_s, "s", at_least=False))
    if s.max_e2e_s is not None:
        checks.append(_check("e2e_s", p.e2e_s, s.max_e2e_s, "s", at_least=False))
    if d.traffic is not None:
        trace = d.traffic.trace
        if trace is not None and folder is not None:
            trace = evaluator.path(trace, folder, root, TRACE_FILE_SUFFIXES, "trace", False)
        checks += _traffic_checks(d, e, trace)
    return DeploymentResult(name=d.name, passed=all(c.passed for c in checks), checks=checks, plan=e)


def check_file(path: Path | str, root: Path | None = None, allow_outside: bool = False,
               evaluator: Evaluator | None = None) -> CheckResult:
    """Load and evaluate every deployment; an error in one names the deploy file and the deployment's
    line (an error in a model or hardware file it names follows, with that file's own line). File paths
    in it must resolve inside ``root`` (default: the file's git work tree, else its folder) unless
    ``allow_outside``."""
    path = Path(path)
    spec, text = load_text(path)
    root = None if allow_outside else (Path(root) if root is not None else default_root(path))
    evaluator = evaluator or Evaluator()
    tree = None
    results = []
    for i, d in enumerate(spec.deployments):
        try:
            results.append(evaluate_one(d, path.parent, evaluator, root))
        except InputError as exc:
            tree = tree or _compose(text)
            line = _node_line(tree, ("deployments", i))
            raise SpecFileError(str(path), f"deployments.{i} ({one_line(d.name)}): {one_line(str(exc), 1000)}",
                                line) from None
    return CheckResult(file=str(path), passed=all(r.passed for r in results), deployments=results)


def one_line(text: str, limit: int = 200) -> str:
    """A name read from a file, safe inside a one-line message: control characters become spaces."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."


def deployment_lines(text: str, count: int) -> list[int | None]:
    """The line of each deployment's entry and of its ctx key, for annotations."""
    tree = _compose(text)
    return [_node_line(tree, ("deployments", i, "ctx")) or _node_line(tree, ("deployments", i))
            for i in range(count)]
