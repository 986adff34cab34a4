"""Kernel-path roof model of llama.cpp, vectorised over the published measurements, and its fit.

Each measurement becomes a row of unit-efficiency features computed once by planner's own latency functions
(bytes, FLOPs, KV seconds, attention-score bytes, core cycles of the device); the model then combines them
with the efficiencies through planner.physics.kernel_paths, on numpy arrays, so that a fit of ~10 parameters
over all rows takes a fraction of a second and leave-one-device-out cross-validation stays cheap.

    decode step  = t_step + L·t_layer + max(W / (η_w,f·BW), F / rate_dec,f) + KV / (η_kv·BW) + hops·t_hop
    prefill      = t_pre + chunks·L·t_layer + max(chunks·W / (η_w,f·BW), F / rate_pre,f)
                   + b·n_heads·pairs / BW + hops·t_hop

rate_dec is the mat-vec rate (core cycles/s × FLOP per core cycle, per format family) on NVIDIA and Apple;
rate_pre is the FP16 tensor rate per SM-cycle × share on NVIDIA, the datasheet peak × η_c on Apple.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from planner.calibrate.validate import Measurement
from planner.physics import kernel_paths as kp
from planner.physics.arith import maximum
from planner.physics import latency
from planner.physics import prefill
from planner.physics.efficiency import Efficiency, communication

FAMILIES = ("float", "kquant")
UNIT = Efficiency(weight_bandwidth={"float": 1.0}, kv_bandwidth=1.0, compute={"float": 1.0},
                  step_overhead_s=0.0, prefill_overhead_s=0.0, source="unit")


@dataclass
class Features:
    """Column arrays, one entry per row (decode or prefill)."""

    measured_s: np.ndarray
    fam: np.ndarray  # index into FAMILIES
    w_s: np.ndarray  # weight bytes per step (decode) or all chunks (prefill) / tp / bandwidth
    flops_per_cycle: np.ndarray  # FLOP / tp / core cycles per second (decode); / (cycles × tensor) for prefill
    flops_per_peak: np.ndarray  # FLOP / tp / datasheet peak
    kv_s: np.ndarray  # decode: mean KV read seconds at unit efficiency
    score_s: np.ndarray  # prefill: n_heads · pairs / tp / bandwidth (seconds per score byte)
    layers: np.ndarray  # decode: L; prefill: chunks · L
    hops: np.ndarray
    core_path: np.ndarray  # bool: the kernel-path rate applies (else the datasheet peak)
    gpu: np.ndarray
    num_gpus: np.ndarray
    model: np.ndarray

    def take(self, mask: np.ndarray) -> Features:
        return Features(**{k: v[mask] for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return len(self.measured_s)


def _hops(d) -> int:
    return d.num_gpus - 1 if d.parallel != "tp" else 0


def decode_row(m: Measurement, d) -> dict:
    from planner.calibrate.fit import _decode_terms

    hw = d.hardware
    k = latency.decode_coefficients(d, UNIT, UNIT, communication())
    _, kv_s, _, n_layers = _decode_terms(d, 0.0)
    cycles = hw.core_cycles_per_s or 0.0
    path = kp.decode_kernel_path(True, hw.vendor.value, bool(cycles), d.workload.batch) != kp.DATASHEET_PEAK
    f = k.flops_per_step / d.tp
    return dict(measured_s=1.0 / m.decode_tok_s, fam=FAMILIES.index(d.quant.family),
                w_s=k.weight_read_bytes / d.tp / hw.bandwidth_bytes_per_s,
                flops_per_cycle=f / cycles if cycles else math.inf, flops_per_peak=f / latency.rates(
                    d, UNIT, UNIT, communication()).decode_flops_per_s, kv_s=kv_s, score_s=0.0,
                layers=n_layers, hops=_hops(d), core_path=path)


def prefill_row(m: Measurement, d) -> dict:
    hw = d.hardware
    k = prefill.prefill_coefficients(d, UNIT, UNIT, communication())
    p = d.workload.prompt_tokens
    total = k.batch * p
    chunk = min(k.engine_chunk, total) if k.engine_chunk else total
    chunks = -(-total // chunk)
    pairs_full = p * (p + 1) / 2
    pairs_window = pairs_full
    if k.window and p > k.window:
        pairs_window = k.window * (k.window + 1) / 2 + (p - k.window) * k.window
    pairs = k.batch * (k.n_global * pairs_full + k.n_window * pairs_window)
    flops = k.linear_flops_per_token * total + k.head_flops + k.pair_flops * pairs
    mem = chunks * (k.dense_bytes + k._touched(chunk) * k.expert_bytes) / d.tp
    cycles = hw.core_cycles_per_s or 0.0
    tensor = hw.gpu_cores.tensor_fp16_flops_per_core_cycle if hw.gpu_cores else None
    path = bool(cycles and tensor) and hw.vendor.value == "nvidia"
    peak = latency.rates(d, UNIT, UNIT, communication()).flops_per_s
    return dict(measured_s=total / m.prefill_tok_s, fam=FAMILIES.index(d.quant.family),
                w_s=mem / hw.bandwidth_bytes_per_s,
                flops_per_cycle=flops / d.tp / kp.tensor_gemm_flops_per_s(cycles, tensor, 1.0) if path else math.inf,
                flops_per_peak=flops / d.tp / peak, kv_s=0.0,
                score_s=d.model.architecture.n_heads * pairs / d.tp / hw.bandwidth_bytes_per_s,
                layers=chunks * d.model.architecture.n_layers, hops=_hops(d), core_path=path)


def features(rows: list[tuple[Measurement, dict]]) -> Features:
    cols: dict[str, list] = {k: [] for k in Features.__dataclass_fields__}
    for m, r in rows:
        for key, v in r.items():
            cols[key].append(v)
        cols["gpu"].append(m.gpu)
        cols["num_gpus"].append(m.num_gpus)
        cols["model"].append(m.model)
    return Features(**{k: np.array(v) for k, v in cols.items()})


# ---------------------------------------------------------------------------------------------
# Parameters: a flat vector in log space; efficiencies (≤ 1) are exp(min(z, 0)).
# ---------------------------------------------------------------------------------------------

DECODE_PARAMS = ("w_float", "w_kquant", "kv", "step_s", "layer_s", "r_float", "r_kquant", "hop_s")
PREFILL_PARAMS = ("c_float", "c_kquant", "score_b", "prefill_s")
BOUNDED = {"w_float", "w_kquant", "kv", "c_float", "c_kquant"}


def unpack(names, z) -> dict[str, float]:
    return {n: math.exp(min(v, 0.0) if n in BOUNDED else v) for n, v in zip(names, z)}


def decode_seconds(f: Features, p: dict[str, float]) -> np.ndarray:
    eta_w = np.where(f.fam == 0, p["w_float"], p["w_kquant"])
    per_cycle = np.where(f.fam == 0, p["r_float"], p["r_kquant"])
    peak_eff = np.where(f.fam == 0, p.get("peak_float", 1.0), p.get("peak_kquant", 1.0))
    compute_s = np.where(f.core_path, f.flops_per_cycle / per_cycle, f.flops_per_peak / peak_eff)
    weights = maximum(f.w_s / eta_w, compute_s)
    return p["step_s"] + f.layers * p["layer_s"] + weights + f.kv_s / p["kv"] + f.hops * p["hop_s"]


def prefill_seconds(f: Features, p: dict[str, float], d: dict[str, float]) -> np.ndarray:
    eta_w = np.where(f.fam == 0, d["w_float"], d["w_kquant"])
    share = np.where(f.fam == 0, p["c_float"], p["c_kquant"])
    # rows off the tensor path (no per-SM figures) keep the datasheet peak × the engine's fixed η_c
    peak_eff = np.where(f.fam == 0, d.get("pre_peak_float", p["c_float"]),
                        d.get("pre_peak_kquant", p["c_kquant"]))
    compute_s = np.where(f.core_path, f.flops_per_cycle / share, f.flops_per_peak / peak_eff)
    t = maximum(f.w_s / eta_w, compute_s)
    return p["prefill_s"] + f.layers * d["layer_s"] + t + p["score_b"] * f.score_s + f.hops * d["hop_s"]


def _loss(pred: np.ndarray, measured: np.ndarray) -> float:
    """Mean |log(predicted / measured)|, smoothed near 0 (pseudo-Huber at 1%) for the simplex."""
    r = np.log(pred / measured)
    return float(np.mean(np.sqrt(r * r + 1e-4)))


def fit_decode(f: Features, start: dict[str, float]) -> dict[str, float]:
    z0 = np.log([start[n] for n in DECODE_PARAMS])
    used = [n for n in DECODE_PARAMS if not (n == "hop_s" and not f.hops.any())]

    extra = {k: v for k, v in start.items() if k not in DECODE_PARAMS}

    def obj(z):
        return _loss(decode_seconds(f, {**extra, **unpack(DECODE_PARAMS, z)}), f.measured_s)

    res = minimize(obj, z0, method="Nelder-Mead", options={"maxiter": 6000, "maxfev": 6000, "xatol": 1e-4,
                                                          "fatol": 1e-7, "adaptive": True})
    out = unpack(DECODE_PARAMS, res.x)
    if "hop_s" not in used:
        out["hop_s"] = start["hop_s"]
    return out


def fit_prefill(f: Features, start: dict[str, float], dec: dict[str, float]) -> dict[str, float]:
    z0 = np.log([start[n] for n in PREFILL_PARAMS])

    def obj(z):
        return _loss(prefill_seconds(f, unpack(PREFILL_PARAMS, z), dec), f.measured_s)

    res = minimize(obj, z0, method="Nelder-Mead", options={"maxiter": 4000, "maxfev": 4000, "xatol": 1e-4,
                                                          "fatol": 1e-7, "adaptive": True})
    return unpack(PREFILL_PARAMS, res.x)


def pct_errors(pred_s: np.ndarray, measured_s: np.ndarray) -> np.ndarray:
    """Signed % error of predicted speed: measured time / predicted time − 1."""
    return 100.0 * (measured_s / pred_s - 1.0)
