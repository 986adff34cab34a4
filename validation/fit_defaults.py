"""Fit the default efficiencies (planner/data/efficiency.yaml) to the published measurements.

    python validation/fit_defaults.py            # fit per engine x device family, print YAML and errors
    python validation/fit_defaults.py --write    # ... and write the fitted values into efficiency.yaml

For each group it prints the in-sample error and the leave-one-source-out error (each source's rows
predicted by a fit to the other sources; leave-one-model-out where a group has one source), which is
the honest figure for a device or build the defaults were not fitted to.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from planner.physics.efficiency import default_efficiency, device_family
from planner.errors import InputError
from planner.estimate import get_engine
from planner.calibrate.fit import error_band, fit, prediction_errors
from planner.calibrate.validate import DEFAULT_DATA, observation, read_measurements


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


EFFICIENCY_YAML = Path(__file__).resolve().parent.parent / "planner" / "data" / "efficiency.yaml"


def yaml_block(e) -> str:
    lines = [
        f"    weight_bandwidth: {{{', '.join(f'{k}: {v:.3f}' for k, v in e.weight_bandwidth.items())}}}",
        f"    kv_bandwidth: {e.kv_bandwidth:.3f}",
        f"    compute: {{{', '.join(f'{k}: {v:.3f}' for k, v in e.compute.items())}}}",
        f"    step_overhead_s: {e.step_overhead_s:.6f}",
        f"    layer_overhead_s: {e.layer_overhead_s:.7f}",
        f"    prefill_overhead_s: {e.prefill_overhead_s:.5f}",
    ]
    if e.allreduce_latency_s is not None:
        lines.append(f"    allreduce_latency_s: {e.allreduce_latency_s:.7f}")
    return "\n".join(lines) + "\n"


def write_yaml(fitted: dict, band: tuple[float, float]) -> None:
    """Replace each fitted group's numbers and its 'Values fitted by' note; keep the cited text."""
    text = EFFICIENCY_YAML.read_text(encoding="utf-8")
    for (engine, family), (e, note) in fitted.items():
        block = re.compile(rf"(^{re.escape(engine)}:\n(?:  .*\n|\n)*?  {family}:\n)((?:    (?!source).*\n)+)"
                           rf"(    source: >-\n)((?:      .*\n)+)", re.M)
        m = block.search(text)
        if m is None:
            raise SystemExit(f"no {engine}/{family} block in {EFFICIENCY_YAML}")
        cited = m.group(4).split("      Values fitted by")[0]
        text = text[:m.start()] + m.group(1) + yaml_block(e) + m.group(3) + cited + note + text[m.end():]
    text = re.sub(r"(decode_error_band:\n  low: )[0-9.]+(\n  high: )[0-9.]+",
                  rf"\g<1>{band[0]:.2f}\g<2>{band[1]:.2f}", text)
    EFFICIENCY_YAML.write_text(text, encoding="utf-8")


def main() -> None:
    write = "--write" in sys.argv[1:]
    fitted: dict = {}
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
        scores = (f"in-sample median |error| decode {median_abs(result.decode_errors_pct):.1f}%, prefill "
                  f"{median_abs(result.prefill_errors_pct):.1f}%; leave-one-{key}-out decode "
                  f"{median_abs(cv_dec):.1f}%, prefill {median_abs(cv_pre):.1f}%").replace("nan%", "no rows")
        print(f"# {engine}/{family}: {len(obs)} rows; {scores}")
        print(yaml_block(e), end="")
        note = (f"      Values fitted by validation/fit_defaults.py (bounded least squares, planner/fit.py) to the "
                f"{len(obs)} {engine}\n      rows on {family} devices in validation/measurements.csv: {scores}.\n")
        fitted[(engine, family)] = (e, note)
    print(f"# rule of thumb tok/s = 0.55 x bandwidth / model size: median |err| {rule_of_thumb():.1f}% on the decode rows")
    low, high = error_band(all_cv_dec)
    print(f"# decode error band (held-out measured/predicted speed, p10..p90 over {len(all_cv_dec)} rows): "
          f"low {low:.2f} high {high:.2f}")
    if write:
        write_yaml(fitted, (low, high))
        print(f"# wrote {EFFICIENCY_YAML}")


if __name__ == "__main__":
    main()
