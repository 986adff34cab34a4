"""Views of `planner fleet`: the per-device table, the hand-off commands, the rate sweep and its plot."""

from __future__ import annotations

from planner.views.text import num, seconds, table, yes_no

HEADERS = ["device", "meets SLO", "quant", "TP x PP x replicas", "GPUs", "goodput req/s", "tok/s", "TTFT p95",
           "TPOT p95", "e2e p95", "batch", "KV use", "preempt", "USD/h", "USD/Mtok", "kWh/Mtok", "why not"]


def _money(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"${x:,.{digits}f}"


def table_rows(rows) -> list[list]:
    out = []
    for r in rows:
        v = r.values
        if v["quant"] is None:
            out.append([v["gpu"], "NO", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-",
                        r.reason or ""])
            continue
        why = "" if v["meets_slo"] else "; ".join(r.misses) or (r.reason or "")
        out.append([v["gpu"], yes_no(v["meets_slo"]), f"{v['quant']}/{v['kv_dtype']}",
                    f"{v['tp']} x {v['pp']} x {v['replicas']}", v["gpus"], num(v["goodput_rps"], 2),
                    num(v["throughput_tok_s"]), seconds(v["ttft_p95_s"]), seconds(v["tpot_p95_s"]),
                    seconds(v["e2e_p95_s"]), num(v["mean_batch"]), f"{100 * v['kv_utilization']:.0f}%",
                    v["preemptions"], _money(v["usd_per_hour"]), _money(v["usd_per_million_tokens"], 3),
                    num(v["energy_kwh_per_million_tokens"], 3), why])
    return out


def header(w: dict) -> str:
    load = (f"{w['rps']:g} req/s" if w["rps"] is not None else
            f"{w['concurrency']} clients (closed loop)" if w["concurrency"] is not None else f"trace {w['trace']}")
    slo = ", ".join(f"{k} <= {v:g}" for k, v in w["slo"].items() if v is not None) or "no SLO"
    sizes = "" if w["trace"] is not None else f", prompt {w['prompt']}, output {w['gen']} tokens"
    return (f"{w['model']} with {w['engine']}: {load}{sizes}; "
            f"{w['duration_s']:g} s simulated, seed {w['seed']}; SLO {slo}")


def text(rows, w: dict) -> str:
    parts = [header(w), "", table(table_rows(rows), HEADERS)]
    best = next((r for r in rows if r["meets_slo"]), None)
    if best is not None:
        parts += ["", f"Launch ({best['gpu']}):", *("  " + c for c in best["commands"]),
                  "Kubernetes manifests: --json (key 'manifests')"]
    parts += ["", "Prices: catalog on-demand USD per GPU-hour with sources (override with --usd-per-gpu-hour); "
                  "energy at board power. See docs/fleet.md."]
    return "\n".join(parts)


def markdown(rows, w: dict) -> str:
    lines = ["### planner fleet", "", header(w), "", "| " + " | ".join(HEADERS) + " |",
             "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table_rows(rows)]
    return "\n".join(lines)


def sweep_text(gpu: str, curve, knee: float | None) -> str:
    rows = [[f"{r:g}", yes_no(m.meets_slo), num(m.goodput_rps, 2), num(m.throughput_tok_s),
             seconds(m.ttft_s["p50"]), seconds(m.ttft_s["p95"]), seconds(m.tpot_s["p95"]), seconds(m.e2e_s["p95"]),
             num(m.mean_batch), m.preemptions] for r, m in curve]
    head = ["req/s", "meets SLO", "goodput", "tok/s", "TTFT p50", "TTFT p95", "TPOT p95", "e2e p95", "batch",
            "preempt"]
    knee_s = f"knee: {knee:g} req/s" if knee is not None else "knee: no swept rate meets the SLOs"
    return "\n".join([f"Rate sweep on {gpu} ({knee_s})", table(rows, head)])


def sweep_chart(curves: dict, path: str, title: str) -> None:
    """p95 TTFT and p95 TPOT against request rate, one line per device, knees marked."""
    from planner.views.plot import _pyplot, _save

    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for gpu, (curve, knee) in curves.items():
        rates = [r for r, _ in curve]
        a.plot(rates, [m.ttft_s["p95"] for _, m in curve], marker="o", label=gpu)
        b.plot(rates, [m.tpot_s["p95"] for _, m in curve], marker="o", label=gpu)
        if knee is not None:
            a.axvline(knee, linestyle=":", alpha=0.5)
    a.set(xlabel="requests/s", ylabel="p95 TTFT (s)", yscale="log", title="time to first token")
    b.set(xlabel="requests/s", ylabel="p95 TPOT (s)", title="time per output token")
    a.legend()
    fig.suptitle(title)
    _save(fig, path)
