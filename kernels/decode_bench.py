"""Time real decode steps of a random-weight llama model, and run the calibration suite.

One ``DecodeRun`` = prefill a random prompt of ``prompt_tokens``, then greedy-decode ``warmup_steps + n_steps``
tokens, timing each step on its own (``planner.kernels.timing.time_calls``). The prompt length is chosen so that the
middle timed step attends exactly ``context_tokens`` positions (its own token included), which is the
context used in the byte and FLOP accounting (``planner.kernels.shapes``):

* weight_bytes_per_step = (n_layers · layer_params + hidden + hidden · vocab) · elem_bytes (no embedding table)
* kv_bytes_per_step     = 2 · n_layers · batch · context_tokens · n_kv_heads · head_dim · elem_bytes
* bytes_per_s           = (weight_bytes_per_step + kv_bytes_per_step) / seconds_per_step

Decode throughput as bytes/s over weights + KV follows gpt-fast's "bandwidth achieved = model size × tok/s"
(docs/physics.md §7.1, item 6).

``run_suite`` runs copy/read bandwidth, batch-1 GEMV and a grid of decode runs (plus GEMM and attention in the
full mode) and returns a JSON-able ``BenchSuiteResult`` that ``planner calibrate`` can turn into efficiencies.
"""

from __future__ import annotations

import datetime
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from planner.kernels import microbench as mb
from planner.kernels import robust
from planner.kernels.llama import RandomLlama, build_model
from planner.kernels.microbench import dtype_name
from planner.kernels.shapes import (
    LLAMA_3_1_8B,
    TINYLLAMA_1_1B,
    ModelDims,
    flops_per_step,
    kv_bytes_per_step,
    resident_bytes,
    weight_bytes_per_step,
)
from planner.kernels.timing import Timing, device_sync, import_torch, resolve_device, time_calls

MIB, GIB = 1024**2, 1024**3
Note = Callable[[str], None]  # a progress callback: one line per benchmark step


@dataclass(frozen=True)
class DecodeRun:
    """One timed decode configuration; seconds are per decode step (one new token for each of ``batch``)."""

    device: str
    dtype: str
    batch: int
    context_tokens: int
    prompt_tokens: int
    n_layers: int
    dims: ModelDims
    weight_bytes_per_step: int
    kv_bytes_per_step: int
    flops_per_step: int
    seconds_per_step: float
    seconds_per_step_p20: float
    seconds_per_step_p80: float
    n_steps: int
    prefill_seconds: float
    bytes_per_s: float
    flops_per_s: float

    @property
    def tokens_per_s(self) -> float:
        """batch / seconds_per_step: tokens generated per second across the batch."""
        return self.batch / self.seconds_per_step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DecodeRun:
        return cls(**{**data, "dims": ModelDims.from_dict(data["dims"])})


def prompt_length(context_tokens: int, warmup_steps: int, n_steps: int) -> int:
    """Prompt length P such that timed step n_steps // 2 attends ``context_tokens`` positions.

    Decode step j (0-based, warm-up included) writes position P + j and attends P + j + 1 positions, so the
    middle timed step j = warmup_steps + n_steps // 2 attends P + warmup_steps + n_steps // 2 + 1.
    """
    prompt = context_tokens - warmup_steps - n_steps // 2 - 1
    if prompt < 1:
        raise ValueError(
            f"context_tokens ({context_tokens}) must exceed warmup_steps + n_steps // 2 + 1 "
            f"({warmup_steps + n_steps // 2 + 1})"
        )
    return prompt


def cache_length(context_tokens: int, warmup_steps: int, n_steps: int) -> int:
    """Positions the KV cache must hold: the prompt plus every decode step."""
    return prompt_length(context_tokens, warmup_steps, n_steps) + warmup_steps + n_steps


