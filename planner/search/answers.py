"""What `recommend` answers besides the ranking: each pick re-planned with the scalar model and its launch
commands, the largest context, the most concurrent sequences and the most output tokens within a budget."""

from __future__ import annotations

import numpy as np

from planner.estimate import Estimate
from planner.search.rank import best_by
from planner.search.candidates import max_concurrency_limit
from planner.search.types import Answers, Config, Recommendation, Search, min_ctx_needed


def plan_for(s: Search, c: Config) -> Estimate:
    """The scalar ``planner.estimate.plan`` estimate of one configuration."""
    from planner.estimate import plan, resolve
    from planner.physics.workload import Workload

    w = Workload(ctx=c.ctx, batch=c.concurrency, prompt_tokens=s.prompt, gen_tokens=s.gen)
    return plan(resolve(s.model, s.hw, quant=c.quant, engine=s.engine.value,
                kv_dtype=c.kv_dtype, workload=w, num_gpus=c.num_gpus,
                offload=c.offload_layers if c.offload_layers else "none", host=s.host_name,
                efficiency=s.efficiency))[0]


def recommendation(s: Search, c: Config) -> Recommendation:
    from planner.search import launch

    est = plan_for(s, c)
    return Recommendation(quant=c.quant, kv_dtype=c.kv_dtype, ctx=c.ctx, concurrency=c.concurrency,
                          offload_layers=c.offload_layers, num_gpus=c.num_gpus, plan=est,
                          commands=launch.commands(s, est))


def answers(s: Search, results, recs: list[Recommendation], prefer: str) -> Answers:
    largest = best_by([c for r in results for c in r.largest_ctx], lambda c: c.ctx, prefer)
    most = best_by([c for r in results for c in r.max_concurrency], lambda c: c.concurrency, prefer)
    gen_tokens, note = max_gen_tokens(s, recs[0]) if recs else (None, "no feasible configuration")
    return Answers(largest_ctx=largest, max_concurrency=most, max_concurrency_ctx=min_ctx_needed(s),
                   max_concurrency_capped=bool(most and most.concurrency >= max_concurrency_limit(s)),
                   max_gen_tokens=gen_tokens, max_gen_tokens_note=note)


def max_gen_tokens(s: Search, rec: Recommendation) -> tuple[int | None, str | None]:
    """The most output tokens whose end-to-end time stays within --max-e2e, for the top pick at its
    context: e2e(N) = TTFT + Σ_{i=1}^{N−1} t_step(P + i) (latency.decode_coefficients, scalar)."""
    from planner.physics import latency
    from planner.physics.efficiency import communication, default_efficiency
    from planner.estimate import deployment
    from planner.physics.performance import host_efficiency
    from planner.physics.quant import get_quant
    from planner.physics.workload import Workload

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
    steps = k.step_seconds(contexts)
    e2e = e.performance.ttft_s + np.concatenate([[0.0], np.cumsum(steps)])  # e2e[N − 1] for N = 1 …
    n = int(np.searchsorted(e2e, budget, side="right"))
    note = "capped by the context" if n >= room else None
    return min(n, room), note
