"""Size a fleet: per device, the fewest GPUs (quant × tensor/pipeline parallel × replicas) whose simulated
p95 latencies meet the SLOs at the offered traffic.

``evaluate`` is the one-call entry for other stages: a resolved ``Deployment`` (one replica), traffic and
SLOs in, ``Metrics`` (p50/p95/p99, goodput, throughput, preemptions) out.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from planner.errors import InputError
from planner.physics.quant import Engine
from planner.physics.workload import Deployment, Workload
from planner.serving.engines import EngineKnobs, scheduler_for
from planner.serving.simulate import Metrics, Slo, Traffic, simulate
from planner.serving.steps import StepModel
from planner.serving.traffic import read_trace

VLLM_QUANTS = ("bf16", "fp8", "awq-int4")  # best quality first
GGUF_QUANTS = ("q8_0", "q6_k", "q5_k_m", "q4_k_m")
TP_SIZES = (1, 2, 4, 8)
GPUS_PER_NODE = 8
SCREEN_REQUESTS = 2000  # requests per screening run; the chosen layout is re-run for the full duration
Progress = Callable[..., None]  # progress(message, advance=0)


def evaluate(d: Deployment, traffic: Traffic, slo: Slo, replicas: int = 1,
             knobs: EngineKnobs = EngineKnobs()) -> Metrics:
    """Simulate ``replicas`` copies of deployment ``d`` behind the load balancer under ``traffic``;
    the metrics say whether the SLOs hold (``meets_slo``, ``misses``)."""
    sched, _ = scheduler_for(d, knobs)
    return simulate(StepModel(d), sched, replicas, traffic, slo)


def traffic_of(*, rps: float | None = None, prompt: str | int = 512, gen: str | int = 256, trace: str | None = None,
               concurrency: int | None = None, burstiness: float = 1.0, duration_s: float = 600.0, seed: int = 0,
               lb: str = "round-robin") -> Traffic:
    """A validated ``Traffic`` from plain values (as a deploy file would carry them); lengths take the
    same forms as ``--prompt``/``--gen``. Raises InputError on bad values."""
    from planner.serving.traffic import parse_length

    t = Traffic(prompt=parse_length(prompt, "prompt"), gen=parse_length(gen, "gen"), rps=rps, concurrency=concurrency,
                trace=trace, burstiness=burstiness, duration_s=duration_s, seed=seed, lb=lb)
    t.check()
    return t


@dataclass(frozen=True)
class Layout:
    quant: str
    kv_dtype: str
    tp: int
    pp: int
    replicas: int
    slots: int | None = None  # llama-server / Ollama parallel slots

    @property
    def gpus_per_replica(self) -> int:
        return self.tp * self.pp

    @property
    def gpus(self) -> int:
        return self.gpus_per_replica * self.replicas


@dataclass
class Sized:
    """The layout chosen for one device, its simulated metrics and the deployment of one replica."""

    gpu: str
    layout: Layout | None
    metrics: Metrics | None
    deployment: Deployment | None
    ctx: int
    reason: str | None = None

    @property
    def meets_slo(self) -> bool:
        return self.metrics is not None and self.metrics.meets_slo


@dataclass(frozen=True)
class FleetQuery:
    model: object  # estimate.ResolvedModel
    engine: Engine
    traffic: Traffic
    slo: Slo
    max_gpus: int = 64
    quant: str | None = None
    kv_dtype: str | None = None
    tp: int | None = None
    pp: int | None = None
    replicas: int | None = None
    knobs: EngineKnobs = EngineKnobs()


def needed_ctx(q: FleetQuery) -> int:
    """Context one sequence needs: the longest prompt + output in the traffic (a 99.9th percentile of
    10,000 draws for distributions), rounded up to 1,024 and capped at the trained context."""
    t = q.traffic
    if t.trace is not None:
        r = read_trace(t.trace, t.duration_s)
        longest = int((r.prompt + r.gen).max()) if len(r) else 1
    else:
        rng = np.random.default_rng(t.seed + 1)
        sizes = t.prompt.sample(rng, 10_000, 0) + t.gen.sample(rng, 10_000, 1)
        longest = int(np.percentile(sizes, 99.9)) if t.prompt.kind != "fixed" or t.gen.kind != "fixed" else int(sizes[0])
    ctx = -(-max(longest, 1) // 1024) * 1024
    return min(ctx, q.model.spec.architecture.max_context)


def _offered_rps(t: Traffic) -> float | None:
    if t.rps is not None:
        return t.rps
    if t.trace is not None:
        r = read_trace(t.trace, t.duration_s)
        span = float(r.arrival_s[-1]) if len(r) > 1 else t.duration_s
        return len(r) / max(span, 1e-9)
    return None


def _candidates(q: FleetQuery, hw) -> list[tuple[str, str, int, int]]:
    """(quant, kv dtype, tp, pp) to try, best quality first, then fewest GPUs per replica."""
    from planner.physics.quant import check_supported, get_quant

    spec = q.model.spec
    if q.model.layout is not None and q.model.quant:
        quants = [q.model.quant]
    elif q.quant:
        quants = [q.quant]
    else:
        quants = list(VLLM_QUANTS if q.engine is Engine.vllm else GGUF_QUANTS)
    ok = []
    for name in quants:
        try:
            check_supported(q.engine, get_quant(name), spec)
        except InputError:
            if q.quant:
                raise
            continue
        ok.append(name)
    kv = q.kv_dtype or ("bf16" if q.engine is Engine.vllm else "f16")
    heads = spec.architecture.n_heads
    if q.engine is Engine.vllm:
        tps = [q.tp] if q.tp else [t for t in TP_SIZES if heads % t == 0 and t <= q.max_gpus]
        pps = [q.pp] if q.pp else [1, 2, 4]
    else:
        tps = [q.tp] if q.tp else [1, 2, 4, 8]  # GPUs per replica, layers split (-sm layer)
        pps = [1]
    out = [(name, kv, tp, pp) for name in ok for pp in pps for tp in tps if tp * pp <= q.max_gpus]
    return sorted(out, key=lambda c: (ok.index(c[0]), c[2] * c[3]))


def replica_deployment(q: FleetQuery, hw, quant: str, kv: str, tp: int, pp: int, ctx: int,
                       slots: int = 1) -> Deployment:
    from planner.estimate import deployment
    from planner.physics.quant import get_quant

    if q.engine is Engine.vllm:
        return deployment(q.model, hw, q.engine, get_quant(quant), kv, Workload(ctx=ctx, batch=1),
                          num_gpus=tp * pp, nodes=pp, parallel="tp")
    return deployment(q.model, hw, q.engine, get_quant(quant), kv, Workload(ctx=ctx, batch=slots),
                      num_gpus=tp, parallel="layer")


def _llama_slots(q: FleetQuery, hw, quant: str, kv: str, tp: int, ctx: int) -> int | None:
    """Most -np slots (≤ 64, powers of two) whose cache fits; None when even one slot does not."""
    from planner.physics.memory import memory_breakdown

    if q.knobs.slots:
        return q.knobs.slots
    best = None
    for s in (1, 2, 4, 8, 16, 32, 64):
        if memory_breakdown(replica_deployment(q, hw, quant, kv, tp, 1, ctx, s)).fits:
            best = s
        else:
            break
    return best


def _replica_rate_bound(steps: StepModel, sched, traffic: Traffic) -> float:
    """Requests/s one replica cannot exceed: prompt compute plus output tokens at the largest batch the
    KV pool and max_seqs allow (weights shared by the whole batch)."""
    p, g = max(traffic.prompt.mean, 1.0), max(traffic.gen.mean, 1.0)
    size = p + g
    batch = sched.max_seqs
    if sched.total_blocks is not None:
        batch = max(1, min(batch, int(sched.total_blocks * sched.block_tokens / size)))
    per_token = steps.decode_seconds(batch, batch * (p + g / 2), 0) / batch
    prefill = steps.prefill_to(int(p)) - steps.prefill_overhead_s
    return 1.0 / max(g * per_token + max(prefill, 0.0), 1e-9)


def _screen_traffic(t: Traffic, rate: float | None) -> Traffic:
    if rate is None or t.trace is not None:
        return t
    return replace(t, duration_s=min(t.duration_s, max(60.0, SCREEN_REQUESTS / rate)))


def _latency_floor_misses(steps: StepModel, traffic: Traffic, slo: Slo) -> list[str]:
    """SLOs a single request alone already misses (mean lengths): no replica count can help."""
    p, g = max(int(traffic.prompt.mean), 1), max(traffic.gen.mean, 1.0)
    ttft = steps.prefill_to(p)
    tpot = steps.decode_seconds(1, p + g / 2, steps.capped([int(p + g / 2)]) if steps.window else 0)
    out = []
    if slo.ttft_p95_s is not None and ttft > slo.ttft_p95_s:
        out.append(f"one request alone has TTFT {ttft:.3g} s > {slo.ttft_p95_s:g} s")
    if slo.tpot_p95_s is not None and tpot > slo.tpot_p95_s:
        out.append(f"one request alone has TPOT {tpot:.3g} s > {slo.tpot_p95_s:g} s")
    if slo.e2e_p95_s is not None and ttft + (g - 1) * tpot > slo.e2e_p95_s:
        out.append(f"one request alone takes {ttft + (g - 1) * tpot:.3g} s > {slo.e2e_p95_s:g} s")
    return out


@dataclass
class _Candidate:
    quant: str
    kv: str
    tp: int
    pp: int
    slots: int | None
    deployment: Deployment
    sched: object
    steps: StepModel
    lo: int  # replicas no fewer than which can carry the rate
    rank: int  # quality rank (0 = best)

    def layout(self, replicas: int) -> Layout:
        return Layout(self.quant, self.kv, self.deployment.tp, self.deployment.pp, replicas, self.slots)


def _prepare(q: FleetQuery, hw, ctx: int, rate: float | None) -> tuple[list[_Candidate], str]:
    """Candidates that fit in memory and whose single-request latency can meet the SLOs, ordered by the
    fewest GPUs they could possibly need, then quality."""
    out, reason = [], "no layout fits in device memory"
    cands = _candidates(q, hw)
    ranks = {name: i for i, name in enumerate(dict.fromkeys(c[0] for c in cands))}
    for quant, kv, tp, pp in cands:
        slots = None
        if q.engine is not Engine.vllm:
            slots = _llama_slots(q, hw, quant, kv, tp, ctx)
            if slots is None:
                continue
        d = replica_deployment(q, hw, quant, kv, tp, pp, ctx, slots or 1)
        knobs = replace(q.knobs, slots=slots, slot_ctx=ctx) if slots else q.knobs
        sched, fits = scheduler_for(d, knobs)
        if not fits:
            continue
        steps = StepModel(d)
        floor = _latency_floor_misses(steps, q.traffic, q.slo)
        if floor:
            reason = f"{quant}, {tp * pp} GPU(s) per replica: " + "; ".join(floor)
            continue
        lo = 1 if rate is None else max(1, math.ceil(rate / _replica_rate_bound(steps, sched, q.traffic)))
        out.append(_Candidate(quant, kv, tp, pp, slots, d, sched, steps, q.replicas or lo, ranks[quant]))
    out.sort(key=lambda c: (c.lo * c.tp * c.pp, c.rank, c.tp * c.pp))
    return out, reason


def size_device(q: FleetQuery, hw, progress: Progress | None = None) -> Sized:
    """The fewest GPUs of ``hw`` that meet the SLOs (ties: the better quant), else the closest layout.
    Layouts are screened on a shorter run (about SCREEN_REQUESTS requests); the winner is confirmed on
    the full duration, adding replicas while it misses."""
    ctx = needed_ctx(q)
    rate = _offered_rps(q.traffic)
    screen = _screen_traffic(q.traffic, rate)
    cands, reason = _prepare(q, hw, ctx, rate)
    best: tuple[_Candidate, int] | None = None
    for c in cands:
        per = c.tp * c.pp
        if best is not None:
            best_gpus, best_rank = best[0].tp * best[0].pp * best[1], best[0].rank
            if c.lo * per > best_gpus or (c.lo * per == best_gpus and c.rank >= best_rank):
                continue
            limit = best_gpus // per if c.rank < best_rank else (best_gpus - 1) // per
        else:
            limit = q.max_gpus // per
        if q.replicas:
            limit = q.replicas if q.replicas * per <= q.max_gpus else 0
        if limit < c.lo:
            continue
        if progress:
            progress(f"{hw.id}: {c.quant} tp{c.tp} pp{c.pp}")
        found = _fewest_replicas(lambda r, c=c: simulate(c.steps, c.sched, r, screen, q.slo), c.lo, limit)
        if found is not None:
            best = (c, found[0])
    if best is not None:
        c, r = best
        limit = q.replicas or max(r, q.max_gpus // (c.tp * c.pp))
        while True:
            m = simulate(c.steps, c.sched, r, q.traffic, q.slo)
            if m.meets_slo or r >= limit:
                break
            r = min(limit, r + max(1, r // 10))
        return Sized(hw.id, c.layout(r), m, c.deployment, ctx, None if m.meets_slo else "; ".join(m.misses))
    if not cands:
        return Sized(hw.id, None, None, None, ctx, reason)
    c = cands[0]  # the closest: the cheapest-looking layout at the most replicas allowed
    r = q.replicas or max(c.lo, q.max_gpus // (c.tp * c.pp))
    m = simulate(c.steps, c.sched, r, q.traffic, q.slo)
    return Sized(hw.id, c.layout(r), m, c.deployment, ctx, "; ".join(m.misses) or reason)


def _fewest_replicas(run: Callable[[int], Metrics], lo: int, hi: int) -> tuple[int, Metrics] | None:
    """Smallest r in [lo, hi] whose run meets the SLOs: grow geometrically, then bisect."""
    if hi < 1:
        return None
    r, last_fail = max(1, lo), max(0, lo - 1)
    while True:
        m = run(r)
        if m.meets_slo:
            break
        last_fail = r
        if r >= hi:
            return None
        r = min(hi, max(r + 1, int(r * 1.5)))
    good = (r, m)
    a, b = last_fail + 1, r - 1
    while a <= b:
        mid = (a + b) // 2
        mm = run(mid)
        if mm.meets_slo:
            good, b = (mid, mm), mid - 1
        else:
            a = mid + 1
    return good
