"""One scenario in, estimates out: ``resolve`` turns names into a validated ``Scenario``; ``plan`` lays
out weights and adds up memory and time for it. Pure apart from reading spec files through
``catalog``/``readers`` in ``resolve``."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from planner.spec import catalog
from planner.physics.efficiency import Efficiency
from planner.physics.engines import ENGINE_KV_DTYPES, get_engine
from planner.errors import FieldError, InputError, UnknownNameError
from planner.physics.kvcache import get_kv_dtype
from planner.spec.layout import WeightLayout
from planner.physics.memory import MemoryBreakdown, memory_breakdown
from planner.physics.performance import Performance, performance
from planner.physics.quant import Engine, QuantFormat, check_supported, get_quant
from planner.spec.schema import DeviceKind, HardwareProfile, ModelSpec
from planner.units import GIB
from planner.physics.weights import weight_layout
from planner.physics.workload import Deployment, Parallel, Workload

class ResolvedModel(BaseModel):
    """A model from the catalog or from a file; a file may fix the format and the exact bytes."""

    model_config = ConfigDict(frozen=True)

    spec: ModelSpec
    layout: WeightLayout | None = None
    quant: str | None = None


class Estimate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    gpu: str
    engine: str
    quant: str
    kv_dtype: str
    ctx: int
    batch: int
    prompt_tokens: int
    gen_tokens: int
    num_gpus: int
    memory: MemoryBreakdown
    performance: Performance
    parallelism: Parallelism | None = None
    offload: Offload | None = None
    warnings: list[str] = Field(default_factory=list)
    # What was planned, kept for views, launch commands and recommend (not part of the JSON).
    deployment: Deployment | None = Field(default=None, exclude=True, repr=False)
    scenario: Scenario | None = Field(default=None, exclude=True, repr=False)


def _may_name_a_model_file(name: str) -> bool:
    """False when ``readers.is_model_file`` would surely say no (not .gguf, not config.json, no folder), so
    a catalog name never imports the file readers (docs/performance.md)."""
    from pathlib import Path

    if name.lower().endswith(".gguf") or Path(name).name == "config.json":
        return True
    try:
        return Path(name).is_dir()
    except OSError:
        return False


def resolve_model(name: str) -> ResolvedModel:
    if _may_name_a_model_file(name):
        from planner.spec import readers

        if readers.is_model_file(name):
            mf = readers.read_model_file(name)
            return ResolvedModel(spec=mf.spec, layout=mf.layout, quant=mf.quant)
    return ResolvedModel(spec=catalog.load_model(name))


def resolve_hardware(gpu: str | HardwareProfile) -> HardwareProfile:
    """A catalog id, alias or YAML path; a profile already resolved (``--gpu local``, see
    planner.calibrate.store.local_device) passes through."""
    return gpu if isinstance(gpu, HardwareProfile) else catalog.load_hardware(gpu)


def resolve_host(host: str | None) -> HardwareProfile:
    """A host-memory profile (kind cpu) for offloaded layers; the default is a dual-channel DDR5 desktop."""
    cpus = [h.id for h in catalog.hardware().items.values() if h.kind is DeviceKind.cpu] if host else []
    try:
        hw = catalog.load_hardware(host or DEFAULT_HOST)
    except UnknownNameError:
        raise UnknownNameError("host", host, cpus) from None
    if hw.kind is not DeviceKind.cpu:
        raise FieldError(f"{{host}} takes a host memory profile ({', '.join(cpus)}); '{hw.id}' is a {hw.kind.value}", "host")
    return hw


def resolve_quant(model: ResolvedModel, quant: str | None) -> str | None:
    """A file fixes its format; a different ``--quant`` for it is a contradiction."""
    if model.layout is not None and quant is not None and model.quant and quant.lower() != model.quant:
        raise FieldError(f"the model file is {model.quant}; {{quant}} {quant} contradicts it (leave {{quant}} out)", "quant")
    return model.quant if model.layout is not None and model.quant else quant


def deployment(
    model: ResolvedModel,
    hardware: HardwareProfile,
    engine: Engine,
    quant: QuantFormat,
    kv_dtype: str = "f16",
    workload: Workload | None = None,
    num_gpus: int = 1,
    nodes: int = 1,
    parallel: Parallel | None = None,
    host: HardwareProfile | None = None,
    host_layers: int = 0,
    threads: int | None = None,
) -> Deployment:
    check_supported(engine, quant, model.spec)
    if kv_dtype.lower() not in ENGINE_KV_DTYPES[engine]:
        raise InputError(
            f"engine {engine.value} does not support kv dtype '{kv_dtype}'; choose one of: "
            f"{', '.join(ENGINE_KV_DTYPES[engine])}"
        )
    from_file = model.layout is not None and (model.quant is None or model.quant == quant.id)
    layout = model.layout if from_file else _catalog_layout(model.spec, quant, engine)
    if parallel is None:
        parallel = "tp" if engine is Engine.vllm else "layer"
    if parallel == "tp" and engine.reads_gguf:
        raise FieldError("llama.cpp splits layers across GPUs ({parallel} layer); tensor parallel needs vllm", "parallel")
    return Deployment(
        model=model.spec, hardware=hardware, engine=engine, quant=quant, kv_dtype=get_kv_dtype(kv_dtype),
        layout=layout, workload=workload or Workload(), num_gpus=num_gpus, nodes=nodes, parallel=parallel,
        host=host, host_layers=host_layers, layout_from_file=from_file, threads=threads,
    )


@lru_cache(maxsize=256)
def _catalog_layout(spec: ModelSpec, quant: QuantFormat, engine: Engine) -> WeightLayout:
    """``weight_layout``, once per (model, format, engine): it walks every tensor of the model, and a
    deploy file or an offload bisection asks for the same layout many times (specs are frozen)."""
    return weight_layout(spec, quant, engine)


def _warnings(d: Deployment, mem: MemoryBreakdown) -> list[str]:
    out = []
    a, w = d.model.architecture, d.workload
    if w.ctx > a.max_context:
        out.append(f"ctx {w.ctx} exceeds {d.model.id}'s trained context of {a.max_context} tokens")
    if w.prompt_tokens + w.gen_tokens > w.ctx:
        out.append(
            f"prompt {w.prompt_tokens} + gen {w.gen_tokens} tokens exceed ctx {w.ctx}; generation would be cut off"
        )
    if d.engine.reads_gguf and d.kv_dtype.id in ("q8_0", "q4_0"):
        out.append("a quantized V cache needs Flash Attention (-fa on)")
    if d.engine is Engine.vllm and mem.kv_cache_tokens is not None:
        out.append(
            f"vLLM reserves {mem.device_bytes / GIB:.1f} GiB up front; its KV pool would hold about "
            f"{mem.kv_cache_tokens:,} tokens"
        )
    hw = d.hardware
    if d.engine is Engine.vllm and hw.family == "apple":
        out.append("vLLM has no Apple GPU (Metal) backend; on a Mac use llama.cpp or Ollama")
    if d.quant.id == "fp8" and hw.compute.fp8_tflops is None and hw.kind is not DeviceKind.cpu:
        out.append(f"{hw.id} has no FP8 tensor cores: FP8 weights run as weight-only FP8 (dequantised to 16 bit)")
    if mem.host_bytes and d.host is not None and mem.host_bytes > d.host.memory_bytes:
        out.append(f"host memory {d.host.id} ({d.host.memory_bytes / GIB:.0f} GiB) cannot hold the "
                   f"{mem.host_bytes / GIB:.1f} GiB kept on the host")
    return out


DEFAULT_HOST = "ddr5-6000-2ch"  # a typical dual-channel DDR5 desktop


class Parallelism(BaseModel):
    """How the GPUs share the model: tensor parallel inside a node, pipeline stages across GPUs or nodes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    nodes: int
    gpus_per_node: int
    launch: str = Field(description="the engine's flags for this layout")


