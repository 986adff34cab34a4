"""Reporting for validation/fit_defaults.py: device classes, the error table, the targets, and writing
planner/data/efficiency.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from planner.calibrate.validate import DEFAULT_DATA, observation, read_measurements

EFFICIENCY_YAML = Path(__file__).resolve().parent.parent / "planner" / "data" / "efficiency.yaml"

WORKSTATION = {"rtx-a6000", "rtx4000-ada", "rtx5000-ada", "rtx6000-ada", "rtx-pro-6000", "a40", "l40s", "l4", "a10",
               "a10g"}
DATACENTER_PREFIX = ("a100", "h100", "h200", "gh200", "v100", "b200", "t4")
DEVICE_CLASSES = ("nvidia geforce", "nvidia workstation", "nvidia datacenter", "nvidia other", "cpu", "apple base",
                  "apple pro", "apple max", "apple ultra", "amd", "multi-gpu")


def device_class(gpu: str, num_gpus: int) -> str:
    if num_gpus > 1:
        return "multi-gpu"
    if gpu in WORKSTATION:
        return "nvidia workstation"
    if gpu.startswith(DATACENTER_PREFIX):
        return "nvidia datacenter"
    if gpu.startswith("rtx"):
        return "nvidia geforce"
    if re.fullmatch(r"m\d", gpu):
        return "apple base"
    for tier in ("pro", "max", "ultra"):
        if re.fullmatch(rf"m\d-{tier}(-\w+)?", gpu):
            return f"apple {tier}"
    if gpu.startswith(("mi", "rx")):
        return "amd"
    from planner.spec import catalog

    if catalog.load_hardware(gpu).kind.value == "cpu":  # llama.cpp on CPU cores (planner/physics/cpu.py)
        return "cpu"
    return "nvidia other"


def rule_of_thumb_errors(path=DEFAULT_DATA) -> list[tuple[str, float]]:
    """(class, % error) of tok/s = 0.55 × bandwidth / file size (tensor parallel: bandwidth × GPUs)."""
    out = []
    for m in read_measurements(path):
        if not m.decode_tok_s:
            continue
        d = observation(m).deployment
        bandwidth = d.hardware.bandwidth_bytes_per_s * d.tp
        out.append((device_class(m.gpu, m.num_gpus),
                    100.0 * (0.55 * bandwidth / d.layout.file_bytes - m.decode_tok_s) / m.decode_tok_s))
    return out


def _stats(errs) -> tuple[int, float, float]:
    a = np.abs(np.array([e for e in errs if np.isfinite(e)]))
    if not len(a):
        return 0, float("nan"), float("nan")
    return len(a), float(np.median(a)), float(np.percentile(a, 90))


def _fmt(x: float) -> str:
    return "  n/a" if not np.isfinite(x) else f"{x:5.1f}"


def print_table(table, rule) -> None:
    """Median (p90) |error| % per metric and device class: leave-one-device-out, in-sample, 0.55 x BW rule."""
    print("\n# median (p90) |error| %; LODO = leave-one-device-out, over the rows of the cross-validated groups")
    print("# metric   class                 rows  LODO rows  LODO med (p90)   in-sample med (p90)   0.55xBW med")
    for metric in ("decode", "prefill"):
        classes = [c for c in DEVICE_CLASSES if any(r[1] == c and r[2] == metric for r in table)]
        for cls in classes + ["all single-GPU"]:
            rows = [r for r in table if r[2] == metric and (r[1] == cls or (cls == "all single-GPU" and not r[6]))]
            n, cv_med, cv_p90 = _stats([r[4] for r in rows if r[5] == "device"])
            _, in_med, in_p90 = _stats([r[3] for r in rows])
            rule_rows = [e for c, e in rule if c == cls or (cls == "all single-GPU" and c != "multi-gpu")]
            _, rule_med, _ = _stats(rule_rows) if metric == "decode" else (0, float("nan"), 0)
            print(f"  {metric:8} {cls:20} {len(rows):5}  {n:9}  {_fmt(cv_med)} ({_fmt(cv_p90)})   "
                  f"{_fmt(in_med)} ({_fmt(in_p90)})        {_fmt(rule_med)}")
    other = sorted({(r[0], r[5]) for r in table if r[5] != "device"})
    for engine, kind in other:
        rows = [r for r in table if r[0] == engine and r[5] == kind]
        n, med, p90 = _stats([r[4] for r in rows])
        how = "cited defaults, not fitted" if kind == "cited" else f"one device only, leave-one-{kind}-out"
        print(f"  ({engine}, {how}: median {_fmt(med)}%, p90 {_fmt(p90)}% over {n} rows)")


def targets(table) -> None:
    """The targets of docs/accuracy.md, checked on the leave-one-device-out errors."""
    def lodo(metric, multi):
        return [r[4] for r in table if r[2] == metric and r[6] == multi and r[5] == "device"]

    _, dm, dp = _stats(lodo("decode", False))
    _, mm, _ = _stats(lodo("decode", True))
    _, pm, pp = _stats(lodo("prefill", False))
    worst = max(((c, _stats([r[4] for r in table if r[1] == c and r[2] == "decode" and r[5] == "device"])[1])
                 for c in DEVICE_CLASSES if c != "multi-gpu"), key=lambda x: -1 if np.isnan(x[1]) else x[1])
    checks = [("decode median <= 8%", dm, 8), ("decode p90 <= 20%", dp, 20),
              (f"worst decode class median <= 15% ({worst[0]})", worst[1], 15), ("multi-GPU decode median <= 15%", mm, 15),
              ("prefill median <= 15%", pm, 15), ("prefill p90 <= 35%", pp, 35)]
    print("\n# targets (leave-one-device-out, single-GPU rows unless stated)")
    for name, value, limit in checks:
        print(f"  {'met ' if value <= limit else 'MISS'} {name}: {value:.1f}%")


def _fmt_table(d: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:.3f}" for k, v in d.items()) + "}"


def yaml_block(e) -> str:
    lines = [
        f"    weight_bandwidth: {_fmt_table(e.weight_bandwidth)}",
        f"    kv_bandwidth: {e.kv_bandwidth:.3f}",
        f"    compute: {_fmt_table(e.compute)}",
        f"    step_overhead_s: {e.step_overhead_s:.6f}",
        f"    layer_overhead_s: {e.layer_overhead_s:.7f}",
        f"    prefill_overhead_s: {e.prefill_overhead_s:.5f}",
    ]
    if e.allreduce_latency_s is not None:
        lines.append(f"    allreduce_latency_s: {e.allreduce_latency_s:.7f}")
    if e.matvec_flops_per_core_cycle:
        lines.append(f"    matvec_flops_per_core_cycle: {_fmt_table(e.matvec_flops_per_core_cycle)}")
    if e.gemm_tensor_share:
        lines.append(f"    gemm_tensor_share: {_fmt_table(e.gemm_tensor_share)}")
    if e.score_bytes_per_pair_head:
        lines.append(f"    score_bytes_per_pair_head: {e.score_bytes_per_pair_head:.2f}")
    return "\n".join(lines) + "\n"


def group_note(table, engine: str, family_gpus: set[str], n_rows: int, how: str) -> str:
    """The 'Values fitted by' note of one group: what was fitted, on how many rows, with which errors."""
    rows = [r for r in table if r[0] == engine and r[7] in family_gpus]
    parts = []
    for metric in ("decode", "prefill"):
        sel = [r for r in rows if r[2] == metric]
        _, ins, _ = _stats([r[3] for r in sel])
        cv = [r[4] for r in sel if np.isfinite(r[4])]
        kind = sel[0][5] if sel else "device"
        _, cvm, cvp = _stats(cv)
        parts.append(f"{metric} in-sample median |error| {_fmt(ins).strip()}%, leave-one-{kind}-out "
                     f"{_fmt(cvm).strip()}% (p90 {_fmt(cvp).strip()}%)" if sel else f"{metric}: no rows")
    return (f"      Values fitted by validation/fit_defaults.py ({how}) to the {n_rows} {engine}\n"
            f"      rows on these devices in planner/data/measurements.csv: {'; '.join(parts)}.\n")


def write_yaml(fitted: dict, band: tuple[float, float], hop_s: float | None = None) -> None:
    """Replace each fitted group's numbers and its 'Values fitted by' note; keep the cited source text."""
    text = EFFICIENCY_YAML.read_text(encoding="utf-8")
    for (engine, family), (e, note) in fitted.items():
        block = re.compile(rf"(^{re.escape(engine)}:\n(?:  .*\n|\n)*?  {family}:\n)((?:    (?!source).*\n)+)"
                           rf"(    source: >-\n)((?:      .*\n)+)", re.M)
        m = block.search(text)
        if m is None:
            raise SystemExit(f"no {engine}/{family} block in {EFFICIENCY_YAML}")
        cited = m.group(4).split("      Values fitted by")[0]
        text = text[:m.start()] + m.group(1) + yaml_block(e) + m.group(3) + cited + note + text[m.end():]
    if hop_s is not None:
        text = re.sub(r"(\n  pipeline_hop_s: )[0-9.]+", rf"\g<1>{hop_s:.6f}", text)
    text = re.sub(r"(decode_error_band:\n  low: )[0-9.]+(\n  high: )[0-9.]+",
                  rf"\g<1>{band[0]:.2f}\g<2>{band[1]:.2f}", text)
    text = re.sub(r"(decode_error_band:\n(?:  .*\n)*?  source: ).*",
                  rf"\g<1>validation/fit_defaults.py on planner/data/measurements.csv, {band[2]} held-out decode rows "
                  "(leave-one-device-out; leave-one-model-out for groups measured on one device)", text)
    EFFICIENCY_YAML.write_text(text, encoding="utf-8")
    print(f"# wrote {EFFICIENCY_YAML}")
