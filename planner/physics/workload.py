"""What the user wants to run: one deployment, resolved to validated objects."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.errors import FieldError, InputError
from planner.physics.kvcache import KVDType
from planner.physics.names import Parallel
from planner.spec.layout import WeightLayout
from planner.physics.quant import Engine, QuantFormat
from planner.spec.schema import DeviceKind, HardwareProfile, ModelSpec



class Workload(BaseModel):
    """Sizes of the job. ``ctx`` is the context each sequence may reach; ``batch`` the sequences
    decoded together (llama.cpp slots, vLLM concurrent requests)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ctx: int = Field(default=4096, ge=1, le=100_000_000)
    batch: int = Field(default=1, ge=1, le=1_000_000)
    prompt_tokens: int = Field(default=512, ge=0, le=100_000_000)
    gen_tokens: int = Field(default=256, ge=1, le=100_000_000)


def layout_problem(model: ModelSpec, tp: int, pp: int) -> str | None:
    """Why an engine would refuse this split of ``model``, or None when it can run.

    Tensor parallelism gives each rank whole attention heads: vLLM asserts that the attention heads
    divide by the TP size, and that the KV heads divide by it (or, with fewer KV heads than ranks, that
    the TP size divides by them, each KV head then replicated). MLA caches one latent per layer, so only
    the query heads count. A pipeline stage needs at least one decoder layer (vLLM's
    get_pp_indices; llama.cpp's layer split leaves a GPU idle otherwise)."""
    a = model.architecture
    if tp > 1:
        if a.n_heads % tp:
            return f"{a.n_heads} attention heads do not split evenly over tensor-parallel size {tp}"
        kv = a.n_kv_heads
        if model.mla is None and (kv % tp if kv >= tp else tp % kv):
            return f"{kv} KV heads do not split evenly over tensor-parallel size {tp}"
    if pp > a.n_layers:
        return f"{pp} pipeline stages exceed the model's {a.n_layers} layers"
    return None


class Deployment(BaseModel):
    """A model in a format, on hardware, under an engine: everything an estimate needs."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    model: ModelSpec
    hardware: HardwareProfile
    engine: Engine
    quant: QuantFormat
    kv_dtype: KVDType
    layout: WeightLayout
    workload: Workload = Workload()
    num_gpus: int = Field(default=1, ge=1, le=4096)
    nodes: int = Field(default=1, ge=1, le=512)
    parallel: Parallel = "layer"
    host: HardwareProfile | None = None  # host RAM profile, for offload and CPU-resident layers
    host_layers: int = Field(default=0, ge=0, description="decoder layers kept in host memory (llama.cpp -ngl)")
    threads: int | None = Field(default=None, ge=1, le=8192,
                                description="CPU threads for CPU-resident layers (llama.cpp -t); None: physical cores")
    layout_from_file: bool = False

    @model_validator(mode="after")
    def _check(self) -> Deployment:
        n_layers = self.model.architecture.n_layers
        if self.host_layers > n_layers:
            raise InputError(f"cannot keep {self.host_layers} layers on the host: the model has {n_layers}")
        if self.num_gpus % self.nodes:
            raise FieldError(f"{{num_gpus}} {self.num_gpus} is not divisible by {{nodes}} {self.nodes}", "num_gpus", "nodes")
        if self.hardware.kind is DeviceKind.cpu and self.num_gpus > 1:
            raise FieldError(f"'{self.hardware.id}' is a CPU host profile; {{num_gpus}} must be 1", "num_gpus")
        problem = layout_problem(self.model, self.tp, self.pp)
        if problem:
            raise InputError(f"{self.model.id} cannot run on {self.num_gpus} GPUs this way: {problem}")
        return self

    @property
    def gpus_per_node(self) -> int:
        return self.num_gpus // self.nodes

    @property
    def tp(self) -> int:
        """Tensor-parallel size: all GPUs of a node with --parallel tp, else 1."""
        return self.gpus_per_node if self.parallel == "tp" else 1

    @property
    def pp(self) -> int:
        """Pipeline stages: nodes for tp (TP inside a node, PP across), GPUs for pp/layer splits."""
        return self.nodes if self.parallel == "tp" else self.num_gpus
