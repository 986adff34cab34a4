"""Candidate search for `recommend` and `compare`: which configurations of each (quant, GPU count) are
feasible, and for the others, the closest one and the constraint it fails (pure; numpy).

Each (quant, GPU count) is one ``planner.search.grid.Group``, evaluated over arrays shaped
(KV dtype, host layers, context, concurrency). A configuration's *stage* is the index in ``CONSTRAINTS``
of the first constraint it fails: device memory with the headroom, then host memory (layers kept there
must fit the host), then the context, then the speed targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.search.rank import message
from planner.search.types import (
    CONSTRAINTS,
    CTX_STEP,
    FEASIBLE,
    MAX_CTX_POINTS,
    MAX_CONCURRENCY,
    Config,
    Miss,
    Search,
    min_ctx_needed,
)


def ctx_ceiling(s: Search) -> int:
    """The largest context any candidate could hold, so the grid is sized by memory, not by the model's
    claim (a trained context of 10^8 must not cost minutes and gigabytes): one sequence's cache in the
    full-attention layers, in the smallest KV dtype searched, must fit in all the memory there is (every
    GPU, plus the host when layers may be offloaded). Never above the trained context; never below
    the context the targets need (that one is always evaluated)."""
    from planner.errors import InputError
    from planner.estimate import ENGINE_KV_DTYPES
    from planner.physics.kvcache import get_kv_dtype, kv_bytes_per_token_layer, n_global_layers

    spec = s.resolved.spec
    top = spec.architecture.max_context
    n_global = n_global_layers(spec)
    if n_global == 0:  # sliding-window layers only: the cache stops growing at the window
        return top
    sizes = []
    for name in s.kv_dtypes or list(ENGINE_KV_DTYPES[s.engine]):
        try:
            sizes.append(kv_bytes_per_token_layer(spec, get_kv_dtype(name)))
        except InputError:
            continue
    if not sizes:
        return top
    gpus = max(s.only_gpus or [s.max_gpus])
    memory = s.hw.memory_bytes * gpus + (s.host.memory_bytes if s.offload and s.host is not None else 0)
    ceiling = memory // (min(sizes) * n_global) + 1
    return int(min(top, max(ceiling, min_ctx_needed(s))))


def ctx_grid(s: Search) -> np.ndarray:
    """Multiples of a step up to ``ctx_ceiling`` (included): CTX_STEP, or a multiple of it that keeps
    the grid to MAX_CTX_POINTS (``prepare`` has refused a needed context above the trained one)."""
    top = ctx_ceiling(s)
    step = CTX_STEP * max(1, -(-top // (CTX_STEP * MAX_CTX_POINTS)))
    grid = list(range(step, top + 1, step))
    if not grid or grid[-1] != top:
        grid.append(top)
    return np.array(grid, dtype=np.int64)


def gpu_counts(s: Search) -> list[int]:
    from planner.physics.quant import Engine
    from planner.spec.schema import DeviceKind

    if s.hw.kind is not DeviceKind.gpu:  # a CPU host or one unified-memory machine
        return [1] if s.only_gpus is None or 1 in s.only_gpus else []
    counts = s.only_gpus if s.only_gpus is not None else list(range(1, s.max_gpus + 1))
    from planner.physics.workload import layout_problem

    tensor_parallel = s.engine is Engine.vllm  # vLLM splits heads over TP ranks; the others split layers
    return [g for g in counts
            if layout_problem(s.resolved.spec, g if tensor_parallel else 1, 1 if tensor_parallel else g) is None]


def max_concurrency_limit(s: Search) -> int:
    from planner.physics import engines as eng
    from planner.physics.quant import Engine

    return eng.vllm_batch_defaults(s.hw)[1] if s.engine is Engine.vllm else MAX_CONCURRENCY


@dataclass
class GroupResult:
    """What one (quant, GPU count) contributes: per KV dtype, the best feasible configuration or the
    closest miss, and the answers' candidates."""

    feasible: list[Config]
    rejected: list[Miss]
    largest_ctx: list[Config]
    max_concurrency: list[Config]


@dataclass
class _Evaluated:
    """One group's grid over (kv, h, ctx) at the requested concurrency, with each (kv, h)'s stage."""

    q: object
    G: int
    B: int
    kvs: list
    wl_bits: float
    grid: object
    H: np.ndarray
    ctxs: np.ndarray
    need: int
    dev_ok: np.ndarray  # (kv, h, ctx): fits the device with the headroom
    stage: np.ndarray  # (kv, h)
    last: np.ndarray  # (kv, h): index of the largest such context
    speed: dict  # constraint → (kv, h) array of the value it bounds

    def config(self, k: int, hi: int, ci: int, bi: int = 0, grid=None, ctx=None, B=None) -> Config:
        g = grid if grid is not None else self.grid
        kv = self.kvs[k]
        return Config(
            quant=self.q.id, kv_dtype=kv.id, ctx=int(self.ctxs[ci] if ctx is None else ctx),
            concurrency=int(self.B if B is None else B), offload_layers=int(self.H[hi]), num_gpus=self.G,
            decode_tok_s=float(g.decode_tok_s[k, hi, 0, bi]), ttft_s=float(g.ttft_s[k, hi, 0, bi]),
            e2e_s=float(g.e2e_s[k, hi, 0, bi]), total_bytes=int(g.total_bytes[k, hi, ci, bi]),
            device_bytes=int(g.device_bytes), weight_bits=self.wl_bits,
            kv_bits=8 * kv.block_bytes / kv.block_elements)


