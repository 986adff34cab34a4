"""Search for deployment settings that fit and meet targets, and rank them (pure; no printing).

Search space: weight quant × KV dtype × GPU count (1 … ``max_gpus``; vLLM only tensor-parallel sizes
that divide the attention heads) × layers kept in host memory (llama.cpp/Ollama on a GPU) × context
(multiples of 256 up to the model's trained context) × concurrency. ``planner.search`` evaluates each
(quant, GPU count) over arrays of the other axes at once.

A configuration is *feasible* when it fits in device memory with ``headroom`` (a fraction of the usable
device memory left free), its host part fits the host profile, its context ≥ ``min_ctx`` (and ≥ prompt
+ gen) and it meets every speed target at the requested concurrency. Constraints are checked in the
order ``memory → host_memory → min_ctx → min_tok_s → max_ttft → max_e2e``; a rejected quant reports
the first constraint its closest configuration fails.

Objective (``prefer``):
* ``quality`` (default): the most bits per weight, then the most bits per KV element (both capped at
  16: f32 buys no quality over a bf16-trained model), then the fewest GPUs, the fewest host layers,
  then the fastest decode; the context is the largest that fits.
* ``speed``: the fastest per-sequence decode, then the fewest GPUs and host layers, then quality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from planner.estimate import Estimate

CONSTRAINTS = ("memory", "host_memory", "min_ctx", "min_tok_s", "max_ttft", "max_e2e")
FEASIBLE = len(CONSTRAINTS)
CTX_STEP = 256
MAX_CONCURRENCY = 256
Prefer = Literal["quality", "speed"]


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_ctx: int | None = None
    min_tok_s: float | None = None
    max_ttft_s: float | None = None
    max_e2e_s: float | None = None
    headroom_fraction: float = 0.1


class Config(BaseModel):
    """One evaluated configuration, with what the vectorised model predicts for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quant: str
    kv_dtype: str
    ctx: int
    concurrency: int
    offload_layers: int
    num_gpus: int
    decode_tok_s: float
    ttft_s: float
    e2e_s: float
    total_bytes: int
    device_bytes: int
    weight_bits: float
    kv_bits: float


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quant: str
    kv_dtype: str
    ctx: int
    concurrency: int
    offload_layers: int
    num_gpus: int
    plan: Estimate
    commands: dict[str, str | None]


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quant: str
    kv_dtype: str
    ctx: int
    concurrency: int
    offload_layers: int
    num_gpus: int
    constraint: str
    predicted: float
    required: float
    message: str


class Answers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    largest_ctx: Config | None = None
    max_concurrency: Config | None = None
    max_concurrency_ctx: int
    max_concurrency_capped: bool = False
    max_gen_tokens: int | None = None
    max_gen_tokens_note: str | None = None


class RecommendResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    gpu: str
    engine: str
    prefer: str
    concurrency: int
    prompt_tokens: int
    gen_tokens: int
    targets: Targets
    recommendations: list[Recommendation]
    rejected: list[Rejection]
    answers: Answers
    binding_constraint: str | None = None
    binding_message: str | None = None
    candidates_evaluated: int


@dataclass
class Search:
    """Inputs of one search, already resolved to library objects (see ``prepare``)."""

    model: str
    gpu: str
    resolved: object
    hw: object
    host: object
    host_name: str | None
    engine: object
    prompt: int
    gen: int
    concurrency: int
    targets: Targets
    max_gpus: int = 1
    quants: list | None = None
    kv_dtypes: list[str] | None = None
    offload: bool = True
    efficiency: object = None
    evaluated: int = field(default=0)
    only_gpus: list[int] | None = None  # compare: evaluate exactly these GPU counts
    cache: dict = field(default_factory=dict)  # quant id → a Deployment, reused across devices


