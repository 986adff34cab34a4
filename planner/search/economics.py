"""Cost and energy of serving: rental price per GPU-hour and board power from the hardware catalog."""

from __future__ import annotations

from planner.spec.schema import HardwareProfile


def usd_per_gpu_hour(hw: HardwareProfile, override: float | None = None) -> float | None:
    """``override`` (--usd-per-gpu-hour) when given, else the catalog's cited on-demand price."""
    if override is not None:
        return override
    return hw.cloud_price.usd_per_gpu_hour if hw.cloud_price else None


def usd_per_hour(price_per_gpu_hour: float | None, gpus: int) -> float | None:
    return None if price_per_gpu_hour is None else price_per_gpu_hour * gpus


def usd_per_million_tokens(usd_hour: float | None, tok_s: float) -> float | None:
    """USD per 10⁶ output tokens = USD/h ÷ (tok/s × 3600) × 10⁶."""
    if usd_hour is None or tok_s <= 0:
        return None
    return usd_hour / (tok_s * 3600.0) * 1e6


def energy_kwh_per_million_tokens(hw: HardwareProfile, gpus: int, tok_s: float) -> float | None:
    """kWh per 10⁶ output tokens with every GPU at board power (an upper bound on GPU energy; host,
    cooling and idle draw are not included): W × GPUs ÷ 1000 ÷ (tok/s × 3600) × 10⁶."""
    if hw.power is None or tok_s <= 0:
        return None
    return hw.power.board_watts * gpus / 1000.0 / (tok_s * 3600.0) * 1e6
