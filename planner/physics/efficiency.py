"""Efficiency parameters of the latency model: defaults from data, or a device's calibration."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.physics.quant import Engine, QuantFormat
from planner.spec.paths import EFFICIENCY_FILE
from planner.spec.schema import HardwareProfile

DATA_FILE = EFFICIENCY_FILE


class Efficiency(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weight_bandwidth: dict[str, float]
    kv_bandwidth: float = Field(gt=0, le=1)
    compute: dict[str, float]
    decode_compute: dict[str, float] | None = Field(
        default=None, description="small-batch GEMM efficiency in decode steps, when it differs from prefill's")
    step_overhead_s: float = Field(ge=0, le=1)
    layer_overhead_s: float = Field(default=0.0, ge=0, le=0.1, description="per decoder layer per step")
    prefill_overhead_s: float = Field(ge=0, le=10)
    allreduce_latency_s: float | None = Field(default=None, ge=0, le=0.01,
                                              description="overrides the interconnect's all-reduce latency")
    source: str
    origin: Literal["default", "calibrated", "calibrated-roofs"] = "default"
    error_band: tuple[float, float] | None = Field(
        default=None, description="(low, high) measured/predicted decode ratio on held-out runs of a calibration")

    def weight_eff(self, quant: QuantFormat) -> float:
        return _family_value(self.weight_bandwidth, quant.family)

    def compute_eff(self, quant: QuantFormat) -> float:
        return _family_value(self.compute, quant.family)

    def decode_compute_eff(self, quant: QuantFormat) -> float:
        return _family_value(self.decode_compute or self.compute, quant.family)


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

    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


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
