"""One workload across many devices: the pre-purchase table (pure; no printing).

For each device: the fewest GPUs (1 … 8) with which some configuration fits in device memory (no host
offload) with the headroom and meets the targets at ``ctx``; the best quant at that count by the
``recommend`` objective; its decode speed, TTFT, largest context and most concurrent sequences at
``ctx``; and the launch price per token/s: launch price × GPUs ÷ aggregate decode tok/s.

Every device is compared at formats of at least the same quality (``min_quality``, default a 4-bit K-quant
class: Q4_K_M, IQ4_XS, AWQ/GPTQ int4 or better), taking more GPUs where the model needs them, so rows are
comparable. Cost and energy per million output tokens come from the catalog's cited on-demand price per
GPU-hour and board power (planner.search.economics), at the aggregate decode speed.
"""

from __future__ import annotations

from planner.errors import FieldError

from typing import get_args

from pydantic import BaseModel, ConfigDict

from planner.physics.names import Sort
from planner.search.types import Targets

MAX_GPUS = 8
DEFAULT_MIN_QUALITY = "q4_k_m"
# Quality classes by effective bits per weight of the decoder's linears (a ladder, not a perplexity
# measurement): 4-bit group-128 GPU formats and IQ4_XS sit with Q4_K_M; Q4_0 and NF4 just below it.
QUALITY_RANK: dict[str, float] = {
    "f32": 16, "f16": 16, "bf16": 16, "fp8": 8, "int8": 8, "q8_0": 8, "q6_k": 6, "q5_k_m": 5.5, "q5_0": 5,
    "q4_k_m": 4.5, "iq4_xs": 4.5, "awq-int4": 4.5, "gptq-int4": 4.5, "mxfp4": 4.5, "nf4": 4.25, "q4_0": 4,
    "q3_k_m": 3.5, "q2_k": 2.5,
}


def quality_floor(name: str | None) -> float | None:
    """The rank a format must reach: a quant id's class, or None for 'any'."""
    from planner.errors import UnknownNameError

    key = (name or DEFAULT_MIN_QUALITY).strip().lower()
    if key == "any":
        return None
    if key not in QUALITY_RANK:
        raise UnknownNameError("quality floor", key, ["any", *QUALITY_RANK])
    return QUALITY_RANK[key]


def meets_quality(quant: str, floor: float | None) -> bool:
    return floor is None or QUALITY_RANK.get(quant, 0) >= floor


class CompareRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str
    name: str
    memory_gib: float
    fits: bool
    best_quant: str | None
    kv_dtype: str | None
    decode_tok_s: float | None
    ttft_s: float | None
    max_ctx: int | None
    max_concurrency: int | None
    num_gpus_needed: int | None
    price_per_tok_s: float | None
    launch_usd: float | None
    usd_per_million_tokens: float | None = None
    energy_kwh_per_million_tokens: float | None = None
    constraint: str | None = None
    reason: str | None = None


def device_ids(gpus: str | None, all_devices: bool) -> list[str]:
    """The names to compare, each once, in the order given."""
    from planner.spec import catalog
    from planner.spec.schema import DeviceKind

    if all_devices:
        return [h for h in catalog.hardware().ids() if catalog.hardware().items[h].kind is not DeviceKind.cpu]
    names = list(dict.fromkeys(g.strip() for g in (gpus or "").split(",") if g.strip()))
    if not names:
        raise FieldError("give {gpus} a,b,c or {all}", "gpus", "all")
    return names


def _devices(gpus: list) -> list:
    """Hardware profiles of ``gpus`` (names, or profiles already resolved such as ``--gpus local``), each
    device once (an id and its alias name the same device)."""
    from planner.spec import catalog

    out: dict[str, object] = {}
    for g in gpus:
        hw = g if not isinstance(g, str) else catalog.load_hardware(g)
        out.setdefault(hw.id, hw)
    return list(out.values())


