"""`planner fleet` as a library call: size a fleet per device and price it (pure apart from catalog reads).

Rows follow the JSON contract of docs/fleet.md: one per device, cheapest layout meeting the SLOs first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.physics.engines import get_engine
from planner.physics.quant import Engine
from planner.search import economics as econ
from planner.serving import handoff
from planner.serving.capacity import FleetQuery, Progress, Sized, size_device
from planner.serving.engines import EngineKnobs, scheduler_for
from planner.serving.simulate import Metrics, Slo, Traffic

ROW_KEYS = ("gpu", "meets_slo", "quant", "kv_dtype", "tp", "pp", "replicas", "gpus", "goodput_rps",
            "throughput_tok_s", "ttft_p50_s", "ttft_p95_s", "ttft_p99_s", "tpot_p50_s", "tpot_p95_s", "e2e_p50_s",
            "e2e_p95_s", "mean_batch", "kv_utilization", "preemptions", "usd_per_hour", "usd_per_million_tokens",
            "energy_kwh_per_million_tokens", "commands", "manifests")


@dataclass
class FleetRow:
    values: dict
    reason: str | None = None
    misses: list[str] = field(default_factory=list)
    deployment: object | None = None  # one replica, for sweeps and the check stage
    slots: int | None = None
    ctx: int | None = None

    def __getitem__(self, key):
        return self.values[key]


def _row(s: Sized, hw, q: FleetQuery, price_override: float | None) -> FleetRow:
    if s.layout is None or s.metrics is None:
        vals = {k: None for k in ROW_KEYS}
        vals.update(gpu=s.gpu, meets_slo=False, commands=[], manifests=[])
        return FleetRow(vals, s.reason, ctx=s.ctx)
    m: Metrics = s.metrics
    lay = s.layout
    d = s.deployment
    knobs = EngineKnobs(slots=lay.slots, slot_ctx=s.ctx, prefix_hit=q.knobs.prefix_hit,
                        max_num_seqs=q.knobs.max_num_seqs, max_num_batched_tokens=q.knobs.max_num_batched_tokens)
    sched, _ = scheduler_for(d, knobs)
    price = econ.usd_per_gpu_hour(hw, price_override)
    usd_h = econ.usd_per_hour(price, lay.gpus)
    prefix = q.knobs.prefix_hit > 0
    vals = {
        "gpu": s.gpu, "meets_slo": m.meets_slo, "quant": lay.quant, "kv_dtype": lay.kv_dtype, "tp": lay.tp,
        "pp": lay.pp, "replicas": lay.replicas, "gpus": lay.gpus, "goodput_rps": m.goodput_rps,
        "throughput_tok_s": m.throughput_tok_s, "ttft_p50_s": m.ttft_s["p50"], "ttft_p95_s": m.ttft_s["p95"],
        "ttft_p99_s": m.ttft_s["p99"], "tpot_p50_s": m.tpot_s["p50"], "tpot_p95_s": m.tpot_s["p95"],
        "e2e_p50_s": m.e2e_s["p50"], "e2e_p95_s": m.e2e_s["p95"], "mean_batch": m.mean_batch,
        "kv_utilization": m.kv_utilization, "preemptions": m.preemptions, "usd_per_hour": usd_h,
        "usd_per_million_tokens": econ.usd_per_million_tokens(usd_h, m.throughput_tok_s),
        "energy_kwh_per_million_tokens": econ.energy_kwh_per_million_tokens(hw, lay.gpus, m.throughput_tok_s),
        "commands": handoff.commands(d, sched, s.ctx, lay.replicas, prefix),
        "manifests": handoff.manifests(d, sched, s.ctx, lay.replicas, prefix),
    }
    return FleetRow(vals, s.reason, m.misses, d, lay.slots, s.ctx)


def workload_summary(q: FleetQuery, ctx_by_gpu: dict[str, int]) -> dict:
    t = q.traffic
    return {
        "model": q.model.spec.id, "engine": q.engine.value, "rps": t.rps, "concurrency": t.concurrency,
        "trace": t.trace, "prompt": "trace" if t.trace else t.prompt.describe(),
        "gen": "trace" if t.trace else t.gen.describe(), "burstiness": t.burstiness,
        "duration_s": t.duration_s, "seed": t.seed, "lb": t.lb, "prefix_hit": q.knobs.prefix_hit,
        "slo": {"ttft_p95_s": q.slo.ttft_p95_s, "tpot_p95_s": q.slo.tpot_p95_s, "e2e_p95_s": q.slo.e2e_p95_s,
                "min_goodput_rps": q.slo.min_goodput_rps},
        "max_gpus": q.max_gpus, "ctx": max(ctx_by_gpu.values()) if ctx_by_gpu else None,
    }


def fleet(model: str, gpus: list[str], engine: str, traffic: Traffic, slo: Slo, *, max_gpus: int = 64,
          quant: str | None = None, kv_dtype: str | None = None, tp: int | None = None, pp: int | None = None,
          replicas: int | None = None, knobs: EngineKnobs = EngineKnobs(), usd_per_gpu_hour: float | None = None,
          progress: Progress | None = None) -> tuple[list[FleetRow], dict]:
    """Rows (devices that meet the SLOs first, cheapest per million tokens first) and the workload."""
    from planner.errors import InputError
    from planner.estimate import resolve_hardware, resolve_model

    traffic.check()
    eng = get_engine(engine)
    if eng not in (Engine.vllm, Engine.llama_cpp, Engine.ollama):
        raise InputError(f"fleet simulates vllm, llama.cpp (llama-server) and ollama, not {eng.value}")
    if tp is not None and eng is not Engine.vllm and pp not in (None, 1):
        raise InputError("--pp needs --engine vllm")
    if not 1 <= max_gpus <= 4096:
        raise InputError("--max-gpus must be between 1 and 4096")
    for name, v in (("--tp", tp), ("--pp", pp), ("--replicas", replicas)):
        if v is not None and not 1 <= v <= 4096:
            raise InputError(f"{name} must be between 1 and 4096")
    if usd_per_gpu_hour is not None and not 0 <= usd_per_gpu_hour <= 1000:
        raise InputError("--usd-per-gpu-hour must be between 0 and 1000")
    q = FleetQuery(resolve_model(model), eng, traffic, slo, max_gpus, quant, kv_dtype, tp, pp, replicas, knobs)
    seen: dict[str, object] = {}
    for g in gpus:
        hw = resolve_hardware(g)
        seen.setdefault(hw.id, hw)
    rows, ctxs = [], {}
    for hw in seen.values():
        s = size_device(q, hw, progress)
        ctxs[hw.id] = s.ctx
        rows.append(_row(s, hw, q, usd_per_gpu_hour))
        if progress:
            progress(f"{hw.id} sized", 1)
    inf = float("inf")
    rows.sort(key=lambda r: (not r["meets_slo"], r["usd_per_million_tokens"] if r["usd_per_million_tokens"]
                             is not None else inf, r["gpus"] or inf, r["gpu"]))
    return rows, workload_summary(q, ctxs)
