"""Calibrating on the local device with the built-in torch decode benchmark (``kernels/``).

The benchmark's runs become observations of the latency model for engine ``torch`` on a model whose
layer shape is the benchmark's: each run is a deployment of that shape with the run's layer count, batch
and context. Every third run (ordered by layers, batch, context) is held out of the fit and used to report
the error on runs the fit did not see.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

import numpy as np

from planner.errors import InputError, clean_name
from planner.spec import catalog
from planner.calibrate.store import LOCAL, Calibration
from planner.physics.efficiency import default_efficiency
from planner.calibrate.fit import Observation, error_band, fit, prediction_errors
from planner.physics.quant import QUANTS, Engine
from planner.spec.schema import HardwareProfile, ModelSpec
from planner.physics.weights import weight_layout
from planner.physics.workload import Deployment, Workload

TORCH_DTYPE_TO_QUANT = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}


def dims_for_model(spec: ModelSpec):
    from planner.kernels.shapes import ModelDims

    a = spec.architecture
    return ModelDims(hidden=a.hidden_size, n_heads=a.n_heads, n_kv_heads=a.n_kv_heads, head_dim=a.head_dim,
                     intermediate=a.intermediate_size, vocab=a.vocab_size, n_layers=a.n_layers)


def bench_spec(dims, n_layers: int) -> ModelSpec:
    """A llama-shaped spec with the benchmark's dimensions and ``n_layers`` layers."""
    return ModelSpec.model_validate({
        "id": f"bench-{dims.hidden}x{n_layers}", "name": "benchmark shape",
        "architecture": {"source": "kernels/decode_bench.py benchmark shape", "family": "llama",
                         "n_layers": n_layers, "hidden_size": dims.hidden, "n_heads": dims.n_heads,
                         "n_kv_heads": dims.n_kv_heads, "head_dim": dims.head_dim,
                         "intermediate_size": dims.intermediate, "vocab_size": dims.vocab,
                         "max_context": 1 << 24},
        "published": {"source": "computed", "total_params": 1},
    })


def _ram_bytes() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 16 * 1024**3


def measured_profile(suite) -> HardwareProfile:
    """A profile of the local device from what the benchmark measured: stream bandwidth (the better of
    copy and read) and the best matrix throughput: GEMM runs, or the prefills of the decode runs
    (a prompt of P tokens costs about P times one batch-1 step's FLOPs) in quick mode."""
    bandwidth = max(suite.copy.bytes_per_s, suite.read.bytes_per_s)
    prefill_rates = [r.flops_per_step / r.batch * r.prompt_tokens * r.batch / r.prefill_seconds
                     for r in suite.runs if r.prefill_seconds > 0]
    flops = max([g.flops_per_s for g in suite.gemm] + prefill_rates + [1e9])
    kind = "cpu" if suite.device == "cpu" else ("unified" if suite.device == "mps" else "gpu")
    data = {
        "id": LOCAL, "name": suite.device_name or platform.processor() or suite.device,
        "vendor": "cpu" if kind == "cpu" else ("apple" if kind == "unified" else "nvidia"), "kind": kind,
        "memory": {"source": "measured by planner calibrate (stream bandwidth); capacity from the OS",
                   "capacity_gib": _ram_bytes() / 1024**3, "bandwidth_gb_per_s": bandwidth / 1e9},
        "compute": {"source": "measured by planner calibrate (best GEMM)", "fp32_tflops": flops / 1e12},
    }
    if kind == "cpu":
        from planner.calibrate.host_cpu import local_cpu_block

        data["cpu"] = local_cpu_block(getattr(suite, "simd", []))
    if kind == "unified":
        data["unified_memory"] = {"source": "assumed default Metal working set (docs/physics.md 4.8)", "gpu_fraction": 0.67}
    return HardwareProfile.model_validate(data)


