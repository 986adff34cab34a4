"""Fitting the latency model's efficiencies to measured decode and prefill times.

At the small batches where it is used, a decode step is memory-bound, so its time is linear in the
inverse efficiencies (docs/physics.md §7.3):

    t_step = t_fixed + L·t_layer + Σ_f (W_f / BW)·(1/η_w,f) + (KV / BW)·(1/η_kv) + t_comm

and prefill is compute-bound: t = t_prefill + (F / Peak)·(1/η_c,f) + t_comm. Writing 1/η = 1 + y with
y ≥ 0 keeps every efficiency in (0, 1], and rows divided by the measured time make the fit minimise
relative error. Both are non-negative least-squares problems, solved here by Lawson-Hanson.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.physics import kernel_paths, latency, prefill
from planner.physics.efficiency import Efficiency, communication
from planner.errors import InputError
from planner.physics.workload import Deployment


def nnls(a: np.ndarray, b: np.ndarray, max_iter: int = 500) -> np.ndarray:
    """min ‖a·x − b‖₂ subject to x ≥ 0 (Lawson & Hanson, Solving Least Squares Problems, 1974, ch. 23)."""
    m, n = a.shape
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    w = a.T @ (b - a @ x)
    tol = 10 * np.finfo(float).eps * np.linalg.norm(a, 1) * max(m, n)
    # A column too small to square without underflow carries no information: its weight stays 0
    # (least squares on subnormal columns returns inf).
    usable = np.linalg.norm(a, axis=0) > np.sqrt(np.finfo(float).tiny)
    for _ in range(max_iter):
        free = ~passive & usable
        if not free.any() or (w[free] <= tol).all():
            break
        j = np.argmax(np.where(free, w, -np.inf))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(a[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg]))
            x = x + alpha * (z - x)
            passive &= x > tol
        w = a.T @ (b - a @ x)
    return x


@dataclass(frozen=True)
class Observation:
    """One measured configuration: mean decode seconds per step and/or prefill seconds."""

    deployment: Deployment
    decode_step_s: float | None = None
    prefill_s: float | None = None
    label: str = ""


def _decode_terms(d: Deployment, allreduce_s: float | None = None) -> tuple[float, float, float, int]:
    """Unit-efficiency seconds of one mean decode step: (weights, KV, communication, layers)."""
    unit = Efficiency(weight_bandwidth={"float": 1.0}, kv_bandwidth=1.0, compute={"float": 1.0},
                      step_overhead_s=0.0, prefill_overhead_s=0.0, source="unit")
    comm = communication()
    w = d.workload
    k = latency.decode_coefficients(d, unit.model_copy(update={"allreduce_latency_s": allreduce_s}), unit, comm)
    comm_s = latency.communication_seconds(d, comm, 1, allreduce_s) + kernel_paths.tp_allreduce_bytes_seconds(d, w.batch)
    weights_s = k.fixed_s - comm_s
    mean_kv_s = (latency.decode_seconds_total(k, w.prompt_tokens, w.gen_tokens) / w.gen_tokens) - k.fixed_s
    return weights_s, mean_kv_s, comm_s, d.model.architecture.n_layers


def _prefill_terms(d: Deployment, allreduce_s: float | None = None, layer_s: float = 0.0) -> tuple[float, float]:
    """Unit-efficiency compute seconds of the prefill, and its known seconds: communication plus the
    per-layer launch overhead of every forward pass (fitted on the decode steps)."""
    unit = Efficiency(weight_bandwidth={"float": 1.0}, kv_bandwidth=1.0, compute={"float": 1.0},
                      step_overhead_s=0.0, prefill_overhead_s=0.0, source="unit")
    comm = communication()
    unit = unit.model_copy(update={"allreduce_latency_s": allreduce_s})
    t, _ = prefill.prefill_seconds(d, unit, unit, comm, d.workload.prompt_tokens)
    total = d.workload.prompt_tokens * d.workload.batch
    chunks = -(-total // min(prefill.prefill_chunk_tokens(d, total), total))
    comm_s = latency.communication_seconds(d, comm, chunks, allreduce_s)
    return t - comm_s, comm_s + chunks * d.model.architecture.n_layers * layer_s


@dataclass(frozen=True)
class FitResult:
    efficiency: Efficiency
    decode_errors_pct: list[float]
    prefill_errors_pct: list[float]

    @property
    def median_abs_pct_error(self) -> float:
        errs = [abs(e) for e in self.decode_errors_pct + self.prefill_errors_pct]
        return float(np.median(errs)) if errs else float("nan")


def _fit_decode(dec: list[Observation], base: Efficiency, layer_overhead: bool) -> dict:
    """NNLS on memory-bound decode steps: fixed and per-layer overhead, 1/η_w per format family, 1/η_kv
    and, with tensor-parallel rows, the all-reduce latency (its column is 2·L per step)."""
    families = sorted({o.deployment.quant.family for o in dec})
    fit_ar = any(o.deployment.tp > 1 for o in dec)
    cols = (["fixed"] + (["layer"] if layer_overhead else []) + [f"w:{f}" for f in families] + ["kv"]
            + (["allreduce"] if fit_ar else []))
    rows, rhs = [], []
    for o in dec:
        w_s, kv_s, comm_s, n_layers = _decode_terms(o.deployment, 0.0 if fit_ar else base.allreduce_latency_s)
        fam = o.deployment.quant.family
        row = [1.0] + ([float(n_layers)] if layer_overhead else [])
        row += [w_s if f == fam else 0.0 for f in families] + [kv_s]
        if fit_ar:
            row.append(2.0 * n_layers if o.deployment.tp > 1 else 0.0)
        rows.append(np.array(row) / o.decode_step_s)
        rhs.append((o.decode_step_s - comm_s - w_s - kv_s) / o.decode_step_s)
    sol = dict(zip(cols, nnls(np.array(rows), np.array(rhs))))
    out = {
        "step_overhead_s": float(sol["fixed"]),
        "layer_overhead_s": float(sol.get("layer", 0.0)),
        "weight_bandwidth": {**base.weight_bandwidth, **{f: 1.0 / (1.0 + float(sol[f"w:{f}"])) for f in families}},
        "allreduce_latency_s": float(sol["allreduce"]) if fit_ar else base.allreduce_latency_s,
    }
    if any(_decode_terms(o.deployment, base.allreduce_latency_s)[1] > 0 for o in dec):
        out["kv_bandwidth"] = 1.0 / (1.0 + float(sol["kv"]))
    return out


def _fit_prefill(pre: list[Observation], eff: Efficiency) -> dict:
    """NNLS on prefills: a fixed overhead and 1/η_c per format family, given the decode-fitted terms."""
    families = sorted({o.deployment.quant.family for o in pre})
    rows, rhs = [], []
    for o in pre:
        f_s, known_s = _prefill_terms(o.deployment, eff.allreduce_latency_s, eff.layer_overhead_s)
        fam = o.deployment.quant.family
        rows.append(np.array([1.0] + [f_s if f == fam else 0.0 for f in families]) / o.prefill_s)
        rhs.append((o.prefill_s - known_s - f_s) / o.prefill_s)
    x = nnls(np.array(rows), np.array(rhs))
    compute = {**eff.compute, **{f: 1.0 / (1.0 + float(x[i])) for i, f in enumerate(families, start=1)}}
    return {"prefill_overhead_s": float(x[0]), "compute": compute}


def fit_efficiency(observations: list[Observation], base: Efficiency, source: str,
                   layer_overhead: bool = True) -> Efficiency:
    """Efficiencies that best explain the observations; what they do not inform keeps ``base``."""
    dec = [o for o in observations if o.decode_step_s]
    pre = [o for o in observations if o.prefill_s and o.deployment.workload.prompt_tokens > 0]
    if not dec and not pre:
        raise InputError("no usable measurements to fit")
    # Bandwidths and overheads come from batch-1 steps, which are memory-bound on every device; larger
    # batches then tell how fast small GEMMs run (decode_compute), which CPUs in particular do poorly.
    batched = [o for o in dec if o.deployment.workload.batch > 1]
    if any(o.deployment.workload.batch == 1 for o in dec):
        dec = [o for o in dec if o.deployment.workload.batch == 1]
    else:
        batched = []
    eff = base.model_copy(update={"source": source, "origin": "calibrated", "error_band": None})
    # Measured rows replace the default kernel-path roofs they inform (docs/accuracy.md §1): decode rows fix
    # the bandwidths of a memory-bound step, prefill rows the achieved share of the datasheet peak.
    eff = eff.model_copy(update={**({"matvec_flops_per_core_cycle": None} if dec else {}),
                                 **({"gemm_tensor_share": None, "score_bytes_per_pair_head": None} if pre else {})})
    if dec:
        eff = eff.model_copy(update=_fit_decode(dec, base, layer_overhead))
    if pre:
        eff = eff.model_copy(update=_fit_prefill(pre, eff))
    return _fit_decode_compute(batched, dec, eff) if batched else eff


def _fit_decode_compute(batched: list[Observation], single: list[Observation], eff: Efficiency) -> Efficiency:
    """Decode GEMM efficiency implied by batched steps slower than the memory-bound prediction:
    t_compute = t_measured − (t_predicted − t_weights), η = FLOPs / (peak × t_compute) per row.

    The batch-1 steps fixed the bandwidths, so η may not make any of them compute-bound: it is at
    least the η at which a batch-1 step's FLOPs take as long as its weight reads. Of the implied
    values (±10%) above that floor, the one with the least mean |error| on the batched rows wins."""
    from planner.physics.performance import host_efficiency

    comm = communication()
    memory_only = eff.model_copy(update={"decode_compute": {k: 1.0 for k in eff.compute}})

    def parts(o: Observation) -> tuple[float, float, float]:
        """(predicted memory-bound step s, its weight-read s, peak FLOP/s × s → η scale) for one row."""
        d = o.deployment
        k = latency.decode_coefficients(d, memory_only, host_efficiency(d), comm)
        predicted = latency.decode_seconds_total(k, d.workload.prompt_tokens, d.workload.gen_tokens) / d.workload.gen_tokens
        weights_s = _decode_terms(d, eff.allreduce_latency_s)[0] / eff.weight_eff(d.quant)
        peak = latency.rates(d, memory_only, host_efficiency(d), comm).decode_flops_per_s
        return predicted, weights_s, k.flops_per_step / d.tp / peak

    implied: dict[str, list[float]] = {}
    for o in batched:
        predicted, weights_s, flop_seconds_at_peak = parts(o)
        compute_s = o.decode_step_s - (predicted - weights_s)
        if o.decode_step_s > 1.05 * predicted and compute_s > 0:
            implied.setdefault(o.deployment.quant.family, []).append(flop_seconds_at_peak / compute_s)
    if not implied:
        return eff
    floor: dict[str, float] = {}
    for o in single:
        _, weights_s, flop_seconds_at_peak = parts(o)
        fam = o.deployment.quant.family
        floor[fam] = max(floor.get(fam, 0.0), flop_seconds_at_peak / weights_s if weights_s else 0.0)
    best = eff
    best_err = float(np.mean(np.abs(prediction_errors(batched, eff)[0])))
    for family, values in implied.items():
        low = min(1.0, floor.get(family, 0.0) * 1.0001)
        for value in sorted({max(low, min(1.0, v * s)) for v in values for s in (0.9, 0.95, 1.0, 1.05, 1.1)}):
            table = dict(best.decode_compute or best.compute)
            table[family] = float(value)
            trial = best.model_copy(update={"decode_compute": table})
            err = float(np.mean(np.abs(prediction_errors(batched, trial)[0])))
            if err < best_err:
                best, best_err = trial, err
    return best


def prediction_errors(observations: list[Observation], eff: Efficiency) -> tuple[list[float], list[float]]:
    """Signed % errors of predicted vs measured speed: 100 × (predicted / measured − 1), for decode and
    prefill (computed from times: measured time / predicted time)."""
    from planner.physics.performance import host_efficiency

    comm = communication()
    dec, pre = [], []
    for o in observations:
        d = o.deployment
        if o.decode_step_s:
            k = latency.decode_coefficients(d, eff, host_efficiency(d), comm)
            t = latency.decode_seconds_total(k, d.workload.prompt_tokens, d.workload.gen_tokens) / d.workload.gen_tokens
            dec.append(100.0 * (o.decode_step_s / t - 1.0))
        if o.prefill_s and d.workload.prompt_tokens > 0:
            t, _ = prefill.prefill_seconds(d, eff, host_efficiency(d), comm, d.workload.prompt_tokens)
            pre.append(100.0 * (o.prefill_s / t - 1.0))
    return dec, pre


def fit(observations: list[Observation], base: Efficiency, source: str, layer_overhead: bool = True) -> FitResult:
    eff = fit_efficiency(observations, base, source, layer_overhead)
    dec, pre = prediction_errors(observations, eff)
    return FitResult(efficiency=eff, decode_errors_pct=dec, prefill_errors_pct=pre)


MIN_BAND_ROWS = 5


def error_band(decode_errors_pct: list[float]) -> tuple[float, float] | None:
    """(low, high) multipliers that bracket the true decode speed around a prediction: the 10th and 90th
    percentile of measured / predicted speed. ``prediction_errors`` gives predicted/measured − 1 (in %),
    so the ratio is inverted here. Fewer than MIN_BAND_ROWS rows say too little for percentiles: then
    the band is the defaults' band widened to cover every row seen."""
    from planner.physics.efficiency import decode_error_band

    if not decode_errors_pct:
        return None
    ratios = [1.0 / (1.0 + e / 100.0) for e in decode_errors_pct]
    if len(ratios) < MIN_BAND_ROWS:
        low, high = decode_error_band()
        return min(low, *ratios), max(high, *ratios)
    return float(np.percentile(ratios, 10)), float(np.percentile(ratios, 90))