def prepare(model: str, gpu: str, engine: str = "llama.cpp", *, prompt: int = 512, gen: int = 256,
            concurrency: int = 1, targets: Targets | None = None, max_gpus: int = 1, quant: str | None = None,
            kv_dtype: str | None = None, offload: bool = True, host: str | None = None,
            efficiency=None, hardware=None) -> Search:
    from planner import catalog
    from planner.errors import InputError
    from planner.estimate import DEFAULT_HOST, ENGINE_KV_DTYPES, get_engine, resolve_model, resolve_quant
    from planner.quant import get_quant, quants_for

    eng = get_engine(engine)
    resolved = resolve_model(model)
    hw = hardware or catalog.load_hardware(gpu)
    q = resolve_quant(resolved, quant)
    quants = [get_quant(q)] if q else quants_for(eng, resolved.spec)
    if kv_dtype is not None and kv_dtype.lower() not in ENGINE_KV_DTYPES[eng]:
        raise InputError(f"engine {eng.value} does not support kv dtype '{kv_dtype}'; choose one of: "
                         f"{', '.join(ENGINE_KV_DTYPES[eng])}")
    t = targets or Targets()
    if not 0 <= t.headroom_fraction < 1:
        raise InputError(f"--headroom is a fraction of device memory in [0, 1), not {t.headroom_fraction}")
    return Search(model=model, gpu=hw.id, resolved=resolved, hw=hw,
                  host=catalog.load_hardware(host or DEFAULT_HOST), host_name=host, engine=eng, prompt=prompt,
                  gen=gen, concurrency=concurrency, targets=t, max_gpus=max_gpus, quants=quants,
                  kv_dtypes=[kv_dtype.lower()] if kv_dtype else None, offload=offload, efficiency=efficiency)


def bits(value: float) -> float:
    return min(value, 16.0)


def objective(c: Config, prefer: str) -> tuple:
    """Sort key, smallest first (see the module docstring)."""
    quality = (-bits(c.weight_bits), -bits(c.kv_bits))
    resources = (c.num_gpus, c.offload_layers)
    if prefer == "speed":
        return (-round(c.decode_tok_s, 9), *resources, *quality, -c.ctx)
    return (*quality, *resources, -round(c.decode_tok_s, 9), -c.ctx)


def min_ctx_needed(s: Search) -> int:
    return max(s.targets.min_ctx or 0, s.prompt + s.gen, 1)


