"""Search for deployment settings that fit and meet targets, and rank them (pure; no printing).

Search space: weight quant × KV dtype × GPU count (1 … ``max_gpus``; vLLM only tensor-parallel sizes
that divide the attention heads) × layers kept in host memory (llama.cpp/Ollama on a GPU) × context
(multiples of 256 up to the model's trained context) × concurrency. ``planner.search.candidates``
evaluates each (quant, GPU count) over arrays of the other axes at once (``planner.search.grid``).

A configuration is *feasible* when it fits in device memory with ``headroom`` (a fraction of the usable
device memory left free), the layers it keeps in host memory fit the host profile, its context ≥
``min_ctx`` (and ≥ prompt + gen) and it meets every speed target at the requested concurrency.
Constraints are checked in the order ``memory → host_memory → min_ctx → min_tok_s → max_ttft → max_e2e``;
a rejected quant reports the first constraint its closest configuration fails, with that constraint's
predicted and allowed values. A needed context above the model's trained context is an input error.

Objective (``prefer``; ``planner.search.rank.objective``, docs/recommend.md):

* ``quality`` (default): configurations that keep every layer in device memory first; among them the
  most bits per weight, then the most bits per KV element (both capped at 16: f32 buys no quality over
  a bf16-trained model), then the fewest GPUs, then the fastest decode; the context is the largest that
  fits. Configurations with layers in host memory follow, ordered the same way (fewer host layers first).
* ``speed``: the fastest per-sequence decode, then the fewest GPUs and host layers, then quality.

Modules: ``recommend_types`` (data), ``recommend_search`` (candidates, feasibility, closest misses),
``recommend_rank`` (objective, picks, rejection reports), ``recommend_answers`` (re-planned picks,
launch commands, direct answers).
"""

from __future__ import annotations

from planner.errors import FieldError, InputError

from planner.search.answers import answers, recommendation
from planner.search.rank import binding, closest_misses, picks, rejections
from planner.search.candidates import search_all
from planner.search.types import (
    CONSTRAINTS,
    Answers,
    Config,
    Prefer,
    Recommendation,
    RecommendResult,
    Rejection,
    Search,
    Targets,
)

__all__ = ["CONSTRAINTS", "Answers", "Config", "Prefer", "RecommendResult", "Recommendation", "Rejection", "Search",
           "Targets", "prepare", "recommend"]


def _check_context(spec, targets: Targets, prompt: int, gen: int, ctx_field: str) -> None:
    """A needed context above the trained one is a mistake in the input, not a search to run."""

    top = spec.architecture.max_context
    if targets.min_ctx is not None and targets.min_ctx > top:
        raise FieldError(f"{{{ctx_field}}} {targets.min_ctx:,} is above {spec.id}'s trained context of {top:,} tokens",
                         ctx_field)
    if prompt + gen > top:
        raise FieldError(f"{{prompt}} + {{gen}} = {prompt + gen:,} tokens is above {spec.id}'s trained context of "
                         f"{top:,} tokens", "prompt", "gen")


def prepare(model: str, gpu: str, engine: str = "llama.cpp", *, prompt: int = 512, gen: int = 256,
            concurrency: int = 1, targets: Targets | None = None, max_gpus: int = 1, quant: str | None = None,
            kv_dtype: str | None = None, offload: bool = True, host: str | None = None,
            efficiency=None, hardware=None, ctx_field: str = "min_ctx") -> Search:
    """Resolve names to library objects and refuse bad input (InputError): a quant or KV dtype the engine
    cannot run, a headroom outside [0, 1), a needed context above the model's trained context."""
    from planner.spec import catalog
    from planner.estimate import DEFAULT_HOST, ENGINE_KV_DTYPES, get_engine, resolve_model, resolve_quant
    from planner.physics.quant import check_supported, get_quant, quants_for

    eng = get_engine(engine)
    resolved = resolve_model(model)
    hw = hardware or catalog.load_hardware(gpu)
    q = resolve_quant(resolved, quant)
    quants = [get_quant(q)] if q else quants_for(eng, resolved.spec)
    if q:
        check_supported(eng, quants[0], resolved.spec)
    if kv_dtype is not None and kv_dtype.lower() not in ENGINE_KV_DTYPES[eng]:
        raise InputError(f"engine {eng.value} does not support kv dtype '{kv_dtype}'; choose one of: "
                         f"{', '.join(ENGINE_KV_DTYPES[eng])}")
    t = targets or Targets()
    if not 0 <= t.headroom_fraction < 1:
        raise FieldError(f"{{headroom}} is a fraction of device memory in [0, 1), not {t.headroom_fraction}", "headroom")
    _check_context(resolved.spec, t, prompt, gen, ctx_field)
    return Search(model=model, gpu=hw.id, resolved=resolved, hw=hw,
                  host=catalog.load_hardware(host or DEFAULT_HOST), host_name=host, engine=eng, prompt=prompt,
                  gen=gen, concurrency=concurrency, targets=t, max_gpus=max_gpus, quants=quants,
                  kv_dtypes=[kv_dtype.lower()] if kv_dtype else None, offload=offload, efficiency=efficiency)


def recommend(s: Search, prefer: Prefer = "quality", top: int = 5) -> RecommendResult:
    results = search_all(s, prefer)
    best_per_quant = picks(results, prefer)
    misses = closest_misses(results, {c.quant for c in best_per_quant})
    constraint, why = binding(bool(best_per_quant), misses)
    recs = [recommendation(s, c) for c in best_per_quant[:top]]
    return RecommendResult(
        model=s.resolved.spec.id, gpu=s.hw.id, engine=s.engine.value, prefer=prefer, concurrency=s.concurrency,
        prompt_tokens=s.prompt, gen_tokens=s.gen, targets=s.targets, recommendations=recs,
        rejected=rejections(misses), answers=answers(s, results, recs, prefer), binding_constraint=constraint,
        binding_message=why, candidates_evaluated=s.evaluated,
    )