def _time_decode(
    model: RandomLlama, batch: int, context_tokens: int, warmup_steps: int, n_steps: int, seed: int
) -> tuple[int, float, Timing]:
    """Prefill a random prompt, then time the decode steps: (prompt_tokens, prefill_seconds, timing)."""
    torch = import_torch()
    dims, device = model.dims, model.device
    prompt_tokens = prompt_length(context_tokens, warmup_steps, n_steps)
    cache = model.new_cache(batch, cache_length(context_tokens, warmup_steps, n_steps))
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(0, dims.vocab, (batch, prompt_tokens), generator=gen).to(device)
    state = {"pos": prompt_tokens}
    with torch.inference_mode():
        device_sync(device)
        t0 = time.perf_counter()
        state["token"] = model.forward(prompt, 0, cache).argmax(-1, keepdim=True)
        device_sync(device)
        prefill_seconds = time.perf_counter() - t0

        def step() -> None:  # one greedy decode step for every sequence in the batch
            logits = model.forward(state["token"], state["pos"], cache)
            state["token"] = logits.argmax(-1, keepdim=True)
            state["pos"] += 1

        timing = time_calls(step, device, warmup=warmup_steps, repeats=n_steps)
    return prompt_tokens, prefill_seconds, timing


def _decode_result(
    model: RandomLlama, batch: int, context_tokens: int, prompt_tokens: int, prefill_s: float, timing: Timing
) -> DecodeRun:
    """Attach the byte and FLOP accounting of ``planner.kernels.shapes`` to one timed decode."""
    torch = import_torch()
    dims = model.dims
    elem = torch.empty((), dtype=model.dtype).element_size()
    weight_bytes = weight_bytes_per_step(dims, model.n_layers, elem)
    kv_bytes = kv_bytes_per_step(dims, model.n_layers, batch, context_tokens, elem)
    flops = flops_per_step(dims, model.n_layers, batch, context_tokens)
    return DecodeRun(
        device=model.device,
        dtype=dtype_name(model.dtype),
        batch=batch,
        context_tokens=context_tokens,
        prompt_tokens=prompt_tokens,
        n_layers=model.n_layers,
        dims=dims,
        weight_bytes_per_step=weight_bytes,
        kv_bytes_per_step=kv_bytes,
        flops_per_step=flops,
        seconds_per_step=timing.median_s,
        seconds_per_step_p20=timing.p20_s,
        seconds_per_step_p80=timing.p80_s,
        n_steps=timing.n,
        prefill_seconds=prefill_s,
        bytes_per_s=(weight_bytes + kv_bytes) / timing.median_s,
        flops_per_s=flops / timing.median_s,
    )


def run_decode(
    model: RandomLlama,
    batch: int,
    context_tokens: int,
    warmup_steps: int = 3,
    n_steps: int = 10,
    seed: int = 0,
) -> DecodeRun:
    """Prefill, then time ``n_steps`` greedy decode steps after ``warmup_steps``; see the module docstring."""
    prompt_tokens, prefill_s, timing = _time_decode(model, batch, context_tokens, warmup_steps, n_steps, seed)
    return _decode_result(model, batch, context_tokens, prompt_tokens, prefill_s, timing)


