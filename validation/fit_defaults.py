"""Fit the default efficiencies (planner/data/efficiency.yaml) to the published measurements.

    python validation/fit_defaults.py            # fit per engine x device family, print YAML and errors

For each group it prints the in-sample error and the leave-one-source-out error (each source's rows
predicted by a fit to the other sources; leave-one-model-out where a group has one source), which is
the honest figure for a device or build the defaults were not fitted to.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.efficiency import default_efficiency, device_family
from planner.estimate import get_engine
from planner.fit import fit, prediction_errors
from planner.validation import DEFAULT_DATA, observation, read_measurements


def observations(path=DEFAULT_DATA):
    groups = defaultdict(list)
    for m in read_measurements(path):
        o = observation(m)
        name = "llama.cpp" if m.engine == "ollama" else m.engine
        groups[(name, device_family(o.deployment.hardware))].append(o)
    return groups


def rule_of_thumb(path=DEFAULT_DATA) -> float:
    """The popular estimate tok/s = 0.55 × bandwidth / file size (tensor parallel: bandwidth × GPUs)."""
    errs = []
    for m in read_measurements(path):
        if not m.decode_tok_s:
            continue
        d = observation(m).deployment
        bandwidth = d.hardware.bandwidth_bytes_per_s * d.tp
        errs.append(100.0 * (0.55 * bandwidth / d.layout.file_bytes - m.decode_tok_s) / m.decode_tok_s)
    return median_abs(errs)


def median_abs(errs):
    return float(np.median(np.abs(errs))) if len(errs) else float("nan")


def main() -> None:
    all_cv_dec: list[float] = []
    for (engine, family), obs in sorted(observations().items()):
        base = default_efficiency(get_engine(engine), obs[0].deployment.hardware)
        if len(obs) < 4:
            print(f"# {engine}/{family}: {len(obs)} rows, kept the cited defaults")
            continue
        result = fit(obs, base, f"fitted to {len(obs)} rows of validation/measurements.csv")
        by = defaultdict(list)
        for o in obs:
            by[o.label].append(o)
        key = "source"
        if len(by) < 3:
            by = defaultdict(list)
            for o in obs:
                by[o.deployment.model.id].append(o)
            key = "model"
        cv_dec, cv_pre = [], []
        for rows in by.values():
            train = [o for o in obs if o not in rows]
            if not train:
                continue
            try:
                eff = fit(train, base, "cv").efficiency
            except InputError:  # a fold without the row kinds needed
                continue
            dec, pre = prediction_errors(rows, eff)
            cv_dec += dec
            cv_pre += pre
        all_cv_dec += cv_dec
        e = result.efficiency
        print(f"# {engine}/{family}: {len(obs)} rows; in-sample median |err| decode "
              f"{median_abs(result.decode_errors_pct):.1f}% prefill {median_abs(result.prefill_errors_pct):.1f}%; "
              f"leave-one-{key}-out decode {median_abs(cv_dec):.1f}% prefill {median_abs(cv_pre):.1f}%")
        print(f"    weight_bandwidth: {{{', '.join(f'{k}: {v:.3f}' for k, v in e.weight_bandwidth.items())}}}")
        print(f"    kv_bandwidth: {e.kv_bandwidth:.3f}")
        print(f"    compute: {{{', '.join(f'{k}: {v:.3f}' for k, v in e.compute.items())}}}")
        print(f"    step_overhead_s: {e.step_overhead_s:.6f}")
        print(f"    layer_overhead_s: {e.layer_overhead_s:.7f}")
        print(f"    prefill_overhead_s: {e.prefill_overhead_s:.5f}")
        if e.allreduce_latency_s is not None:
            print(f"    allreduce_latency_s: {e.allreduce_latency_s:.7f}")
    print(f"# rule of thumb tok/s = 0.55 x bandwidth / model size: median |err| {rule_of_thumb():.1f}% on the decode rows")
    ratios = 1.0 + np.array(all_cv_dec) / 100.0
    low, high = np.percentile(ratios, [10, 90])
    print(f"# decode error band (held-out measured/predicted, p10..p90 over {len(ratios)} rows): "
          f"low {low:.2f} high {high:.2f}")


if __name__ == "__main__":
    main()
