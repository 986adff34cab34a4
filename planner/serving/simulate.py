"""Run traffic through replicas behind a load balancer and measure latency percentiles and goodput."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from planner.errors import InputError
from planner.serving.book import Book
from planner.serving.replica import Replica, Scheduler
from planner.serving.steps import StepModel
from planner.serving.traffic import MAX_REQUESTS, LengthDist, Requests, read_trace, synthetic

MAX_CLIENTS = 100_000
CLIENT_STAGGER_S = 1.0


@dataclass(frozen=True)
class Traffic:
    """Open loop (``rps`` with Poisson/gamma gaps, or a ``trace``) or closed loop (``concurrency``)."""

    prompt: LengthDist
    gen: LengthDist
    rps: float | None = None
    concurrency: int | None = None
    trace: str | None = None
    burstiness: float = 1.0
    duration_s: float = 600.0
    seed: int = 0
    lb: str = "round-robin"

    def check(self) -> None:
        modes = sum(x is not None for x in (self.rps, self.concurrency, self.trace))
        if modes != 1:
            raise InputError("give exactly one of --rps, --concurrency and --trace")
        if not (0 < self.duration_s <= 7 * 86400):
            raise InputError("--duration must be between 0 and 604800 seconds")
        if self.concurrency is not None and not 1 <= self.concurrency <= MAX_CLIENTS:
            raise InputError(f"--concurrency must be between 1 and {MAX_CLIENTS:,}")
        if not 0.01 <= self.burstiness <= 1000:
            raise InputError("--burstiness must be between 0.01 and 1000 (1 = Poisson)")
        if self.lb not in ("round-robin", "least-loaded"):
            raise InputError(f"--lb takes round-robin or least-loaded, not '{self.lb}'")


@dataclass(frozen=True)
class Slo:
    ttft_p95_s: float | None = None
    tpot_p95_s: float | None = None
    e2e_p95_s: float | None = None
    min_goodput_rps: float | None = None


@dataclass
class Metrics:
    requests: int
    finished: int
    rejected: int
    duration_s: float
    elapsed_s: float
    throughput_tok_s: float
    goodput_rps: float
    ttft_s: dict[str, float]
    tpot_s: dict[str, float]
    e2e_s: dict[str, float]
    mean_batch: float
    kv_utilization: float
    preemptions: int
    littles_law_l: float  # time-average requests in the system, from the step loop
    littles_law_lambda_w: float  # arrival rate × mean time in system, from the request ledger
    meets_slo: bool = False
    misses: list[str] = field(default_factory=list)


def _pct(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0}
    p50, p95, p99 = np.percentile(x, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99), "mean": float(x.mean())}


def _requests(t: Traffic, rng: np.random.Generator) -> Requests:
    if t.trace is not None:
        return read_trace(t.trace, t.duration_s)
    return synthetic(rng, t.rps, t.duration_s, t.prompt, t.gen, t.burstiness)


def simulate(steps: StepModel, sched: Scheduler, replicas: int, traffic: Traffic, slo: Slo | None = None) -> Metrics:
    """Simulate ``replicas`` identical replicas for ``traffic.duration_s`` seconds of arrivals, then
    let them drain (at most as long again, plus a minute); unfinished requests count with the time
    they waited so far."""
    traffic.check()
    if not 1 <= replicas <= 4096:
        raise InputError("replicas must be between 1 and 4096")
    rng = np.random.default_rng(traffic.seed)
    book = Book()
    horizon = 2 * traffic.duration_s + 60.0
    window = traffic.duration_s
    if traffic.concurrency is not None:
        reps = _closed_loop(steps, sched, replicas, traffic, book, rng)
    else:
        reqs = _requests(traffic, rng)
        if traffic.trace is not None and len(reqs) > 1:
            # a trace shorter than --duration: rates are per second of the trace's own span
            window = min(window, float(reqs.arrival_s[-1]) * len(reqs) / (len(reqs) - 1))
        ids = book.add_many(reqs.arrival_s, reqs.prompt, reqs.gen)
        reps = [Replica(steps, sched, book) for _ in range(replicas)]
        if traffic.lb == "round-robin" or replicas == 1:
            for i, rid in enumerate(ids.tolist()):
                reps[i % replicas].submit(rid)
        else:
            _least_loaded(reps, ids, book)
    for r in reps:
        r.advance_until(horizon)
    return measure(book, reps, window, horizon, slo)


def _least_loaded(reps: list[Replica], ids: np.ndarray, book: Book) -> None:
    """Send each request, at its arrival, to the replica with the fewest outstanding requests."""
    for rid in ids.tolist():
        t = float(book.arrival[rid])
        for r in reps:
            r.advance_until(t)
        min(reps, key=lambda r: r.outstanding).submit(rid)


def _closed_loop(steps: StepModel, sched: Scheduler, replicas: int, traffic: Traffic, book: Book,
                 rng: np.random.Generator) -> list[Replica]:
    """N clients, each sending its next request when its last one finishes, until the duration ends;
    client c talks to replica c mod R (round-robin over clients). Clients start within the first
    CLIENT_STAGGER_S seconds, in random order."""
    n = traffic.concurrency
    batch = 4096
    pool = {"p": traffic.prompt.sample(rng, batch, 0), "g": traffic.gen.sample(rng, batch, 1), "i": 0}

    def draw() -> tuple[int, int]:
        if pool["i"] >= batch:
            pool["p"], pool["g"], pool["i"] = traffic.prompt.sample(rng, batch, 0), traffic.gen.sample(rng, batch, 1), 0
        i = pool["i"]
        pool["i"] += 1
        return int(pool["p"][i]), int(pool["g"][i])

    reps: list[Replica] = []

    def make(r_index: int) -> Replica:
        def on_finish(rid: int, t: float, r_index=r_index) -> None:
            if t < traffic.duration_s and book.n < MAX_REQUESTS:
                p, g = draw()
                reps[r_index].submit(book.add(t, p, g))
        return Replica(steps, sched, book, on_finish)

    reps.extend(make(i) for i in range(replicas))
    # Clients start at random offsets within the first CLIENT_STAGGER_S seconds: real clients drift apart
    # (network, tokenizer and scheduling jitter) instead of moving in lockstep when all lengths are equal.
    starts = np.sort(rng.uniform(0.0, CLIENT_STAGGER_S, n)) if n > 1 else np.zeros(1)
    for c in range(n):
        p, g = draw()
        reps[c % replicas].submit(book.add(float(starts[c]), p, g))
    return reps


def measure(book: Book, reps: list[Replica], duration_s: float, horizon: float, slo: Slo | None) -> Metrics:
    n = book.n
    arrival, first, finish = book.arrival[:n], book.first[:n], book.finish[:n]
    rejected = book.rejected[:n]
    end = max([r.now for r in reps] + [duration_s])
    first_c = np.where(np.isnan(first), end, first)
    finish_c = np.where(np.isnan(finish), end, finish)
    served = ~rejected
    ttft = (first_c - arrival)[served]
    e2e = (finish_c - arrival)[served]
    gen = book.gen[:n]
    multi = served & (gen > 1)
    tpot = ((finish_c - first_c)[multi] / (gen[multi] - 1))
    done = ~np.isnan(finish) & served
    elapsed = max(end, duration_s)
    tokens = float(gen[done].sum())
    busy = sum(r.busy_s for r in reps)
    pool_tokens = sum((r.s.total_blocks or 0) * r.s.block_tokens for r in reps) / max(len(reps), 1)
    kv_util = (sum(r.kv_token_seconds for r in reps) / busy / pool_tokens) if busy and pool_tokens else 0.0
    littles_l = sum(r.in_system_seconds for r in reps) / elapsed
    lam_w = float(((finish_c - arrival)[served]).sum()) / elapsed
    m = Metrics(
        requests=n, finished=int(done.sum()), rejected=int(rejected.sum()), duration_s=duration_s, elapsed_s=elapsed,
        throughput_tok_s=tokens / elapsed, goodput_rps=0.0, ttft_s=_pct(ttft), tpot_s=_pct(tpot), e2e_s=_pct(e2e),
        mean_batch=(sum(r.seq_seconds for r in reps) / busy) if busy else 0.0, kv_utilization=kv_util,
        preemptions=sum(r.preemptions for r in reps), littles_law_l=littles_l, littles_law_lambda_w=lam_w,
    )
    ok = done.copy()
    s = slo or Slo()
    all_ttft = first_c - arrival
    all_tpot = np.where(gen > 1, (finish_c - first_c) / np.maximum(gen - 1, 1), 0.0)
    if s.ttft_p95_s is not None:
        ok &= all_ttft <= s.ttft_p95_s
    if s.tpot_p95_s is not None:
        ok &= all_tpot <= s.tpot_p95_s
    if s.e2e_p95_s is not None:
        ok &= (finish_c - arrival) <= s.e2e_p95_s
    m.goodput_rps = float(ok.sum()) / duration_s
    m.misses = slo_misses(m, s)
    m.meets_slo = not m.misses
    return m


def slo_misses(m: Metrics, s: Slo) -> list[str]:
    """Which targets the run misses, in words; rejected or unfinished requests miss every target."""
    out = []
    if s.ttft_p95_s is not None and m.ttft_s["p95"] > s.ttft_p95_s:
        out.append(f"p95 TTFT {m.ttft_s['p95']:.3g} s > {s.ttft_p95_s:g} s")
    if s.tpot_p95_s is not None and m.tpot_s["p95"] > s.tpot_p95_s:
        out.append(f"p95 TPOT {m.tpot_s['p95']:.3g} s > {s.tpot_p95_s:g} s")
    if s.e2e_p95_s is not None and m.e2e_s["p95"] > s.e2e_p95_s:
        out.append(f"p95 end-to-end {m.e2e_s['p95']:.3g} s > {s.e2e_p95_s:g} s")
    if s.min_goodput_rps is not None and m.goodput_rps < s.min_goodput_rps:
        out.append(f"goodput {m.goodput_rps:.3g} req/s < {s.min_goodput_rps:g}")
    unserved = m.rejected + (m.requests - m.rejected - m.finished)
    if unserved > 0.05 * max(m.requests, 1):
        out.append(f"{unserved} of {m.requests} requests refused or unfinished")
    return out