def _groups(s: Search):
    """Yield (quant, num_gpus, Group, kv dtypes) for every supported combination."""
    from planner.errors import InputError
    from planner.estimate import ENGINE_KV_DTYPES, deployment
    from planner.physics.kvcache import get_kv_dtype, kv_bytes_per_token_layer
    from planner.search.grid import Group
    from planner.physics.workload import Workload

    kvs = []
    for name in s.kv_dtypes or list(ENGINE_KV_DTYPES[s.engine]):
        try:
            k = get_kv_dtype(name)
            kv_bytes_per_token_layer(s.resolved.spec, k)  # quantized caches need block-aligned rows
            kvs.append(k)
        except InputError:
            continue
    workload = Workload(ctx=4096, batch=s.concurrency, prompt_tokens=s.prompt, gen_tokens=s.gen)
    for q in s.quants:
        if q.id not in s.cache:  # the weight layout does not depend on the device
            try:
                s.cache[q.id] = deployment(s.resolved, s.hw, s.engine, q, ENGINE_KV_DTYPES[s.engine][0],
                                           workload, 1, host=s.host)
            except InputError:
                s.cache[q.id] = None
        base = s.cache[q.id]
        if base is None:
            continue
        base = base.model_copy(update={"hardware": s.hw})
        for g in gpu_counts(s):
            d = base if g == 1 else base.model_copy(update={"num_gpus": g})
            yield q, g, Group(d, s.efficiency), kvs


def _speed_ok(s: Search, grid) -> list[np.ndarray]:
    t = s.targets
    return [grid.decode_tok_s >= (t.min_tok_s or 0.0),
            grid.ttft_s <= (t.max_ttft_s if t.max_ttft_s is not None else np.inf),
            grid.e2e_s <= (t.max_e2e_s if t.max_e2e_s is not None else np.inf)]


