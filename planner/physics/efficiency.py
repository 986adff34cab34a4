"""Efficiency parameters of the latency model: defaults from data, or a device's calibration."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.physics.quant import Engine, QuantFormat
from planner.spec.paths import EFFICIENCY_FILE
from planner.spec.schema import HardwareProfile

DATA_FILE = EFFICIENCY_FILE


# A fraction of a peak (bandwidth or FLOP/s): above 0, at most 1. A negative or larger value would make
# planner promise more than the hardware limit.
Fraction = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
FractionTable = Annotated[dict[Annotated[str, Field(max_length=32)], Fraction], Field(min_length=1, max_length=32)]


class Efficiency(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    weight_bandwidth: FractionTable
    kv_bandwidth: float = Field(gt=0, le=1)
    compute: FractionTable
    decode_compute: FractionTable | None = Field(
        default=None, description="small-batch GEMM efficiency in decode steps, when it differs from prefill's")
    step_overhead_s: float = Field(ge=0, le=1)
    layer_overhead_s: float = Field(default=0.0, ge=0, le=0.1, description="per decoder layer per step")
    prefill_overhead_s: float = Field(ge=0, le=10)
    allreduce_latency_s: float | None = Field(default=None, ge=0, le=0.01,
                                              description="overrides the interconnect's all-reduce latency")
    matvec_flops_per_core_cycle: dict[str, float] | None = Field(
        default=None, description="llama.cpp CUDA-core / Metal mat-vec FLOP per SM (GPU core) cycle, per format family")
    gemm_tensor_share: dict[str, float] | None = Field(
        default=None, description="llama.cpp prefill: share of the FP16 tensor FLOP per SM-cycle reached, per family")
    score_bytes_per_pair_head: float | None = Field(
        default=None, ge=0, le=1000, description="attention-score bytes per (query, key) pair per head, no flash attn")
    source: str = Field(max_length=2000)
    origin: Literal["default", "calibrated", "calibrated-roofs"] = "default"
    error_band: tuple[Annotated[float, Field(gt=0, le=100)], Annotated[float, Field(gt=0, le=100)]] | None = Field(
        default=None, description="(low, high) measured/predicted decode ratio on held-out runs of a calibration")

    @model_validator(mode="after")
    def _band_in_order(self) -> Efficiency:
        if self.error_band is not None and self.error_band[0] > self.error_band[1]:
            raise ValueError(f"error_band low {self.error_band[0]:g} exceeds high {self.error_band[1]:g}")
        return self

    def weight_eff(self, quant: QuantFormat) -> float:
        return _family_value(self.weight_bandwidth, quant.family)

    def compute_eff(self, quant: QuantFormat) -> float:
        return _family_value(self.compute, quant.family)

    def decode_compute_eff(self, quant: QuantFormat) -> float:
        return _family_value(self.decode_compute or self.compute, quant.family)

    def matvec_rate_per_core_cycle(self, quant: QuantFormat) -> float | None:
        return _family_value(self.matvec_flops_per_core_cycle, quant.family) if self.matvec_flops_per_core_cycle else None

    def tensor_share(self, quant: QuantFormat) -> float | None:
        return _family_value(self.gemm_tensor_share, quant.family) if self.gemm_tensor_share else None


class Communication(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    allreduce_latency_s: dict[str, float]
    pipeline_hop_s: float = Field(ge=0)
    inter_node_hop_s: float = Field(ge=0)
    pcie_efficiency: float = Field(gt=0, le=1)
    source: str


def _family_value(table: dict[str, float], family: str) -> float:
    """A format family's value, else the nearest family the engine has (int8/fp8 → float-ish)."""
    for key in (family, {"fp8": "int8", "int8": "fp8", "gpu4bit": "kquant", "kquant": "gpu4bit"}.get(family), "float"):
        if key in table:
            return table[key]
    return min(table.values())


def device_family(hw: HardwareProfile) -> str:
    return hw.family


@lru_cache(maxsize=1)
def _data() -> dict:
    import yaml

    # libyaml's safe loader when present: the same safe subset, 30 ms faster on every `plan`
    return yaml.load(DATA_FILE.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def default_efficiency(engine: Engine, hw: HardwareProfile) -> Efficiency:
    """The engine's defaults for this device family; engines missing a family borrow the nearest one
    (Ollama is llama.cpp; vLLM on Apple or CPU borrows torch's)."""
    name = "llama.cpp" if engine is Engine.ollama else engine.value
    family = device_family(hw)
    table = _data()[name]
    if family not in table:
        table = _data()["torch"]
    if family not in table:
        family = "nvidia"
    return Efficiency(**table[family])


@lru_cache(maxsize=1)
def communication() -> Communication:
    return Communication(**_data()["communication"])


def decode_error_band() -> tuple[float, float]:
    """(low, high) multipliers bracketing the true decode speed around a default prediction."""
    band = _data()["decode_error_band"]
    return float(band["low"]), float(band["high"])
