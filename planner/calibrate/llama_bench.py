"""Measurements users bring: llama-bench output (``-o json`` / ``-o jsonl``) and validate-format CSVs.

llama-bench prints one object per test: ``n_prompt`` > 0 with ``n_gen`` = 0 is a prompt-processing test
(pp), ``n_gen`` > 0 a generation test (tg) after ``n_depth`` tokens of context; ``avg_ts`` is tokens per
second (tools/llama-bench/README.md, "Output formats"). The model is named by ``model_type`` (e.g.
"qwen2 7B Q4_K - Medium") and ``model_n_params``; the device by ``gpu_info``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from planner.spec import catalog
from planner.errors import FieldError, InputError, SpecFileError
from planner.calibrate.fit import Observation
from planner.spec.safeio import check_nesting, parse_json, read_text

MAX_BYTES = 20_000_000
MAX_RESULTS = 10_000  # a llama-bench run has tens of tests; more is not a benchmark output
MAX_TOKENS_PER_S = 10_000_000.0  # far above any device (prompt processing peaks near 10^5 tok/s)

# llama_model_ftype_name() strings (src/llama-model-loader.cpp) → planner quant ids.
FTYPE_NAMES = {
    "all f32": "f32", "f16": "f16", "bf16": "bf16", "q8_0": "q8_0", "q6_k": "q6_k", "q5_k - medium": "q5_k_m",
    "q5_0": "q5_0", "q4_k - medium": "q4_k_m", "q4_0": "q4_0", "q3_k - medium": "q3_k_m",
    "q2_k - medium": "q2_k", "iq4_xs - 4.25 bpw": "iq4_xs", "mxfp4 moe": "mxfp4",
}


class BenchResult(BaseModel):
    """The fields of one llama-bench result planner uses; the others are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    model_type: str = Field(default="", max_length=500)
    model_n_params: int = Field(default=0, ge=0, le=10**15, strict=True)
    gpu_info: str = Field(default="", max_length=2000)
    n_prompt: int = Field(ge=0, le=10_000_000, strict=True)
    n_gen: int = Field(ge=0, le=10_000_000, strict=True)
    n_depth: int = Field(default=0, ge=0, le=10_000_000, strict=True)
    n_gpu_layers: int = Field(default=99, ge=-1, le=100_000, strict=True)
    type_k: str = Field(default="f16", max_length=50)
    avg_ts: float = Field(gt=0, le=MAX_TOKENS_PER_S, allow_inf_nan=False, strict=True)

    @model_validator(mode="after")
    def _one_test(self) -> BenchResult:
        if self.n_prompt == 0 and self.n_gen == 0:
            raise ValueError("a test with n_prompt 0 and n_gen 0 measured no tokens")
        return self


def read_llama_bench(path: Path | str) -> list[BenchResult]:
    path = Path(path)
    text = read_text(path, MAX_BYTES)
    check_nesting(path, text)
    stripped = text.lstrip()
    if stripped.startswith("["):
        items = parse_json(path, text)
        lines = [None] * len(items)
    else:  # JSONL: one object per non-empty line
        items, lines = [], []
        for i, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(parse_json(path, line))
                except SpecFileError as exc:
                    raise SpecFileError(str(path), exc.detail, i, exc.column) from None
                lines.append(i)
                if len(items) > MAX_RESULTS:
                    break
    if not isinstance(items, list):
        raise SpecFileError(str(path), "expected a list of llama-bench result objects")
    if len(items) > MAX_RESULTS:
        raise SpecFileError(str(path), f"{len(items):,} results; at most {MAX_RESULTS:,} are read")
    out = []
    for item, line in zip(items, lines):
        if not isinstance(item, dict):
            raise SpecFileError(str(path), "expected llama-bench result objects", line)
        try:
            out.append(BenchResult.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise SpecFileError(str(path), f"{field + ': ' if field else ''}{first['msg']}", line) from None
    if not out:
        raise SpecFileError(str(path), "no llama-bench results in the file")
    return out


def quant_of(model_type: str) -> str:
    """'qwen2 7B Q4_K - Medium' → 'q4_k_m' (the ftype name follows the architecture and size)."""
    parts = model_type.split(" ", 2)
    name = parts[2].lower() if len(parts) == 3 else model_type.lower()
    name = name.removeprefix("mostly ")
    if name not in FTYPE_NAMES:
        raise InputError(f"llama-bench model_type '{model_type}': quantization '{name}' is not one planner models")
    return FTYPE_NAMES[name]


def model_of(result: BenchResult) -> str:
    """The catalog model whose parameter count equals llama-bench's model_n_params (within 0.1%)."""
    def gap(spec) -> int:
        return abs(spec.published.total_params - result.model_n_params)

    close = [s for s in catalog.models().items.values() if gap(s) <= 0.001 * result.model_n_params]
    best = min(close, key=gap, default=None)
    if best is None:
        raise InputError(f"no catalog model has {result.model_n_params:,} parameters ({result.model_type}); "
                         "name it with --model")
    return best.id


def gpu_of(result: BenchResult) -> str:
    from planner.calibrate.detect import match_profile

    known = {h.id: list(h.aliases) + [h.name] for h in catalog.hardware().items.values()}
    first = result.gpu_info.split(",")[0].strip()
    matched = match_profile(first, known) if first else None
    if matched is None:
        raise FieldError(f"llama-bench gpu_info '{result.gpu_info}' matches no hardware profile; name it with {{gpu}}", "gpu")
    return matched


def observations_from_llama_bench(results: list[BenchResult], model: str | None, gpu: str | None) -> list[Observation]:
    from planner.estimate import ResolvedModel, deployment
    from planner.physics.quant import Engine, get_quant
    from planner.physics.workload import Workload

    out = []
    for r in results:
        spec = catalog.load_model(model or model_of(r))
        hw = catalog.load_hardware(gpu or gpu_of(r))
        n = spec.architecture.n_layers
        host_layers = 0 if r.n_gpu_layers < 0 or r.n_gpu_layers > n else n + 1 - max(r.n_gpu_layers, 1)
        kv = r.type_k if r.type_k in ("f16", "bf16", "f32", "q8_0", "q4_0") else "f16"
        if r.n_gen > 0:
            wl = Workload(ctx=r.n_depth + r.n_gen, prompt_tokens=r.n_depth, gen_tokens=r.n_gen)
        else:
            wl = Workload(ctx=r.n_depth + r.n_prompt + 1, prompt_tokens=r.n_prompt, gen_tokens=1)
        d = deployment(ResolvedModel(spec=spec), hw, Engine.llama_cpp, get_quant(quant_of(r.model_type)), kv, wl,
                       host=catalog.load_hardware("ddr5-6000-2ch"), host_layers=host_layers)
        if r.n_gen > 0:
            out.append(Observation(d, decode_step_s=1.0 / r.avg_ts, label=f"tg{r.n_gen}@d{r.n_depth}"))
        elif r.n_prompt > 0:
            out.append(Observation(d, prefill_s=r.n_prompt / r.avg_ts, label=f"pp{r.n_prompt}@d{r.n_depth}"))
    return out
