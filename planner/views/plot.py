"""Pictures: `plan --plot` (memory stacked against context, decode speed against context) and
`compare --plot` (bars per device). matplotlib is an optional extra (``pip install planner[plot]``)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from planner.errors import InputError, clean_name
from planner.spec.safeio import writable_target, write_bytes_atomic


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'planner[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


FORMATS = ("png", "svg", "pdf")


def target(path: str) -> Path:
    """Where ``--plot PATH`` writes: PATH itself when it ends in .png/.svg/.pdf, else PATH.png. A folder,
    device or FIFO is refused (checked before any work, and again when writing)."""
    raw = Path(path)
    if raw.is_dir() or str(path).endswith(("/", os.sep)):
        raise InputError(f"--plot needs a file name, not the folder {clean_name(str(path))}")
    if raw.exists() and not raw.is_file():
        raise InputError(f"--plot needs a regular file name; {clean_name(str(path))} is a device, FIFO or socket")
    suffix = raw.suffix.lower().lstrip(".")
    out = raw if suffix in FORMATS else raw.with_name(raw.name + ".png")
    writable_target(out)
    return out


def _save(fig, path: str) -> None:
    """Render to memory, then write through the one safe writer (regular file, atomic rename)."""
    out = target(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=out.suffix.lstrip(".").lower(), dpi=120, bbox_inches="tight")
    write_bytes_atomic(out, buffer.getvalue())


def plan_chart(model: str, e, path: str, nodes: int = 1, parallel=None, host: str | None = None,
               efficiency=None) -> None:
    """Left: device memory (weights, KV cache, overhead) stacked against context, with the usable
    capacity; right: decode tok/s per sequence at each context (one step, latency.decode_coefficients)."""
    import numpy as np

    from planner.spec import catalog

    from planner.physics import latency
    from planner.physics.efficiency import communication, default_efficiency
    from planner.estimate import DEFAULT_HOST, deployment, get_engine, resolve_model
    from planner.physics.performance import host_efficiency
    from planner.physics.quant import get_quant
    from planner.search.grid import Group
    from planner.units import GIB
    from planner.physics.workload import Workload

    plt = _pyplot()
    resolved = resolve_model(model)
    hw = catalog.load_hardware(e.gpu)
    h = e.offload.host_layers if e.offload else 0
    d = deployment(resolved, hw, get_engine(e.engine), get_quant(e.quant), e.kv_dtype,
                   Workload(ctx=e.ctx, batch=e.batch, prompt_tokens=e.prompt_tokens, gen_tokens=e.gen_tokens),
                   e.num_gpus, nodes, parallel, catalog.load_hardware(host or DEFAULT_HOST), h)
    top = max(resolved.spec.architecture.max_context, e.ctx)
    ctxs = np.unique(np.linspace(256, top, 256).astype(np.int64))
    g = Group(d, efficiency).evaluate([d.kv_dtype], [h], ctxs, [e.batch])
    parts = [g.weights_bytes, g.kv_cache_bytes, g.overhead_bytes]
    parts = [np.asarray(p).reshape(-1) / GIB for p in parts]
    eff = efficiency or default_efficiency(d.engine, d.hardware)
    k = latency.decode_coefficients(d, eff, host_efficiency(d), communication())
    tok_s = 1.0 / k.step_seconds(ctxs)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    ax1.stackplot(ctxs / 1024, *parts, labels=["weights", "KV cache", "overhead"],
                  colors=["#4c72b0", "#dd8452", "#8c8c8c"], alpha=0.85)
    ax1.axhline(g.device_bytes / GIB, color="#c44e52", linestyle="--", label=f"usable {g.device_bytes / GIB:.1f} GiB")
    ax1.axvline(e.ctx / 1024, color="black", linewidth=0.8, linestyle=":", label=f"ctx {e.ctx:,}")
    ax1.set(xlabel="context per sequence (K tokens)", ylabel="device memory (GiB)",
            title=f"memory: {e.quant}, kv {e.kv_dtype}, {e.batch} seq")
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.plot(ctxs / 1024, tok_s, color="#55a868")
    ax2.axvline(e.ctx / 1024, color="black", linewidth=0.8, linestyle=":")
    ax2.set(xlabel="context (K tokens)", ylabel="decode tok/s per sequence", ylim=(0, None),
            title="decode speed at each context")
    ax2.grid(alpha=0.3)
    gpus = f"{e.num_gpus} x {e.gpu}" if e.num_gpus > 1 else e.gpu
    fig.suptitle(f"{e.model} on {gpus} ({e.engine})")
    _save(fig, path)
    plt.close(fig)


def compare_chart(rows, path: str, title: str = "") -> None:
    """Decode tok/s per device (green fits, grey does not), and launch USD per tok/s where known."""
    plt = _pyplot()
    names = [r.gpu for r in rows]
    speed = [r.decode_tok_s or 0.0 for r in rows]
    colors = ["#55a868" if r.fits else "#bbbbbb" for r in rows]
    height = max(3.0, 0.3 * len(rows) + 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, height), sharey=True)
    y = range(len(rows))
    ax1.barh(y, speed, color=colors)
    for i, r in enumerate(rows):
        label = f"{r.best_quant}, {r.num_gpus_needed} GPU" if r.fits else "does not fit"
        ax1.text(speed[i], i, f" {label}", va="center", fontsize=7)
    ax1.set_yticks(list(y), names, fontsize=8)
    ax1.invert_yaxis()
    ax1.set(xlabel="decode tok/s per sequence", title="speed (best quant that fits)")
    ax1.grid(axis="x", alpha=0.3)
    price = [r.price_per_tok_s or 0.0 for r in rows]
    ax2.barh(y, price, color="#4c72b0")
    for i, p in enumerate(price):
        if not p:
            ax2.text(0, i, " no launch price", va="center", fontsize=7, color="#777777")
    ax2.set(xlabel="launch USD per tok/s (lower is better)", title="price per speed")
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(title, y=1.02)
    _save(fig, path)
    plt.close(fig)