def _last_true(mask: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(any, index of the last True) along ``axis``."""
    rev = np.flip(mask, axis=axis)
    return mask.any(axis=axis), mask.shape[axis] - 1 - rev.argmax(axis=axis)


def _evaluate(s: Search, q, G: int, group, kvs) -> _Evaluated:
    from planner.spec.schema import DeviceKind

    gguf_gpu = s.engine.reads_gguf and s.hw.kind is not DeviceKind.cpu
    H = np.arange(group.n_layers + 1) if (gguf_gpu and s.offload) else np.array([0])
    ctxs, need = ctx_grid(s), min_ctx_needed(s)
    grid = group.evaluate(kvs, H, ctxs, [s.concurrency])
    s.evaluated += grid.size
    dev_ok = (grid.device_fits & grid.headroom_ok(s.targets.headroom_fraction))[..., 0]
    both = dev_ok & grid.host_fits[..., 0]
    ctx_ok = both & (ctxs[None, None, :] >= need)
    shape = (len(kvs), len(H))
    speed = [np.broadcast_to(ok, (*shape, 1, 1))[:, :, 0, 0] for ok in _speed_ok(s, grid)]
    checks = [dev_ok.any(axis=2), both.any(axis=2), ctx_ok.any(axis=2), *speed]
    stage = np.full(shape, FEASIBLE)
    for i in reversed(range(len(checks))):
        stage = np.where(~checks[i], i, stage)
    _, last = _last_true(both, axis=2)
    values = {c: np.broadcast_to(v, (*shape, 1, 1))[:, :, 0, 0]
              for c, v in zip(CONSTRAINTS[3:], (grid.decode_tok_s, -grid.ttft_s, -grid.e2e_s))}
    wl_bits = 8 * group.d.layout.file_bytes / max(1, group.d.layout.n_params)
    return _Evaluated(q, G, s.concurrency, kvs, wl_bits, grid, H, ctxs, need, dev_ok, stage, last, values)


def _add_feasible(ev: _Evaluated, k: int, prefer: str, out: GroupResult) -> None:
    """The best feasible configuration of KV dtype ``k`` and the one with the largest context."""
    hs = np.flatnonzero(ev.stage[k] == FEASIBLE)
    if not hs.size:
        return
    hi = hs[np.argmax(ev.speed["min_tok_s"][k, hs])] if prefer == "speed" else hs[0]
    out.feasible.append(ev.config(k, hi, ev.last[k, hi]))
    # The largest context across host-layer counts (more host layers leave more device room).
    hl = hs[np.argmax(ev.ctxs[ev.last[k, hs]])]
    out.largest_ctx.append(ev.config(k, hl, ev.last[k, hl]))


def _miss_ctx(ev: _Evaluated, c: str, k: int, hi: int) -> int:
    """The context index a miss is reported at: the needed context when nothing fits the device (it
    fails there too); when the host is what fails, the smallest context from the needed one up that fits
    the device (the host fails there), else the smallest that fits the device; else the largest that fits."""
    at_need = int(min(np.searchsorted(ev.ctxs, ev.need), len(ev.ctxs) - 1))
    if c == "memory":
        return at_need
    if c == "host_memory":
        ok = ev.dev_ok[k, hi]
        return at_need + int(np.argmax(ok[at_need:])) if ok[at_need:].any() else int(np.argmax(ok))
    return int(ev.last[k, hi])


def _closeness(ev: _Evaluated, c: str, k: int, hs: np.ndarray) -> np.ndarray:
    """Larger is closer to passing ``c``."""
    if c in ("memory", "host_memory"):
        nbytes = ev.grid.total_bytes if c == "memory" else ev.grid.host_bytes
        return np.array([-float(nbytes[k, h, _miss_ctx(ev, c, k, h), 0]) for h in hs])
    if c == "min_ctx":
        return ev.ctxs[ev.last[k, hs]].astype(float)
    return ev.speed[c][k, hs].astype(float)


def _closest_miss(s: Search, ev: _Evaluated, k: int) -> Miss | None:
    top = int(ev.stage[k].max())
    if top == FEASIBLE:
        return None
    c = CONSTRAINTS[top]
    hs = np.flatnonzero(ev.stage[k] == top)
    closeness = _closeness(ev, c, k, hs)
    j = int(np.argmax(closeness))
    hi, ci = int(hs[j]), _miss_ctx(ev, c, k, int(hs[j]))
    cfg = ev.config(k, hi, ci)
    p, r, why = _predicted_required(s, ev, c, cfg, (k, hi, ci, 0))
    return Miss(top, float(closeness[j]), cfg, p, r, why)


def _predicted_required(s: Search, ev: _Evaluated, c: str, cfg: Config, at: tuple) -> tuple[float, float, str]:
    """The value constraint ``c`` bounds, as predicted for ``cfg`` and as allowed, and the message."""
    t, g = s.targets, ev.grid
    if c == "memory":
        p, r = float(g.total_bytes[at]), float(g.device_bytes * (1 - t.headroom_fraction))
        per_gpu, usable = float(g.per_gpu_bytes[at]), float(g.device_bytes / ev.G)
        if p <= r and per_gpu > usable:  # the total fits; the most loaded GPU does not
            return per_gpu, usable, message("gpu_memory", per_gpu, usable, t.headroom_fraction)
        if p <= r:
            return p, r, f"the engine's fixed reservations do not fit {s.hw.id}'s device memory"
    elif c == "host_memory":
        p, r = float(g.host_bytes[at]), float(s.host.memory_bytes)
    elif c == "min_ctx":
        p, r = float(cfg.ctx), float(ev.need)
    else:
        p = {"min_tok_s": cfg.decode_tok_s, "max_ttft": cfg.ttft_s, "max_e2e": cfg.e2e_s}[c]
        r = float({"min_tok_s": t.min_tok_s, "max_ttft": t.max_ttft_s, "max_e2e": t.max_e2e_s}[c])
    return p, r, message(c, p, r, t.headroom_fraction)


def _max_concurrency(s: Search, ev: _Evaluated, group) -> list[Config]:
    """Per KV dtype, the most sequences of ``need`` tokens that fit and meet the targets."""
    Bs = np.arange(1, max_concurrency_limit(s) + 1)
    grid = group.evaluate(ev.kvs, ev.H, [ev.need], Bs)
    s.evaluated += grid.size
    ok = grid.fits & grid.headroom_ok(s.targets.headroom_fraction)
    for sp in _speed_ok(s, grid):
        ok = ok & sp
    found, last = _last_true(ok[:, :, 0, :], axis=2)
    out = []
    for k in range(len(ev.kvs)):
        if not found[k].any():
            continue
        most = np.where(found[k], last[k], -1)
        hi = int(np.argmax(most))
        bi = int(most[hi])
        out.append(ev.config(k, hi, 0, bi, grid=grid, ctx=ev.need, B=Bs[bi]))
    return out


def evaluate_group(s: Search, q, G: int, group, kvs, prefer: str) -> GroupResult:
    ev = _evaluate(s, q, G, group, kvs)
    out = GroupResult([], [], [], [])
    for k in range(len(kvs)):
        _add_feasible(ev, k, prefer, out)
        miss = _closest_miss(s, ev, k)
        if miss is not None:
            out.rejected.append(miss)
    out.max_concurrency = _max_concurrency(s, ev, group)
    return out


def search_all(s: Search, prefer: str) -> list[GroupResult]:
    return [evaluate_group(s, q, G, group, kvs, prefer) for q, G, group, kvs in _groups(s) if kvs]
