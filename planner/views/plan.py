"""Text views of `plan` results."""

from __future__ import annotations

from planner.estimate import Estimate
from planner.views.text import gib, mib, num, seconds, table, yes_no


def _header(e: Estimate) -> str:
    gpus = f"{e.num_gpus} x {e.gpu}" if e.num_gpus > 1 else e.gpu
    return (f"{e.model} on {gpus} with {e.engine}: ctx {e.ctx:,}, batch {e.batch}, kv {e.kv_dtype}, "
            f"prompt {e.prompt_tokens:,}, gen {e.gen_tokens:,}")


def _warnings(estimates: list[Estimate]) -> list[str]:
    seen: list[str] = []
    for e in estimates:
        for w in e.warnings:
            if w not in seen:
                seen.append(w)
    return [f"warning: {w}" for w in seen]


def summary(estimates: list[Estimate]) -> str:
    rows = []
    for e in estimates:
        m = e.memory
        p = e.performance
        rows.append([e.quant, gib(m.weights_bytes), gib(m.device_weights_bytes), gib(m.kv_cache_bytes),
                     gib(m.overhead_bytes), gib(m.total_bytes), gib(m.device_bytes), yes_no(m.fits),
                     gib(m.headroom_bytes), num(p.decode_tok_s), seconds(p.ttft_s), seconds(p.e2e_s)])
    headers = ["quant", "file GiB", "weights GiB", "KV GiB", "overhead GiB", "total GiB", "device GiB", "fits",
               "headroom GiB", "tok/s", "TTFT", "e2e"]
    return "\n".join([_header(estimates[0]), "", table(rows, headers), *_warnings(estimates)])


def detail(e: Estimate) -> str:
    m = e.memory
    rows = [["weights in device memory", mib(m.device_weights_bytes), gib(m.device_weights_bytes)],
            ["KV cache", mib(m.kv_cache_bytes), gib(m.kv_cache_bytes)]]
    rows += [[f"  overhead: {k.replace('_', ' ')}", mib(v), gib(v)] for k, v in m.overhead.items()]
    rows += [["total needed", mib(m.total_bytes), gib(m.total_bytes)],
             ["device memory usable", mib(m.device_bytes), gib(m.device_bytes)],
             ["headroom", mib(m.headroom_bytes), gib(m.headroom_bytes)]]
    lines = [_header(e), f"quant {e.quant}: model file {gib(m.weights_bytes)} GiB", "",
             table(rows, ["memory", "MiB", "GiB"])]
    if m.host_bytes:
        lines.append(f"host memory: {gib(m.host_bytes)} GiB (weights {gib(m.host_weights_bytes)}, "
                     f"KV {gib(m.host_kv_cache_bytes)})")
    lines.append(f"fits: {yes_no(m.fits)}")
    if e.offload is not None and e.offload.host_layers:
        lines.append(f"offload: {e.offload.host_layers} layers in host memory ({e.offload.host}), "
                     f"{e.offload.gpu_layers} on the GPU: llama.cpp -ngl {e.offload.ngl}")
    if e.parallelism is not None:
        par = e.parallelism
        lines.append(f"parallelism: {par.mode}, TP {par.tensor_parallel_size} x PP {par.pipeline_parallel_size} "
                     f"on {par.nodes} node(s) of {par.gpus_per_node} GPUs: {par.launch}")
    p = e.performance
    band = f"{num(p.decode_tok_s_low)}-{num(p.decode_tok_s_high)}"
    perf = [["decode tok/s (per sequence, mean over gen)", f"{num(p.decode_tok_s)} (likely {band})"],
            ["decode tok/s, first step", num(p.decode_tok_s_first)],
            ["prefill tok/s", num(p.prefill_tok_s)],
            ["time to first token", seconds(p.ttft_s)],
            ["end-to-end", seconds(p.e2e_s)],
            ["aggregate tok/s (batch)", num(p.aggregate_tok_s)],
            ["bound (decode)", p.bound if p.bound_path == "memory" else f"{p.bound}: {p.bound_path}"],
            ["bound (prefill)", p.prefill_bound or "-"],
            ["without a KV cache", f"{seconds(p.no_kv_cache_e2e_s)} ({p.kv_cache_speedup:,.1f}x slower)"],
            ["efficiencies", p.efficiency_source]]
    lines += ["", table(perf, ["speed", "value"])]
    lines += _warnings([e])
    return "\n".join(lines)
