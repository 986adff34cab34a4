"""Speed of one deployment: the `performance` object of `plan`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from planner.physics import latency

from planner.physics import prefill
from planner.physics.efficiency import Efficiency, communication, decode_error_band, default_efficiency
from planner.spec.schema import DeviceKind
from planner.physics.workload import Deployment


class Performance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    decode_tok_s: float = Field(description="per sequence, averaged over the N generated tokens")
    decode_tok_s_first: float = Field(description="per sequence, the first decode step (context = prompt)")
    decode_tok_s_low: float
    decode_tok_s_high: float
    prefill_tok_s: float | None = Field(description="prompt tokens per second; None without a prompt")
    ttft_s: float
    e2e_s: float
    aggregate_tok_s: float = Field(description="all sequences of the batch together")
    bound: Literal["memory", "compute"]
    bound_path: str = Field(description="decode: 'memory', or the kernel path whose compute roof binds "
                                        "(docs/accuracy.md §1)")
    prefill_bound: Literal["memory", "compute"] | None = Field(description="which roof binds the prefill")
    no_kv_cache_e2e_s: float = Field(description="the same generation recomputing the sequence every step")
    kv_cache_speedup: float
    efficiency_source: Literal["default", "calibrated", "calibrated-roofs"] = Field(
        description="default: cited/fitted defaults; calibrated: fitted for this device and engine; "
        "calibrated-roofs: this engine's efficiency relative to device roofs measured by `planner calibrate`")
    step_ms_first: float
    weight_read_bytes_per_step: int
    kv_read_bytes_per_context_token: int


def host_efficiency(d: Deployment) -> Efficiency:
    host = d.host
    if host is None or d.hardware.kind is DeviceKind.cpu:
        return default_efficiency(d.engine, d.hardware if host is None else host)
    return default_efficiency(d.engine, host)


def performance(d: Deployment, eff: Efficiency | None = None) -> Performance:
    eff = eff or default_efficiency(d.engine, d.hardware)
    band = eff.error_band or decode_error_band()
    host_eff = host_efficiency(d)
    comm = communication()
    w = d.workload
    P, N, B = w.prompt_tokens, w.gen_tokens, w.batch
    k = latency.decode_coefficients(d, eff, host_eff, comm)
    first_step = k.step_seconds(P)
    decode_total = latency.decode_seconds_total(k, P, N)
    decode_tok_s = N / decode_total
    if P > 0:
        prefill_s, prefill_bound = prefill.prefill_seconds(d, eff, host_eff, comm, P)
        ttft = prefill_s
        prefill_tok_s = B * P / prefill_s
    else:  # an empty prompt: the first token is a decode step from an empty context (llama-bench tg)
        ttft, prefill_tok_s, prefill_bound = k.step_seconds(0), None, None
    e2e = ttft + latency.decode_seconds_total(k, P + 1, N - 1)
    no_cache = prefill.no_kv_cache_seconds(d, eff, host_eff, comm, P, N)
    return Performance(
        decode_tok_s=decode_tok_s,
        decode_tok_s_first=1.0 / first_step,
        decode_tok_s_low=decode_tok_s * band[0],
        decode_tok_s_high=decode_tok_s * band[1],
        prefill_tok_s=prefill_tok_s,
        ttft_s=ttft,
        e2e_s=e2e,
        aggregate_tok_s=B * decode_tok_s,
        bound=k.bound,
        bound_path=k.bound_path,
        prefill_bound=prefill_bound,
        no_kv_cache_e2e_s=no_cache,
        kv_cache_speedup=no_cache / e2e if e2e else 1.0,
        efficiency_source=eff.origin,
        step_ms_first=first_step * 1000,
        weight_read_bytes_per_step=k.weight_read_bytes,
        kv_read_bytes_per_context_token=k.kv_bytes_per_context_token,
    )
