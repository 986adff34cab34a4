"""One workload across many devices: the pre-purchase table (pure; no printing).

For each device: the fewest GPUs (1 … 8) with which some configuration fits in device memory (no host
offload) with the headroom and meets the targets at ``ctx``; the best quant at that count by the
``recommend`` objective; its decode speed, TTFT, largest context and most concurrent sequences at
``ctx``; and the launch price per token/s: launch price × GPUs ÷ aggregate decode tok/s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from planner.search.types import Targets

MAX_GPUS = 8
Sort = Literal["tok_s", "price", "memory"]


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
    constraint: str | None = None
    reason: str | None = None


def device_ids(gpus: str | None, all_devices: bool) -> list[str]:
    """The names to compare, each once, in the order given."""
    from planner.spec import catalog
    from planner.errors import InputError
    from planner.spec.schema import DeviceKind

    if all_devices:
        return [h for h in catalog.hardware().ids() if catalog.hardware().items[h].kind is not DeviceKind.cpu]
    names = list(dict.fromkeys(g.strip() for g in (gpus or "").split(",") if g.strip()))
    if not names:
        raise InputError("give --gpus a,b,c or --all")
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
                efficiency=None) -> CompareRow:
    from planner.search.recommend import prepare
    from planner.search.rank import best as best_of
    from planner.search.candidates import gpu_counts, search_all

    t = targets.model_copy(update={"min_ctx": ctx})
    s = prepare(model, hw.id, engine, prompt=prompt, gen=gen, concurrency=concurrency, targets=t,
                max_gpus=MAX_GPUS, quant=quant, kv_dtype=kv_dtype, offload=False, hardware=hw, ctx_option="--ctx",
                efficiency=efficiency)
    s.cache = cache
    last = None
    for g in gpu_counts(s):
        s.only_gpus = [g]
        results = search_all(s, prefer)
        best = best_of([c for r in results for c in r.feasible], prefer)
        last = results
        if best is None:
            continue
        conc = [c for r in results for c in r.max_concurrency if (c.quant, c.kv_dtype) == (best.quant, best.kv_dtype)]
        usd = hw.price.launch_usd if hw.price else None
        agg = best.decode_tok_s * best.concurrency
        return CompareRow(gpu=hw.id, name=hw.name, memory_gib=hw.memory_bytes / 2**30, fits=True,
                          best_quant=best.quant, kv_dtype=best.kv_dtype, decode_tok_s=best.decode_tok_s,
                          ttft_s=best.ttft_s, max_ctx=best.ctx, max_concurrency=conc[0].concurrency if conc else None,
                          num_gpus_needed=g, price_per_tok_s=(usd * g / agg) if usd else None, launch_usd=usd)
    constraint, reason = _why(last or [], s)
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
            efficiencies: dict | None = None) -> list[CompareRow]:
    """``efficiencies``: per device id, the efficiency to use instead of the engine's defaults (a
    calibrated device, e.g. ``local``)."""
    from planner.errors import InputError

    if sort not in ("tok_s", "price", "memory"):
        raise InputError(f"--sort takes tok_s, price or memory, not '{sort}'")
    cache: dict = {}
    rows = [compare_one(model, hw, engine, ctx, quant, kv_dtype, prompt, gen, concurrency, targets or Targets(),
                        prefer, cache, (efficiencies or {}).get(hw.id)) for hw in _devices(gpus)]
    inf = float("inf")
    keys = {
        "tok_s": lambda r: (not r.fits, -(r.decode_tok_s or 0.0), r.gpu),
        "price": lambda r: (not r.fits, r.price_per_tok_s if r.price_per_tok_s is not None else inf, r.gpu),
        "memory": lambda r: (not r.fits, -r.memory_gib, r.gpu),
    }
    return sorted(rows, key=keys[sort])