def parallelism(d: Deployment) -> Parallelism:
    if d.engine is Engine.vllm:
        launch = f"--tensor-parallel-size {d.tp} --pipeline-parallel-size {d.pp}"
        if d.nodes > 1:
            launch += " --distributed-executor-backend ray"
    elif d.engine.reads_gguf:
        launch = f"--split-mode layer (-sm layer) over {d.num_gpus} GPUs" if d.num_gpus > 1 else "one GPU"
    else:
        launch = "device_map='auto' (layers split over GPUs)" if d.num_gpus > 1 else "one device"
    return Parallelism(mode=d.parallel, tensor_parallel_size=d.tp, pipeline_parallel_size=d.pp, nodes=d.nodes,
                       gpus_per_node=d.gpus_per_node, launch=launch)


class Offload(BaseModel):
    """Where llama.cpp puts the decoder layers: ``-ngl`` counts the GPU layers plus the output layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host_layers: int
    gpu_layers: int
    ngl: int
    host: str


def estimate(d: Deployment, efficiency: Efficiency | None = None) -> Estimate:
    mem = memory_breakdown(d)
    perf = performance(d, efficiency)
    n = d.model.architecture.n_layers
    offload = None
    if d.engine.reads_gguf and d.hardware.kind is not DeviceKind.cpu:
        offload = Offload(host_layers=d.host_layers, gpu_layers=n - d.host_layers, ngl=n - d.host_layers + 1,
                          host=(d.host.id if d.host else DEFAULT_HOST))
    return check_finite(Estimate(
        model=d.model.id, gpu=d.hardware.id, engine=d.engine.value, quant=d.quant.id, kv_dtype=d.kv_dtype.id,
        ctx=d.workload.ctx, batch=d.workload.batch, prompt_tokens=d.workload.prompt_tokens,
        gen_tokens=d.workload.gen_tokens, num_gpus=d.num_gpus, memory=mem, performance=perf, offload=offload,
        parallelism=parallelism(d) if d.num_gpus > 1 else None,
        warnings=_warnings(d, mem), deployment=d,
    ))


def _first_non_finite(data, path: str = "") -> str | None:
    """Dotted path of the first NaN or infinite number in a dumped result, else None."""
    if isinstance(data, float):
        return None if math.isfinite(data) else path
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = _first_non_finite(value, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def check_finite(e: Estimate) -> Estimate:
    """Every derived quantity is checked before it is used or printed: a NaN or infinity means an input
    slipped past its bounds, which is bad input, never a result."""
    bad = _first_non_finite(e.model_dump())
    if bad:
        raise InputError(f"{e.model} on {e.gpu}: {bad} is not a finite number (an input is out of range)")
    return e


def fewest_host_layers(make: Callable[[int], Deployment]) -> int | None:
    """Smallest number of layers kept in host memory that makes the deployment fit, by bisection
    (device memory falls monotonically as layers move to the host); None if even all do not help."""
    first = make(0)
    if memory_breakdown(first).fits:
        return 0
    n = first.model.architecture.n_layers
    if not memory_breakdown(make(n)).fits:
        return None
    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        if memory_breakdown(make(mid)).fits:
            hi = mid
        else:
            lo = mid + 1
    return lo


def parse_offload(value: str | int | None) -> str | int:
    if value is None:
        return "none"
    if isinstance(value, int):
        return value
    v = value.strip().lower()
    if v in ("none", "auto"):
        return v
    if v.isdigit():
        return int(v)
    raise FieldError(f"{{offload}} takes auto, none or a number of layers, not '{value}'", "offload")


class Scenario(BaseModel):
    """Everything one plan needs, resolved and validated: the model (from the catalog or a file), the
    device, the engine, the format (None: every format the engine runs), the KV dtype, the workload, the
    parallel layout, the offload mode, the host for offloaded layers and the efficiencies."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ResolvedModel
    hardware: HardwareProfile
    engine: Engine
    quant: str | None = None
    kv_dtype: str = "f16"
    workload: Workload = Field(default_factory=Workload)
    num_gpus: int = Field(default=1, ge=1)
    nodes: int = Field(default=1, ge=1)
    parallel: Parallel | None = None
    offload: str | int = "none"
    host: HardwareProfile
    efficiency: Efficiency | None = None
    threads: int | None = Field(default=None, ge=1, le=8192)

    def formats(self) -> list[QuantFormat]:
        from planner.physics.quant import quants_for

        return [get_quant(self.quant)] if self.quant else quants_for(self.engine, self.model.spec)

    def deployment(self, quant: QuantFormat, host_layers: int = 0) -> Deployment:
        return deployment(self.model, self.hardware, self.engine, quant, self.kv_dtype, self.workload,
                          self.num_gpus, self.nodes, self.parallel, self.host, host_layers, self.threads)


