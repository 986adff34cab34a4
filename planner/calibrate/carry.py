"""A device calibration carried over to the engines it was not measured with.

`planner calibrate` runs the torch benchmark, which measures the device: achievable bandwidth, SIMD or
GEMM rates, step overhead. Users then deploy llama.cpp, Ollama or vLLM on it. Each engine uses those
measured roofs through its own efficiency relative to them (``efficiency_source: calibrated-roofs``):

* a measured profile (a CPU, ``--gpu local``) whose engine and family have an entry under
  ``measured_roofs`` in planner/data/efficiency.yaml: that entry, relative to the measured bandwidth and
  SIMD rates (the profile's cpu block; planner.physics.cpu);
* vLLM on a measured CPU runs PyTorch kernels: the torch calibration's own fit;
* otherwise the engine's default efficiencies scaled by how far this device's calibrated torch
  efficiencies are from torch's defaults (the device's deviation from its family).
"""

from __future__ import annotations

from planner.physics.efficiency import Efficiency, _data, default_efficiency
from planner.physics.quant import Engine
from planner.spec.schema import HardwareProfile

SCALED_FIELDS = ("weight_bandwidth", "compute")


def has_roofs(cal) -> bool:
    """Whether a calibration measured the device (the torch benchmark), not only one engine on it."""
    return cal.engine == Engine.torch.value and bool(cal.roofs or cal.hardware is not None)


def _scaled(table: dict[str, float], ratio: float) -> dict[str, float]:
    return {k: min(1.0, v * ratio) for k, v in table.items()}


def carried_efficiency(cal, engine: Engine, hw: HardwareProfile) -> Efficiency:
    """``engine``'s efficiency on the device a torch-benchmark calibration ``cal`` measured."""
    name = "llama.cpp" if engine is Engine.ollama else engine.value
    measured = cal.hardware is not None
    entry = _data().get("measured_roofs", {}).get(name, {}).get(hw.family) if measured else None
    note = f"device roofs measured by {cal.source} ({cal.created_utc})"
    if entry is not None:
        eff = Efficiency(**entry)
        return eff.model_copy(update={"origin": "calibrated-roofs", "source": f"{note}; {name} relative to them: "
                                      f"{eff.source}"})
    if measured and engine is Engine.vllm and hw.family == "cpu":
        return cal.efficiency.model_copy(update={"origin": "calibrated-roofs",
                                                 "source": f"{note}; vLLM's CPU backend runs PyTorch kernels"})
    base = default_efficiency(engine, hw)
    torch_default = default_efficiency(Engine.torch, hw)
    measured_eff = cal.efficiency
    bw = measured_eff.weight_bandwidth.get("float", 1.0) / torch_default.weight_bandwidth.get("float", 1.0)
    kv = measured_eff.kv_bandwidth / torch_default.kv_bandwidth
    flops = measured_eff.compute.get("float", 1.0) / torch_default.compute.get("float", 1.0)
    return base.model_copy(update={
        "weight_bandwidth": _scaled(base.weight_bandwidth, bw), "kv_bandwidth": min(1.0, base.kv_bandwidth * kv),
        "compute": _scaled(base.compute, flops),
        "decode_compute": _scaled(base.decode_compute, flops) if base.decode_compute else None,
        "origin": "calibrated-roofs", "error_band": None,
        "source": f"{note}; {name} defaults scaled by this device's torch efficiency over torch's default "
                  f"(bandwidth x{bw:.2f}, KV x{kv:.2f}, compute x{flops:.2f})",
    })