def ctx_grid(s: Search) -> np.ndarray:
    top = max(s.resolved.spec.architecture.max_context, -(-min_ctx_needed(s) // CTX_STEP) * CTX_STEP)
    grid = list(range(CTX_STEP, top + 1, CTX_STEP))
    if not grid or grid[-1] != top:
        grid.append(top)
    return np.array(grid, dtype=np.int64)


def gpu_counts(s: Search) -> list[int]:
    from planner.quant import Engine
    from planner.schema import DeviceKind

    if s.hw.kind is not DeviceKind.gpu:  # a CPU host or one unified-memory machine
        return [1] if s.only_gpus is None or 1 in s.only_gpus else []
    if s.only_gpus is not None:
        counts = s.only_gpus
    else:
        counts = list(range(1, s.max_gpus + 1))
    heads = s.resolved.spec.architecture.n_heads
    if s.engine is Engine.vllm:  # vLLM needs the attention heads to split evenly over TP ranks
        return [g for g in counts if heads % g == 0]
    return counts


@dataclass
class GroupResult:
    """What one (quant, GPU count) contributes: per KV dtype, the best feasible configuration or the
    closest rejected one (with its stage), and the answers' candidates."""

    feasible: list[Config]
    rejected: list[tuple[int, float, Config, float, float]]  # (stage, closeness, config, predicted, required)
    largest_ctx: list[Config]
    max_concurrency: list[Config]


def _groups(s: Search):
    """Yield (quant, num_gpus, Group, kv dtypes) for every supported combination."""
    from planner.errors import InputError
    from planner.estimate import ENGINE_KV_DTYPES, deployment
    from planner.kvcache import get_kv_dtype, kv_bytes_per_token_layer
    from planner.search import Group
    from planner.workload import Workload

    kv_names = s.kv_dtypes or list(ENGINE_KV_DTYPES[s.engine])
    kvs = []
    for name in kv_names:
        try:
            k = get_kv_dtype(name)
            kv_bytes_per_token_layer(s.resolved.spec, k)  # quantized caches need block-aligned rows
            kvs.append(k)
        except InputError:
            continue
    workload = Workload(ctx=4096, batch=s.concurrency, prompt_tokens=s.prompt, gen_tokens=s.gen)
    for q in s.quants:
        if q.id in s.cache:  # the weight layout does not depend on the device
            base = s.cache[q.id]
            base = None if base is None else base.model_copy(update={"hardware": s.hw})
        else:
            try:
                base = deployment(s.resolved, s.hw, s.engine, q, ENGINE_KV_DTYPES[s.engine][0], workload, 1,
                                  host=s.host)
            except InputError:
                base = None
            s.cache[q.id] = base
        if base is None:
            continue
        for g in gpu_counts(s):
            d = base if g == 1 else base.model_copy(update={"num_gpus": g})
            yield q, g, Group(d, s.efficiency), kvs


def _config(s, q, G, kv, wl_bits, ctx, B, h, grid, idx_speed, idx_mem) -> Config:
    return Config(
        quant=q.id, kv_dtype=kv.id, ctx=int(ctx), concurrency=int(B), offload_layers=int(h), num_gpus=G,
        decode_tok_s=float(grid.decode_tok_s[idx_speed]), ttft_s=float(grid.ttft_s[idx_speed]),
        e2e_s=float(grid.e2e_s[idx_speed]), total_bytes=int(grid.total_bytes[idx_mem]),
        device_bytes=int(grid.device_bytes), weight_bits=wl_bits, kv_bits=8 * kv.block_bytes / kv.block_elements,
    )


def _speed_ok(s: Search, grid) -> list[np.ndarray]:
    t = s.targets
    return [grid.decode_tok_s >= (t.min_tok_s or 0.0),
            grid.ttft_s <= (t.max_ttft_s if t.max_ttft_s is not None else np.inf),
            grid.e2e_s <= (t.max_e2e_s if t.max_e2e_s is not None else np.inf)]


def _last_true(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(any, index of the last True) along ``axis``."""
    rev = np.flip(mask, axis=axis)
    return mask.any(axis=axis), mask.shape[axis] - 1 - rev.argmax(axis=axis)


def evaluate_group(s: Search, q, G: int, group, kvs, prefer: str) -> GroupResult:
    from planner.schema import DeviceKind

    n = group.n_layers
    gguf_gpu = s.engine.reads_gguf and s.hw.kind is not DeviceKind.cpu
    H = np.arange(n + 1) if (gguf_gpu and s.offload) else np.array([0])
    ctxs = ctx_grid(s)
    need = min_ctx_needed(s)
    B = s.concurrency
    grid = group.evaluate(kvs, H, ctxs, [B])
    s.evaluated += grid.size
    frac = s.targets.headroom_fraction
    dev_ok = grid.fits & grid.headroom_ok(frac)
    host_ok = grid.host_bytes <= s.host.memory_bytes if gguf_gpu else np.ones_like(dev_ok)
    both = dev_ok & host_ok
    ctx_ok = both & (ctxs[None, None, :, None] >= need)
    speed = [np.broadcast_to(ok, (len(kvs), len(H), 1, 1))[:, :, 0, 0] for ok in _speed_ok(s, grid)]
    checks = [dev_ok.any(axis=(2, 3)), both.any(axis=(2, 3)), ctx_ok.any(axis=(2, 3)), *speed]
    stage = np.full(checks[0].shape, FEASIBLE)
    for i in reversed(range(len(checks))):
        stage = np.where(~checks[i], i, stage)
    has_ctx, last = _last_true(both[..., 0], axis=2)
    wl_bits = 8 * group.d.layout.file_bytes / max(1, group.d.layout.n_params)
    dec = np.broadcast_to(grid.decode_tok_s, (len(kvs), len(H), 1, 1))[:, :, 0, 0]
    out = GroupResult([], [], [], [])
    for k, kv in enumerate(kvs):
        feas = stage[k] == FEASIBLE
        if feas.any():
            hs = np.flatnonzero(feas)
            hi = hs[np.argmax(dec[k, hs])] if prefer == "speed" else hs[0]
            ci = last[k, hi]
            out.feasible.append(_config(s, q, G, kv, wl_bits, ctxs[ci], B, H[hi], grid, (k, hi, 0, 0),
                                        (k, hi, ci, 0)))
            # The largest context across host-layer counts (more host layers leave more device room).
            hl = hs[np.argmax(ctxs[last[k, hs]])]
            out.largest_ctx.append(_config(s, q, G, kv, wl_bits, ctxs[last[k, hl]], B, H[hl], grid,
                                           (k, hl, 0, 0), (k, hl, last[k, hl], 0)))
        st = stage[k]
        top = st.max()
        hs = np.flatnonzero(st == top)
        c = CONSTRAINTS[top] if top < FEASIBLE else None
        if c == "memory":
            closeness = -grid.total_bytes[k, hs, 0, 0].astype(float)
        elif c == "host_memory":
            closeness = -grid.host_bytes[k, hs, 0, 0].astype(float)
        elif c == "min_ctx":
            closeness = ctxs[last[k, hs]].astype(float)
        else:
            closeness = dec[k, hs]
        j = int(np.argmax(closeness))
        hi = hs[j]
        ci = last[k, hi] if has_ctx[k, hi] else 0
        cfg = _config(s, q, G, kv, wl_bits, ctxs[ci], B, H[hi], grid, (k, hi, 0, 0), (k, hi, ci, 0))
        pred, req = _predicted_required(s, c, cfg, grid, k, hi, need) if c else (0.0, 0.0)
        out.rejected.append((int(top), float(closeness[j]), cfg, pred, req))
    out.max_concurrency = _max_concurrency(s, q, G, group, kvs, H, need, wl_bits, gguf_gpu)
    return out


def _predicted_required(s: Search, c: str, cfg: Config, grid, k: int, hi: int, need: int) -> tuple[float, float]:
    t = s.targets
    if c == "memory":
        return float(grid.total_bytes[k, hi, 0, 0]), float(grid.device_bytes * (1 - t.headroom_fraction))
    if c == "host_memory":
        return float(grid.host_bytes[k, hi, 0, 0]), float(s.host.memory_bytes)
    if c == "min_ctx":
        return float(cfg.ctx), float(need)
    if c == "min_tok_s":
        return cfg.decode_tok_s, float(t.min_tok_s)
    if c == "max_ttft":
        return cfg.ttft_s, float(t.max_ttft_s)
    return cfg.e2e_s, float(t.max_e2e_s)


def max_concurrency_limit(s: Search) -> int:
    from planner import engines as eng
    from planner.quant import Engine

    return eng.vllm_batch_defaults(s.hw)[1] if s.engine is Engine.vllm else MAX_CONCURRENCY


def _max_concurrency(s, q, G, group, kvs, H, need, wl_bits, gguf_gpu) -> list[Config]:
    """Per KV dtype, the most sequences of ``need`` tokens that fit and meet the targets."""
    Bs = np.arange(1, max_concurrency_limit(s) + 1)
    grid = group.evaluate(kvs, H, [need], Bs)
    s.evaluated += grid.size
    ok = grid.fits & grid.headroom_ok(s.targets.headroom_fraction)
    if gguf_gpu:
        ok &= grid.host_bytes <= s.host.memory_bytes
    for sp in _speed_ok(s, grid):
        ok = ok & sp
    found, last = _last_true(ok[:, :, 0, :], axis=2)
    out = []
    for k, kv in enumerate(kvs):
        if not found[k].any():
            continue
        best = np.where(found[k], last[k], -1)
        hi = int(np.argmax(best))
        bi = int(best[hi])
        out.append(_config(s, q, G, kv, wl_bits, need, Bs[bi], H[hi], grid, (k, hi, 0, bi), (k, hi, 0, bi)))
    return out


def search_all(s: Search, prefer: str) -> list[GroupResult]:
    return [evaluate_group(s, q, G, group, kvs, prefer) for q, G, group, kvs in _groups(s) if kvs]


def _best(configs: list[Config], prefer: str) -> Config | None:
    return min(configs, key=lambda c: objective(c, prefer)) if configs else None


def _message(c: str, p: float, r: float, headroom: float) -> str:
    from planner.units import GIB

    if c == "memory":
        return f"needs {p / GIB:.2f} GiB of device memory; {r / GIB:.2f} GiB allowed with {headroom:.0%} headroom"
    if c == "host_memory":
        return f"needs {p / GIB:.2f} GiB of host memory; the host has {r / GIB:.2f} GiB"
    if c == "min_ctx":
        return f"largest context that fits is {p:,.0f} tokens; {r:,.0f} required"
    if c == "min_tok_s":
        return f"decodes {p:.1f} tok/s per sequence; {r:g} required"
    if c == "max_ttft":
        return f"time to first token {p:.3f} s; at most {r:g} s allowed"
    return f"end-to-end {p:.2f} s; at most {r:g} s allowed"


def recommend(s: Search, prefer: Prefer = "quality", top: int = 5) -> RecommendResult:
    results = search_all(s, prefer)
    by_quant: dict[str, list[Config]] = {}
    for r in results:
        for c in r.feasible:
            by_quant.setdefault(c.quant, []).append(c)
    picks = sorted((_best(cs, prefer) for cs in by_quant.values()), key=lambda c: objective(c, prefer))
    rejected = []
    closest: dict[str, tuple] = {}
    for r in results:
        for stage, closeness, cfg, p, req in r.rejected:
            if cfg.quant in by_quant or stage == FEASIBLE:
                continue
            key = (stage, closeness)
            if cfg.quant not in closest or key > closest[cfg.quant][0]:
                closest[cfg.quant] = (key, cfg, p, req, stage)
    for (stage, _), cfg, p, req, st in sorted(closest.values(), key=lambda v: objective(v[1], "quality")):
        c = CONSTRAINTS[st]
        rejected.append(Rejection(**{k: getattr(cfg, k) for k in ("quant", "kv_dtype", "ctx", "concurrency",
                                                                     "offload_layers", "num_gpus")},
                                  constraint=c, predicted=p, required=req,
                                  message=_message(c, p, req, s.targets.headroom_fraction)))
    binding = binding_msg = None
    if not picks and closest:
        _, cfg, p, req, st = max(closest.values(), key=lambda v: (v[0], -bits(v[1].weight_bits)))
        binding = CONSTRAINTS[st]
        binding_msg = f"{cfg.quant} (kv {cfg.kv_dtype}, {cfg.num_gpus} GPU): " + \
            _message(binding, p, req, s.targets.headroom_fraction)
    elif not picks:
        binding, binding_msg = "memory", "no supported quantization and KV dtype for this model and engine"
    recs = [recommendation(s, c) for c in picks[:top]]
    largest = _best_by([c for r in results for c in r.largest_ctx], lambda c: c.ctx, prefer)
    most = _best_by([c for r in results for c in r.max_concurrency], lambda c: c.concurrency, prefer)
    gen_tokens, note = max_gen_tokens(s, recs[0]) if recs else (None, "no feasible configuration")
    answers = Answers(largest_ctx=largest, max_concurrency=most, max_concurrency_ctx=min_ctx_needed(s),
                      max_concurrency_capped=bool(most and most.concurrency >= max_concurrency_limit(s)),
                      max_gen_tokens=gen_tokens, max_gen_tokens_note=note)
    return RecommendResult(
        model=s.resolved.spec.id, gpu=s.hw.id, engine=s.engine.value, prefer=prefer, concurrency=s.concurrency,
        prompt_tokens=s.prompt, gen_tokens=s.gen, targets=s.targets, recommendations=recs, rejected=rejected,
        answers=answers, binding_constraint=binding, binding_message=binding_msg,
        candidates_evaluated=s.evaluated,
    )


def _best_by(configs: list[Config], value, prefer: str) -> Config | None:
    if not configs:
        return None
    top = max(value(c) for c in configs)
    return _best([c for c in configs if value(c) == top], prefer)


def plan_for(s: Search, c: Config) -> Estimate:
    """The scalar ``planner.estimate.plan`` estimate of one configuration."""
    from planner.estimate import plan
    from planner.workload import Workload

    w = Workload(ctx=c.ctx, batch=c.concurrency, prompt_tokens=s.prompt, gen_tokens=s.gen)
    return plan(s.model, s.gpu if s.hw.id == s.gpu else s.hw.id, quant=c.quant, engine=s.engine.value,
                kv_dtype=c.kv_dtype, workload=w, num_gpus=c.num_gpus,
                offload=c.offload_layers if c.offload_layers else "none", host=s.host_name,
                efficiency=s.efficiency)[0]


def recommendation(s: Search, c: Config) -> Recommendation:
    from planner import launch

    est = plan_for(s, c)
    return Recommendation(quant=c.quant, kv_dtype=c.kv_dtype, ctx=c.ctx, concurrency=c.concurrency,
                          offload_layers=c.offload_layers, num_gpus=c.num_gpus, plan=est,
                          commands=launch.commands(s, est))


def max_gen_tokens(s: Search, rec: Recommendation) -> tuple[int | None, str | None]:
    """The most output tokens whose end-to-end time stays within --max-e2e, for the top pick at its
    context: e2e(N) = TTFT + Σ_{i=1}^{N−1} t_step(P + i) (latency.decode_coefficients, scalar)."""
    from planner import latency
    from planner.efficiency import communication, default_efficiency
    from planner.estimate import deployment
    from planner.performance import host_efficiency
    from planner.quant import get_quant
    from planner.workload import Workload

    budget = s.targets.max_e2e_s
    if budget is None:
        return None, "give --max-e2e to get the most output tokens within a latency budget"
    e = rec.plan
    room = e.ctx - s.prompt
    if room < 1 or e.performance.ttft_s > budget:
        return 0, "the prompt alone does not fit the context or the budget"
    d = deployment(s.resolved, s.hw, s.engine, get_quant(e.quant), e.kv_dtype,
                   Workload(ctx=e.ctx, batch=e.batch, prompt_tokens=s.prompt, gen_tokens=s.gen), e.num_gpus,
                   host=s.host, host_layers=rec.offload_layers)
    eff = s.efficiency or default_efficiency(d.engine, d.hardware)
    k = latency.decode_coefficients(d, eff, host_efficiency(d), communication())
    contexts = np.arange(s.prompt + 1, e.ctx, dtype=np.float64)
    capped = np.minimum(contexts, k.window) if k.window else contexts
    steps = k.fixed_s + k.batch * (k.global_s_per_token * contexts + k.window_s_per_token * capped)
    e2e = e.performance.ttft_s + np.concatenate([[0.0], np.cumsum(steps)])  # e2e[N − 1] for N = 1 …
    n = int(np.searchsorted(e2e, budget, side="right"))
    note = "capped by the context" if n >= room else None
    return min(n, room), note