def device_profile(suite) -> tuple[str, HardwareProfile, HardwareProfile | None]:
    """(device key, profile used for the fit, profile to store): a CUDA card found in the catalog is
    calibrated against its datasheet; anything else against what was measured."""
    if suite.device == "cuda":
        from planner.calibrate.detect import match_profile

        known = {h.id: list(h.aliases) + [h.name] for h in catalog.hardware().items.values()}
        matched = match_profile(suite.device_name, known)
        if matched:
            return matched, catalog.load_hardware(matched), None
    profile = measured_profile(suite)
    return LOCAL, profile, profile


def observations(suite, hw: HardwareProfile) -> list[Observation]:
    quant = QUANTS[TORCH_DTYPE_TO_QUANT.get(suite.dtype, "bf16")]
    kv = {"f32": "f32", "f16": "f16", "bf16": "bf16"}[quant.id]
    from planner.physics.kvcache import get_kv_dtype

    out = []
    for run in sorted(suite.runs, key=lambda r: (r.n_layers, r.batch, r.context_tokens)):
        spec = bench_spec(run.dims, run.n_layers)
        layout = weight_layout(spec, quant, Engine.torch)
        base = {"model": spec, "hardware": hw, "engine": Engine.torch, "quant": quant, "kv_dtype": get_kv_dtype(kv),
                "layout": layout}
        decode = Deployment(**base, workload=Workload(ctx=run.context_tokens + 1, batch=run.batch,
                                                      prompt_tokens=run.context_tokens, gen_tokens=1))
        out.append(Observation(decode, decode_step_s=run.seconds_per_step,
                               label=f"L{run.n_layers} B{run.batch} ctx{run.context_tokens}"))
        if run.prefill_seconds > 0 and run.prompt_tokens > 0:
            prefill = Deployment(**base, workload=Workload(ctx=run.prompt_tokens + 1, batch=run.batch,
                                                           prompt_tokens=run.prompt_tokens, gen_tokens=1))
            out.append(Observation(prefill, prefill_s=run.prefill_seconds, label=f"prefill L{run.n_layers} B{run.batch}"))
    return out


def split_heldout(obs: list[Observation]) -> tuple[list[Observation], list[Observation]]:
    """Every third decode configuration (and its prefill) is held out."""
    keys = sorted({o.label.replace("prefill ", "").split(" ctx")[0] + " " + o.label.split(" ctx")[-1]
                   for o in obs if o.decode_step_s})
    held_keys = set(keys[2::3])
    held = [o for o in obs if o.decode_step_s and (o.label.split(" ctx")[0] + " " + o.label.split(" ctx")[-1]) in held_keys]
    return [o for o in obs if o not in held], held


DEVICES = ("auto", "cuda", "mps", "cpu")


class CalibrationRejected(Exception):
    """The measurements were too noisy for a meaningful fit; the message says why."""


HELDOUT_LIMIT_PCT = 30.0  # beyond this, predictions on runs the fit did not see are not worth saving
NOISY_SHARE_LIMIT = 1 / 3  # share of measured points still noisy after the retries


def device_roofs(suite) -> dict[str, float]:
    """What the benchmark measured about the device itself, engine-independent."""
    roofs = {"read_bytes_per_s": suite.read.bytes_per_s, "copy_bytes_per_s": suite.copy.bytes_per_s}
    if suite.gemv:
        roofs["gemv_bytes_per_s"] = max(g.bytes_per_s for g in suite.gemv)
    if suite.gemm:
        roofs["gemm_flops_per_s"] = max(g.flops_per_s for g in suite.gemm)
    for r in getattr(suite, "simd", []):
        key = "float" if r.kernel == "fp32-gemv" else "int"
        roofs[f"{key}_vector_ops_per_s_per_thread"] = r.vector_ops_per_s / r.threads
    return roofs