def resolve(
    model: str | ResolvedModel,
    gpu: str | HardwareProfile,
    quant: str | None = None,
    engine: str = "llama.cpp",
    kv_dtype: str = "f16",
    workload: Workload | None = None,
    num_gpus: int = 1,
    nodes: int = 1,
    parallel: Parallel | None = None,
    offload: str | int | None = "none",
    host: str | None = None,
    efficiency: Efficiency | None = None,
    threads: int | None = None,
) -> Scenario:
    """Names to a validated ``Scenario``: catalog ids, aliases or files for the model, the device and
    the host; ``offload`` is "none" (everything in device memory), "auto" (the fewest host layers that
    fit) or a number of layers kept in host memory (llama.cpp only); ``threads``: CPU threads for layers
    on CPU cores (llama.cpp ``-t``; default the physical cores)."""
    eng = get_engine(engine)
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
    mode = parse_offload(offload)
    if mode != "none" and not eng.reads_gguf:
        raise FieldError(f"{{offload}} needs {{engine}} llama.cpp or ollama, not {eng.value}", "offload", "engine")
    return Scenario(model=resolved, hardware=resolve_hardware(gpu), engine=eng, quant=resolve_quant(resolved, quant),
                    kv_dtype=kv_dtype, workload=workload or Workload(), num_gpus=num_gpus, nodes=nodes,
                    parallel=parallel, offload=mode, host=resolve_host(host), efficiency=efficiency,
                    threads=threads)


