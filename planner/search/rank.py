"""Ranking for `recommend` and `compare`: the objective, the best pick per quant, and rejection reports.

The objective (``prefer``), as a sort key, smallest first:

* ``quality`` (default): configurations that keep every layer in device memory come first, then the most
  bits per weight, then the most bits per KV element (both capped at 16: f32 buys no quality over a
  bf16-trained model), then the fewest GPUs, the fewest host layers, the fastest decode and the largest
  context. Configurations with layers in host memory come after every fully-resident one, whatever their
  precision: f16 with 7 layers in host memory at 2 tok/s is not a better answer than q8_0 at 16 tok/s.
* ``speed``: the fastest per-sequence decode, then the fewest GPUs and host layers, then quality.
"""

from __future__ import annotations

from collections.abc import Callable

from planner.search.types import CONSTRAINTS, FEASIBLE, Config, Miss, Rejection


def bits(value: float) -> float:
    return min(value, 16.0)


def objective(c: Config, prefer: str) -> tuple:
    """Sort key, smallest first (see the module docstring)."""
    quality = (-bits(c.weight_bits), -bits(c.kv_bits))
    resources = (c.num_gpus, c.offload_layers)
    if prefer == "speed":
        return (-round(c.decode_tok_s, 9), *resources, *quality, -c.ctx)
    return (c.offload_layers > 0, *quality, *resources, -round(c.decode_tok_s, 9), -c.ctx)


def best(configs: list[Config], prefer: str) -> Config | None:
    return min(configs, key=lambda c: objective(c, prefer)) if configs else None


def best_by(configs: list[Config], value: Callable[[Config], float], prefer: str) -> Config | None:
    """Among the configurations with the largest ``value``, the best by the objective."""
    if not configs:
        return None
    top = max(value(c) for c in configs)
    return best([c for c in configs if value(c) == top], prefer)


def picks(results, prefer: str) -> list[Config]:
    """The best feasible configuration of each quant, best first."""
    by_quant: dict[str, list[Config]] = {}
    for r in results:
        for c in r.feasible:
            by_quant.setdefault(c.quant, []).append(c)
    return sorted((best(cs, prefer) for cs in by_quant.values()), key=lambda c: objective(c, prefer))


def closest_misses(results, feasible_quants: set[str]) -> dict[str, Miss]:
    """For each quant with no feasible configuration, its miss that got furthest (latest stage, closest)."""
    closest: dict[str, Miss] = {}
    for r in results:
        for m in r.rejected:
            q = m.config.quant
            if q in feasible_quants or m.stage == FEASIBLE:
                continue
            if q not in closest or (m.stage, m.closeness) > (closest[q].stage, closest[q].closeness):
                closest[q] = m
    return closest


def rejections(misses: dict[str, Miss]) -> list[Rejection]:
    keys = ("quant", "kv_dtype", "ctx", "concurrency", "offload_layers", "num_gpus")
    ordered = sorted(misses.values(), key=lambda m: objective(m.config, "quality"))
    return [Rejection(**{k: getattr(m.config, k) for k in keys}, constraint=CONSTRAINTS[m.stage],
                      predicted=m.predicted, required=m.required, message=m.message) for m in ordered]


def binding(found: bool, misses: dict[str, Miss]) -> tuple[str | None, str | None]:
    """With nothing feasible: the constraint that stops the configuration that got furthest, and why."""
    if found:
        return None, None
    if not misses:
        return "memory", "no supported quantization and KV dtype for this model and engine"
    m = max(misses.values(), key=lambda m: (m.stage, m.closeness, -bits(m.config.weight_bits)))
    c = m.config
    return CONSTRAINTS[m.stage], f"{c.quant} (kv {c.kv_dtype}, {c.num_gpus} GPU): {m.message}"


def message(c: str, p: float, r: float, headroom: float) -> str:
    """Why ``c`` rejects a configuration, with the predicted value ``p`` and the allowed one ``r``."""
    from planner.units import GIB

    if c == "memory":
        return f"needs {p / GIB:.2f} GiB of device memory; {r / GIB:.2f} GiB allowed with {headroom:.0%} headroom"
    if c == "gpu_memory":  # the most loaded GPU, when the total alone would fit
        return f"needs {p / GIB:.2f} GiB on the most loaded GPU; {r / GIB:.2f} GiB usable per GPU"
    if c == "host_memory":
        return f"needs {p / GIB:.2f} GiB of host memory; the host has {r / GIB:.2f} GiB"
    if c == "min_ctx":
        return f"largest context that fits is {p:,.0f} tokens; {r:,.0f} required"
    if c == "min_tok_s":
        return f"decodes {p:.1f} tok/s per sequence; {r:g} required"
    if c == "max_ttft":
        return f"time to first token {p:.3f} s; at most {r:g} s allowed"
    return f"end-to-end {p:.2f} s; at most {r:g} s allowed"