def rejection(noise: dict, heldout_pct: float | None) -> str | None:
    """Why a calibration must not be saved, or None: too many points still noisy after retries, or a
    held-out error that makes the fit meaningless."""
    spreads = noise.get("spreads", {})
    noisy = noise.get("noisy", [])
    load = noise.get("load_before")
    busy = f" (load average {load:.1f})" if load is not None else ""
    if spreads and len(noisy) / len(spreads) > NOISY_SHARE_LIMIT:
        worst = max(spreads, key=spreads.get)
        return (f"the machine was too busy{busy}: {len(noisy)} of {len(spreads)} measurements still varied by more "
                f"than 25% between their two fastest interleaved repeats after retries (worst: {worst}, "
                f"{100 * spreads[worst]:.0f}%); close other programs and run planner calibrate again")
    if heldout_pct is not None and heldout_pct > HELDOUT_LIMIT_PCT:
        return (f"the fit is meaningless{busy}: it predicts the held-out decode steps with a median error of "
                f"{heldout_pct:.0f}% (limit {HELDOUT_LIMIT_PCT:.0f}%); close other programs and run planner "
                "calibrate again")
    return None


def calibrate_with_benchmark(device: str = "auto", quick: bool = False, model: str | None = None,
                             progress: Callable[[str], None] | None = None) -> tuple[Calibration, object]:
    if device not in DEVICES:
        raise InputError(f"unknown --device '{clean_name(device)}'; choose one of: {', '.join(DEVICES)}")
    dims = dims_for_model(catalog.load_model(model)) if model else None
    try:
        from planner.kernels.decode_bench import run_suite

        suite = run_suite(device=device, quick=quick, dims=dims, progress=progress)
    except ImportError:
        raise InputError("the built-in benchmark needs PyTorch: pip install 'planner[bench]' (or calibrate "
                         "from measurements with --from-llama-bench or --from-csv)") from None
    return calibration_from_suite(suite), suite


def calibration_from_suite(suite) -> Calibration:
    """Fit the torch latency model to one benchmark suite; CalibrationRejected when the repeats were too
    noisy or the fit predicts its held-out runs too badly to be worth saving."""
    key, hw, stored = device_profile(suite)
    obs = observations(suite, hw)
    train, held = split_heldout(obs)
    base = default_efficiency(Engine.torch, hw)
    # The benchmark's layer counts are few, so a per-layer overhead is not identifiable from them.
    result = fit(train, base, f"planner calibrate on {suite.device_name} ({suite.device}, {suite.dtype})",
                 layer_overhead=False)
    held_dec, held_pre = prediction_errors(held, result.efficiency)
    held_errs = [abs(e) for e in held_dec + held_pre]
    band = error_band(held_dec or result.decode_errors_pct)
    eff = result.efficiency.model_copy(update={"error_band": band})
    heldout = float(np.median(held_errs)) if held_errs else None
    # Refuse on the held-out decode steps: what the calibration is used for. A prefill is timed once per
    # pass, so its error says more about one burst of load than about the fit.
    held_decode = float(np.median(np.abs(held_dec))) if held_dec else heldout
    reason = rejection(getattr(suite, "noise", {}), held_decode)
    if reason:
        raise CalibrationRejected(reason)
    return Calibration(
        device_key=key, device_name=suite.device_name, engine=Engine.torch.value, hardware=stored,
        torch_version=suite.torch_version, cuda_version=suite.cuda_version, dtype=suite.dtype,
        shapes=[{"dims": suite.dims.to_dict(), "layers": sorted({r.n_layers for r in suite.runs}),
                 "batches": sorted({r.batch for r in suite.runs}),
                 "contexts": sorted({r.context_tokens for r in suite.runs})}],
        efficiency=eff, fit_median_abs_pct_error=result.median_abs_pct_error,
        heldout_median_abs_pct_error=heldout, n_fit=len(train), n_heldout=len(held),
        measurements=[r.to_dict() for r in suite.runs], roofs=device_roofs(suite), noise=getattr(suite, "noise", {}),
        source=f"planner calibrate: torch decode benchmark on {suite.device}",
    )