def plan(s: Scenario) -> list[Estimate]:
    """Estimates for the scenario's format, or for every format the engine runs when it names none."""
    out = []
    for f in s.formats():
        def make(h: int, f=f) -> Deployment:
            return s.deployment(f, h)

        if s.offload == "auto":
            h = fewest_host_layers(make)
            h = s.model.spec.architecture.n_layers if h is None else h
        else:
            h = 0 if s.offload == "none" else s.offload
        e = estimate(make(h), s.efficiency).model_copy(update={"scenario": s})
        if s.offload == "none" and not e.memory.fits and s.engine.reads_gguf and s.hardware.kind is not DeviceKind.cpu:
            e = _with_offload_hint(e, make, s.efficiency)
        out.append(e)
    return out


def _with_offload_hint(e: Estimate, make: Callable[[int], Deployment], efficiency: Efficiency | None) -> Estimate:
    h = fewest_host_layers(make)
    if h is None:
        return e
    alt = estimate(make(h), efficiency)
    hint = (f"does not fit in device memory; --offload auto keeps {h} of "
            f"{alt.offload.host_layers + alt.offload.gpu_layers} layers in host memory (-ngl {alt.offload.ngl}) "
            f"and decodes at about {alt.performance.decode_tok_s:.1f} tok/s")
    return e.model_copy(update={"warnings": [*e.warnings, hint]})
