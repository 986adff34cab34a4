"""Fit the default efficiencies (planner/data/efficiency.yaml) to the published measurements, and report the
error by device class with leave-one-device-out cross-validation.

    python validation/fit_defaults.py            # fit, print YAML, the error table and the targets
    python validation/fit_defaults.py --write    # ... and write the fitted values into efficiency.yaml

llama.cpp on NVIDIA and Apple is fitted with the kernel-path roof model (validation/roof_fit.py,
docs/accuracy.md §1); the other engine x family groups with the memory-bound NNLS fit (planner/calibrate/fit.py).
Leave-one-device-out (LODO): every row of a device (any GPU count) is predicted by a fit to the other devices'
rows only. Groups measured on a single device (vLLM, PyTorch, Transformers: A100-SXM only) cannot be
cross-validated by device; they report leave-one-model-out instead, marked as such.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import roof_fit as rf  # noqa: E402
from fit_report import (device_class, group_note, print_table, rule_of_thumb_errors, targets,  # noqa: E402
                        write_yaml, yaml_block)

from planner.calibrate.fit import error_band, fit, prediction_errors  # noqa: E402
from planner.calibrate.validate import DEFAULT_DATA, observation, read_measurements  # noqa: E402
from planner.errors import InputError  # noqa: E402
from planner.estimate import get_engine  # noqa: E402
from planner.physics.efficiency import _family_value, default_efficiency, device_family  # noqa: E402

ROOF_GROUPS = {("llama.cpp", "nvidia"), ("llama.cpp", "apple")}


def load(path=DEFAULT_DATA):
    """(group → [(measurement, observation)]) for every row."""
    groups = defaultdict(list)
    for m in read_measurements(path):
        o = observation(m)
        name = "llama.cpp" if m.engine == "ollama" else m.engine
        groups[(name, device_family(o.deployment.hardware))].append((m, o))
    return groups


def start_values(base) -> tuple[dict, dict]:
    """Fixed starting point of the simplex (not the current YAML), so that reruns print the same figures."""
    dec = {"w_float": 0.9, "w_kquant": 0.9, "kv": 0.25, "step_s": 5e-4, "layer_s": 5e-5, "r_float": 6.0,
           "r_kquant": 18.0, "hop_s": 3e-4}
    pre = {"c_float": 0.45, "c_kquant": 0.35, "score_b": 30.0, "prefill_s": 5e-3}
    return dec, pre


class RoofGroup:
    """One engine x family group fitted with the kernel-path roof model."""

    def __init__(self, family: str, rows, base):
        self.family, self.base = family, base
        dec_rows = [(m, rf.decode_row(m, o.deployment)) for m, o in rows if m.decode_tok_s]
        pre_rows = [(m, rf.prefill_row(m, o.deployment)) for m, o in rows if m.prefill_tok_s]
        self.dec, self.pre = rf.features(dec_rows), rf.features(pre_rows)
        self.dec_start, self.pre_start = start_values(base)
        self.fixed = {f"peak_{k}": _family_value(base.decode_compute or base.compute, k) for k in rf.FAMILIES}
        # NVIDIA rows without per-SM figures keep the datasheet peak × the cited η_c; on Apple η_c is fitted
        self.fixed_pre = ({f"pre_peak_{k}": base.compute[k] for k in rf.FAMILIES} if family == "nvidia" else {})

    def fit(self, dec_mask=None, pre_mask=None):
        dec = self.dec if dec_mask is None else self.dec.take(dec_mask)
        pre = self.pre if pre_mask is None else self.pre.take(pre_mask)
        pd = {**rf.fit_decode(dec, {**self.dec_start, **self.fixed}), **self.fixed}
        pp = rf.fit_prefill(pre, self.pre_start, {**pd, **self.fixed_pre})
        return pd, pp

    def predict(self, pd, pp):
        d_s = rf.decode_seconds(self.dec, pd)
        p_s = rf.prefill_seconds(self.pre, pp, {**pd, **self.fixed_pre})
        return rf.pct_errors(d_s, self.dec.measured_s), rf.pct_errors(p_s, self.pre.measured_s)

    def lodo(self):
        dec_err = np.full(len(self.dec), np.nan)
        pre_err = np.full(len(self.pre), np.nan)
        for gpu in sorted(set(self.dec.gpu) | set(self.pre.gpu)):
            pd, pp = self.fit(self.dec.gpu != gpu, self.pre.gpu != gpu)
            de, pe = self.predict(pd, pp)
            dec_err[self.dec.gpu == gpu] = de[self.dec.gpu == gpu]
            pre_err[self.pre.gpu == gpu] = pe[self.pre.gpu == gpu]
        return dec_err, pre_err

    def efficiency(self, pd, pp, note: str):
        b = self.base
        update = {
            "weight_bandwidth": {**b.weight_bandwidth, "float": pd["w_float"], "kquant": pd["w_kquant"]},
            "kv_bandwidth": pd["kv"], "step_overhead_s": pd["step_s"], "layer_overhead_s": pd["layer_s"],
            "prefill_overhead_s": pp["prefill_s"], "score_bytes_per_pair_head": pp["score_b"],
            "matvec_flops_per_core_cycle": {"float": pd["r_float"], "kquant": pd["r_kquant"]},
        }
        if self.family == "nvidia":
            update["gemm_tensor_share"] = {"float": pp["c_float"], "kquant": pp["c_kquant"]}
        else:
            update["compute"] = {**b.compute, "float": pp["c_float"], "kquant": pp["c_kquant"]}
        return b.model_copy(update=update)


def nnls_group(obs_pairs, base):
    """The memory-bound NNLS fit, with leave-one-device-out where the group has several devices, else
    leave-one-model-out."""
    obs = [o for _, o in obs_pairs]
    result = fit(obs, base, "fitted")
    gpus = {m.gpu for m, _ in obs_pairs}
    key = (lambda m: m.gpu) if len(gpus) > 1 else (lambda m: m.model)
    cv_dec, cv_pre = {}, {}
    for k in {key(m) for m, _ in obs_pairs}:
        train = [o for m, o in obs_pairs if key(m) != k]
        test = [(i, o) for i, (m, o) in enumerate(obs_pairs) if key(m) == k]
        try:
            eff = fit(train, base, "cv").efficiency
        except InputError:
            continue
        for i, o in test:
            dec, pre = prediction_errors([o], eff)
            if dec:
                cv_dec[i] = dec[0]
            if pre:
                cv_pre[i] = pre[0]
    return result, cv_dec, cv_pre, ("device" if len(gpus) > 1 else "model")


def main() -> None:
    write = "--write" in sys.argv[1:]
    groups = load()
    table = []  # (engine, class, metric, in-sample err, cv err, rule err, cv kind, multi)
    fitted, all_cv_dec, hop_s, gpus = {}, [], None, {}
    for (engine, family), pairs in sorted(groups.items()):
        base = default_efficiency(get_engine(engine), pairs[0][1].deployment.hardware)
        if (engine, family) in ROOF_GROUPS:
            g = RoofGroup(family, pairs, base)
            pd, pp = g.fit()
            ins_dec, ins_pre = g.predict(pd, pp)
            cv_dec, cv_pre = g.lodo()
            for feats, ins, cv, metric in ((g.dec, ins_dec, cv_dec, "decode"), (g.pre, ins_pre, cv_pre, "prefill")):
                for i in range(len(feats)):
                    table.append((engine, device_class(feats.gpu[i], feats.num_gpus[i]), metric, ins[i], cv[i],
                                  "device", feats.num_gpus[i] > 1, feats.gpu[i], feats.model[i]))
            all_cv_dec += list(cv_dec)
            eff = g.efficiency(pd, pp, "")
            fitted[(engine, family)] = (eff, "kernel-path roofs, Nelder-Mead on the mean |log error|")
            gpus[(engine, family)] = (set(g.dec.gpu) | set(g.pre.gpu), len(g.dec) + len(g.pre))
            if family == "nvidia":
                hop_s = pd["hop_s"]
            print(f"# {engine}/{family}: {len(g.dec)} decode + {len(g.pre)} prefill rows (kernel-path roofs)")
            print(yaml_block(eff), end="")
            continue
        obs = [o for _, o in pairs]
        if len(obs) < 4:
            print(f"# {engine}/{family}: {len(obs)} rows, kept the cited defaults")
            ins_dec, ins_pre = prediction_errors(obs, base)
            cv_dec, cv_pre, kind = dict(enumerate(ins_dec)), dict(enumerate(ins_pre)), "cited"
        else:
            result, cv_dec, cv_pre, kind = nnls_group(pairs, base)
            fitted[(engine, family)] = (result.efficiency, "memory-bound bounded least squares, planner/calibrate/fit.py")
            gpus[(engine, family)] = ({m.gpu for m, _ in pairs}, len(pairs))
            ins_dec, ins_pre = prediction_errors(obs, result.efficiency)
            print(f"# {engine}/{family}: {len(obs)} rows (memory-bound NNLS fit)")
            print(yaml_block(result.efficiency), end="")
        di = pi = 0
        for i, (m, o) in enumerate(pairs):
            cls = device_class(m.gpu, m.num_gpus)
            if m.decode_tok_s:
                table.append((engine, cls, "decode", ins_dec[di], cv_dec.get(i, np.nan), kind, m.num_gpus > 1,
                              m.gpu, m.model))
                di += 1
            if m.prefill_tok_s:
                table.append((engine, cls, "prefill", ins_pre[pi], cv_pre.get(i, np.nan), kind, m.num_gpus > 1,
                              m.gpu, m.model))
                pi += 1
        all_cv_dec += [v for v in cv_dec.values()]
    rule = rule_of_thumb_errors()
    print_table(table, rule)
    targets(table)
    held_out = [e for e in all_cv_dec if np.isfinite(e)]
    band = (*error_band(held_out), len(held_out))
    print(f"# decode error band (held-out measured/predicted speed, p10..p90): low {band[0]:.2f} high {band[1]:.2f}")
    if hop_s is not None:
        print(f"# llama.cpp layer split: {hop_s * 1e3:.3f} ms per pipeline-stage boundary (fitted)")
    if write:
        notes = {k: (e, group_note(table, k[0], *gpus[k], how)) for k, (e, how) in fitted.items()}
        write_yaml(notes, band, hop_s)


if __name__ == "__main__":
    main()