@dataclass(frozen=True)
class BenchSuiteResult:
    """Everything one ``run_suite`` call measured, with the identity of the device that measured it."""

    device: str  # 'cuda', 'mps' or 'cpu'
    device_name: str  # torch.cuda.get_device_name(), or the CPU model name
    torch_version: str
    cuda_version: str | None  # torch.version.cuda on CUDA builds
    dtype: str
    cpu_threads: int  # torch.get_num_threads(), left at torch's default
    created_utc: str  # ISO 8601
    quick: bool
    dims: ModelDims
    memory_budget_bytes: int
    copy: mb.CopyResult
    read: mb.ReadResult
    gemv: list[mb.GemvResult]
    runs: list[DecodeRun]
    gemm: list[mb.GemmResult] = field(default_factory=list)
    attention: list[mb.AttentionResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # grid points left out, with the reason
    elapsed_seconds: float = 0.0
    simd: list[mb.SimdResult] = field(default_factory=list)  # CPU: cache-resident fp32 and int8 dot rates
    noise: dict[str, Any] = field(default_factory=dict)  # planner.kernels.robust.Noise.to_dict()

    def weight_streaming_run(self) -> DecodeRun | None:
        """The largest-weight run at the smallest batch and context: the point dominated by weight reads."""
        if not self.runs:
            return None
        return max(self.runs, key=lambda r: (r.weight_bytes_per_step, -r.batch, -r.context_tokens))

    def fraction_of_copy_bandwidth(self, run: DecodeRun) -> float:
        """run.bytes_per_s / copy.bytes_per_s."""
        return run.bytes_per_s / self.copy.bytes_per_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchSuiteResult:
        return cls(
            **{
                **data,
                "dims": ModelDims.from_dict(data["dims"]),
                "copy": mb.CopyResult.from_dict(data["copy"]),
                "read": mb.ReadResult.from_dict(data["read"]),
                "gemv": [mb.GemvResult.from_dict(g) for g in data["gemv"]],
                "runs": [DecodeRun.from_dict(r) for r in data["runs"]],
                "gemm": [mb.GemmResult.from_dict(g) for g in data.get("gemm", [])],
                "attention": [mb.AttentionResult.from_dict(a) for a in data.get("attention", [])],
                "simd": [mb.SimdResult.from_dict(x) for x in data.get("simd", [])],
            }
        )


def device_name(device: str) -> str:
    """torch.cuda.get_device_name() on CUDA; otherwise the CPU model (/proc/cpuinfo, else platform)."""
    torch = import_torch()
    if device == "cuda":
        return str(torch.cuda.get_device_name())
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"Apple GPU (mps) on {cpu}" if device == "mps" else cpu


def default_memory_budget_bytes(device: str) -> int:
    """Half of the free GPU memory on CUDA; elsewhere a quarter of physical RAM, at most 4 GiB."""
    torch = import_torch()
    if device == "cuda":
        free_bytes, _total = torch.cuda.mem_get_info()
        return int(free_bytes) // 2
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 * GIB
    return min(4 * GIB, ram // 4)


def suite_grid(device: str, quick: bool) -> dict[str, list[int]]:
    """Contexts, batches and layer counts (before the memory budget trims them) for one device and mode."""
    if device == "cpu":
        if quick:
            return {"contexts": [128, 512], "batches": [1, 2], "layers": [1, 2]}
        return {"contexts": [128, 1024, 2048], "batches": [1, 4], "layers": [1, 4]}
    if quick:
        return {"contexts": [512, 4096], "batches": [1, 8], "layers": [2, 8]}
    return {"contexts": [512, 4096, 16384], "batches": [1, 8, 32], "layers": [1, 8, 32]}


def _identity(device: str, dtype: Any) -> dict[str, Any]:
    torch = import_torch()
    return {
        "device": device,
        "device_name": device_name(device),
        "torch_version": str(torch.__version__),
        "cuda_version": torch.version.cuda if device == "cuda" else None,
        "dtype": dtype_name(dtype),
        "cpu_threads": int(torch.get_num_threads()),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class _DecodePlan:
    """What every decode run of the grid shares: where, in what dtype, under which budget, how many steps."""

    device: str
    dims: ModelDims
    torch_dtype: Any
    elem: int  # bytes per element of torch_dtype
    budget: int
    warmup_steps: int
    n_steps: int
    note: Note


def _decode_model_runs(
    plan: _DecodePlan, model: RandomLlama, n_layers: int, grid: dict[str, list[int]], skipped: list[str],
    only: set[tuple] | None = None,
) -> list[DecodeRun]:
    """Decode runs of one built model over contexts × batches (those keyed in ``only`` when given);
    points over the budget go to ``skipped``."""
    runs = []
    for ctx in grid["contexts"]:
        for batch in grid["batches"]:
            if only is not None and (n_layers, batch, ctx) not in only:
                continue
            need = resident_bytes(
                plan.dims, n_layers, batch, cache_length(ctx, plan.warmup_steps, plan.n_steps), plan.elem
            )
            if need > plan.budget:
                skipped.append(
                    f"n_layers={n_layers} batch={batch} context={ctx}: needs {need} B > {plan.budget} B"
                )
                continue
            plan.note(f"decode: {n_layers} layer(s), batch {batch}, context {ctx}")
            runs.append(run_decode(model, batch, ctx, plan.warmup_steps, plan.n_steps))
    return runs


def _decode_grid(plan: _DecodePlan, grid: dict[str, list[int]],
                 only: set[tuple] | None = None) -> tuple[list[DecodeRun], list[str]]:
    """Build one random model per layer count and run the grid on it, freeing it before the next."""
    torch = import_torch()
    dims, budget = plan.dims, plan.budget
    runs: list[DecodeRun] = []
    skipped: list[str] = []
    max_seq = cache_length(max(grid["contexts"]), plan.warmup_steps, plan.n_steps)
    for n_layers in sorted({min(n, dims.n_layers) for n in grid["layers"]}):
        if only is not None and not any(k[0] == n_layers for k in only):
            continue
        if resident_bytes(dims, n_layers, 1, 0, plan.elem) > budget:
            skipped.append(f"n_layers={n_layers}: weights exceed the {budget} B budget")
            continue
        plan.note(f"building {n_layers} random layer(s) of {dims}")
        model = build_model(dims, n_layers, plan.device, plan.torch_dtype, max_seq=max_seq)
        runs.extend(_decode_model_runs(plan, model, n_layers, grid, skipped, only))
        del model
        if plan.device == "cuda":
            torch.cuda.empty_cache()
    return runs, skipped


def run_suite(
    device: str = "auto",
    quick: bool = False,
    dims: ModelDims | None = None,
    memory_budget_bytes: int | None = None,
    progress: Callable[[str], None] | None = None,
    dtype: str | None = None,
) -> BenchSuiteResult:
    """Copy/read bandwidth, batch-1 GEMV over the layer's largest matrices, and decode runs over the grid.

    Defaults: TinyLlama-1.1B layer shapes in fp32 on CPU, Llama-3.1-8B layer shapes in bf16 on CUDA
    (fp16 on MPS); ``dtype`` (a torch dtype name such as 'float16') overrides that. Grid points whose
    ``resident_bytes`` exceed the budget are listed in ``skipped``.
    """
    torch = import_torch()
    t_start = time.perf_counter()
    device = resolve_device(device)
    note = progress or (lambda _msg: None)
    torch_dtype = mb.dtype_for(device, dtype)
    elem = torch.empty((), dtype=torch_dtype).element_size()
    dims = dims or (TINYLLAMA_1_1B if device == "cpu" else LLAMA_3_1_8B)
    budget = memory_budget_bytes or default_memory_budget_bytes(device)
    stream_bytes = min(budget // 4, (256 if quick or device == "cpu" else 1024) * MIB)
    noise = robust.Noise(load_before=robust.load_average())
    note(f"copy and read bandwidth{' and SIMD rates' if device == 'cpu' else ''}, interleaved")
    roofs = robust.interleaved(mb.roof_measures(device, stream_bytes, dtype), lambda r: r.seconds, 3, noise)
    copy, read = roofs.pop("copy"), roofs.pop("read")
    gemv = mb.gemv_suite(device, dims, quick, stream_bytes, dtype, note)
    grid = suite_grid(device, quick)
    gemm, attention = ([], []) if quick else mb.gemm_and_attention(device, dims, grid, dtype, note)
    warmup_steps, n_steps = (2, 6) if quick else (3, 10)  # quick: two passes of 6 timed steps
    plan = _DecodePlan(device, dims, torch_dtype, elem, budget, warmup_steps, n_steps, note)
    skipped: list[str] = []

    def one_pass(only: set[tuple] | None) -> list[DecodeRun]:
        runs, missed = _decode_grid(plan, grid, only)
        skipped.extend(m for m in missed if m not in skipped)
        return runs

    runs = robust.decode_passes(one_pass, 2, noise)
    noise.load_after = robust.load_average()
    return BenchSuiteResult(
        **_identity(device, torch_dtype), quick=quick, dims=dims, memory_budget_bytes=budget, copy=copy, read=read,
        gemv=gemv, runs=runs, gemm=gemm, attention=attention, skipped=skipped,
        elapsed_seconds=time.perf_counter() - t_start, simd=list(roofs.values()), noise=noise.to_dict(),
    )