def compare_one(model: str, hw, engine: str, ctx: int, quant: str | None, kv_dtype: str | None,
                prompt: int, gen: int, concurrency: int, targets: Targets, prefer: str, cache: dict,
                floor: float | None = None, usd_per_gpu_hour: float | None = None, efficiency=None) -> CompareRow:
    from planner.search.recommend import prepare
    from planner.search.rank import best as best_of
    from planner.search.candidates import gpu_counts, search_all

    t = targets.model_copy(update={"min_ctx": ctx})
    s = prepare(model, hw.id, engine, prompt=prompt, gen=gen, concurrency=concurrency, targets=t,
                max_gpus=MAX_GPUS, quant=quant, kv_dtype=kv_dtype, offload=False, hardware=hw, ctx_field="ctx",
                efficiency=efficiency)
    s.cache = cache
    from planner.search import economics as econ

    last, below_floor = None, False
    for g in gpu_counts(s):
        s.only_gpus = [g]
        results = search_all(s, prefer)
        feasible = [c for r in results for c in r.feasible]
        best = best_of([c for c in feasible if meets_quality(c.quant, floor)], prefer)
        below_floor = below_floor or (bool(feasible) and best is None)
        last = results
        if best is None:
            continue
        conc = [c for r in results for c in r.max_concurrency if (c.quant, c.kv_dtype) == (best.quant, best.kv_dtype)]
        usd = hw.price.launch_usd if hw.price else None
        agg = best.decode_tok_s * best.concurrency
        usd_h = econ.usd_per_hour(econ.usd_per_gpu_hour(hw, usd_per_gpu_hour), g)
        return CompareRow(gpu=hw.id, name=hw.name, memory_gib=hw.memory_bytes / 2**30, fits=True,
                          best_quant=best.quant, kv_dtype=best.kv_dtype, decode_tok_s=best.decode_tok_s,
                          ttft_s=best.ttft_s, max_ctx=best.ctx, max_concurrency=conc[0].concurrency if conc else None,
                          num_gpus_needed=g, price_per_tok_s=(usd * g / agg) if usd else None, launch_usd=usd,
                          usd_per_million_tokens=econ.usd_per_million_tokens(usd_h, agg),
                          energy_kwh_per_million_tokens=econ.energy_kwh_per_million_tokens(hw, g, agg))
    constraint, reason = _why(last or [], s)
    if below_floor:
        constraint, reason = "quality", f"only formats below the quality floor fit on up to {MAX_GPUS} GPUs"
    return CompareRow(gpu=hw.id, name=hw.name, memory_gib=hw.memory_bytes / 2**30, fits=False, best_quant=None,
                      kv_dtype=None, decode_tok_s=None, ttft_s=None, max_ctx=None, max_concurrency=None,
                      num_gpus_needed=None, price_per_tok_s=None,
                      launch_usd=hw.price.launch_usd if hw.price else None, constraint=constraint, reason=reason)


def _why(results, s) -> tuple[str | None, str | None]:
    from planner.search.types import CONSTRAINTS, FEASIBLE

    misses = [m for g in results for m in g.rejected if m.stage < FEASIBLE]
    if not misses:
        return "memory", "no supported configuration"
    m = max(misses, key=lambda m: (m.stage, m.closeness))
    return CONSTRAINTS[m.stage], f"{m.config.quant}, {m.config.num_gpus} GPU: {m.message}"


def compare(model: str, gpus: list, engine: str = "llama.cpp", ctx: int = 4096, quant: str | None = None,
            kv_dtype: str | None = None, prompt: int = 512, gen: int = 256, concurrency: int = 1,
            targets: Targets | None = None, prefer: str = "quality", sort: Sort = "tok_s",
            min_quality: str | None = None, usd_per_gpu_hour: float | None = None,
            efficiencies: dict | None = None) -> list[CompareRow]:
    """``min_quality``: a quant id whose quality class every row must reach, or 'any'; an explicit
    ``quant`` is compared as given. ``efficiencies``: per device id, the efficiency to use instead of the
    engine's defaults (a calibrated device, e.g. ``local``)."""
    if sort not in get_args(Sort):
        raise FieldError(f"{{sort}} takes {', '.join(get_args(Sort))}, not '{sort}'", "sort")
    if usd_per_gpu_hour is not None and not 0 <= usd_per_gpu_hour <= 1000:
        raise FieldError("{usd_per_gpu_hour} must be between 0 and 1000", "usd_per_gpu_hour")
    floor = None if quant else quality_floor(min_quality)
    cache: dict = {}
    rows = [compare_one(model, hw, engine, ctx, quant, kv_dtype, prompt, gen, concurrency, targets or Targets(),
                        prefer, cache, floor, usd_per_gpu_hour, (efficiencies or {}).get(hw.id))
            for hw in _devices(gpus)]
    inf = float("inf")
    keys = {
        "tok_s": lambda r: (not r.fits, -(r.decode_tok_s or 0.0), r.gpu),
        "price": lambda r: (not r.fits, r.price_per_tok_s if r.price_per_tok_s is not None else inf, r.gpu),
        "memory": lambda r: (not r.fits, -r.memory_gib, r.gpu),
        "cost": lambda r: (not r.fits, r.usd_per_million_tokens if r.usd_per_million_tokens is not None else inf,
                           r.gpu),
    }
    return sorted(rows, key=keys[sort])
