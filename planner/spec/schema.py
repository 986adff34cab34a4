"""Validated shapes of the spec files in ``model_specs/`` and ``hardware_profiles/``.

Every figure lives in a block that carries a ``source:`` (a URL or a document name), so a figure
without a source cannot be loaded. Unknown keys are rejected, so a typo fails loudly.
Derived fields (``head_dim``, ``n_kv_heads``) are filled only when the file leaves them out, and
consistency is checked with the numbers in the message.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.units import GIB, gb_per_s_to_bytes_per_s, gib_to_bytes, tflops_to_flops


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Sourced(Strict):
    source: str = Field(min_length=3, max_length=2000, description="where the figures of this block come from")


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


class Family(str, Enum):
    """Hugging Face ``model_type`` values whose tensor layouts planner knows."""

    llama = "llama"
    mistral = "mistral"
    mixtral = "mixtral"
    qwen2 = "qwen2"
    qwen3 = "qwen3"
    qwen3_moe = "qwen3_moe"
    gemma2 = "gemma2"
    gemma3 = "gemma3"
    phi3 = "phi3"
    deepseek_v3 = "deepseek_v3"
    gpt_oss = "gpt_oss"


class Architecture(Sourced):
    """Transformer dimensions, as in the model's config.json."""

    family: Family
    n_layers: int = Field(ge=1, le=1024, strict=True)
    hidden_size: int = Field(ge=1, le=1_000_000, strict=True)
    n_heads: int = Field(ge=1, le=4096, strict=True)
    n_kv_heads: int | None = Field(default=None, ge=1, le=4096, strict=True)
    head_dim: int | None = Field(default=None, ge=1, le=4096, strict=True)
    intermediate_size: int = Field(ge=1, le=10_000_000, strict=True, description="dense FFN width")
    vocab_size: int = Field(ge=1, le=10_000_000, strict=True)
    max_context: int = Field(ge=1, le=100_000_000, strict=True, description="trained context length")
    tie_word_embeddings: bool = Field(default=False, strict=True)
    attention_bias: bool = Field(default=False, strict=True)
    mlp_bias: bool = Field(default=False, strict=True)
    qk_norm: bool = Field(default=False, strict=True)
    sliding_window: int | None = Field(default=None, ge=1, le=100_000_000, strict=True)
    sliding_window_period: int = Field(
        default=1,
        ge=1, le=1024, strict=True,
        description="with sliding_window: layer i is global iff period > 1 and (i + 1) % period == 0; "
        "period 1 makes every layer sliding",
    )
    native_dtype: Literal["f32", "f16", "bf16", "fp8", "mxfp4"] = "bf16"

    @model_validator(mode="after")
    def _derive_and_check(self) -> Architecture:
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.head_dim is None:
            if self.hidden_size % self.n_heads:
                raise ValueError(
                    f"hidden_size {self.hidden_size} is not divisible by n_heads {self.n_heads}; set head_dim"
                )
            object.__setattr__(self, "head_dim", self.hidden_size // self.n_heads)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        return self


class MoE(Sourced):
    n_experts: int = Field(ge=1, le=100_000, strict=True)
    n_active_experts: int = Field(ge=1, le=100_000, strict=True, description="experts routed per token (top-k)")
    expert_intermediate_size: int = Field(ge=1, le=10_000_000, strict=True)
    n_shared_experts: int = Field(default=0, ge=0, le=1024, strict=True)
    first_dense_layers: int = Field(default=0, ge=0, le=1024, strict=True, description="leading layers with a dense FFN")
    router_bias: bool = Field(default=False, strict=True)

    @model_validator(mode="after")
    def _check(self) -> MoE:
        if self.n_active_experts > self.n_experts:
            raise ValueError(
                f"n_active_experts {self.n_active_experts} exceeds n_experts {self.n_experts}"
            )
        return self


class MLA(Sourced):
    """Multi-head latent attention (DeepSeek-V2/V3): the cache holds one latent per layer."""

    q_lora_rank: int | None = Field(default=None, ge=1, le=1_000_000, strict=True)
    kv_lora_rank: int = Field(ge=1, le=1_000_000, strict=True)
    qk_nope_head_dim: int = Field(ge=1, le=4096, strict=True)
    qk_rope_head_dim: int = Field(ge=1, le=4096, strict=True)
    v_head_dim: int = Field(ge=1, le=4096, strict=True)


class Published(Sourced):
    """Parameter counts as the model's authors state them (model card, paper)."""

    total_params: int = Field(ge=1, le=10**15, strict=True)
    active_params: int | None = Field(default=None, ge=1, le=10**15, strict=True)
    note: str | None = Field(default=None, max_length=2000)


class ModelSpec(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    name: str = Field(min_length=1, max_length=200)
    aliases: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = Field(default=(), max_length=100)
    architecture: Architecture
    moe: MoE | None = None
    mla: MLA | None = None
    published: Published

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.moe and self.moe.first_dense_layers > self.architecture.n_layers:
            raise ValueError(
                f"moe.first_dense_layers {self.moe.first_dense_layers} exceeds n_layers "
                f"{self.architecture.n_layers}"
            )
        return self


# --------------------------------------------------------------------------------------------
# Hardware
# --------------------------------------------------------------------------------------------


class Vendor(str, Enum):
    nvidia = "nvidia"
    amd = "amd"
    apple = "apple"
    intel = "intel"
    cpu = "cpu"


class DeviceKind(str, Enum):
    gpu = "gpu"  # discrete memory behind a host link
    unified = "unified"  # CPU and GPU share one memory pool (Apple, DGX Spark)
    cpu = "cpu"  # host RAM and CPU cores only


class Memory(Sourced):
    capacity_gib: float = Field(gt=0, le=1_000_000, strict=True)
    bandwidth_gb_per_s: float = Field(gt=0, le=1_000_000, strict=True)
    usable_mib: float | None = Field(
        default=None, gt=0, le=1_024_000_000, strict=True, description="capacity the driver reports (nvidia-smi), when known"
    )


class Compute(Sourced):
    """Dense (no sparsity) peak throughput per dtype, in TFLOP/s (TOP/s for int8)."""

    fp32_tflops: float = Field(gt=0, le=1_000_000, strict=True)
    fp16_tflops: float | None = Field(default=None, gt=0, le=1_000_000, strict=True)
    bf16_tflops: float | None = Field(default=None, gt=0, le=1_000_000, strict=True)
    fp8_tflops: float | None = Field(default=None, gt=0, le=1_000_000, strict=True)
    int8_tops: float | None = Field(default=None, gt=0, le=1_000_000, strict=True)


class GpuCores(Sourced):
    """The GPU's cores (NVIDIA streaming multiprocessors, Apple GPU cores) and their clock: the rate at which
    CUDA-core / Metal kernels issue work, which bounds batch-1 mat-vec kernels (docs/accuracy.md §1)."""

    count: int = Field(ge=1, le=100_000, description="streaming multiprocessors (NVIDIA) or GPU cores (Apple)")
    fp32_lanes_per_core: int = Field(ge=1, le=4096, description="FP32 ALUs per SM / core")
    boost_clock_mhz: float | None = Field(default=None, gt=0, le=10_000)
    tensor_fp16_flops_per_core_cycle: float | None = Field(
        default=None, gt=0, le=1_000_000, description="dense FP16 tensor FLOP per SM per clock, FP16 accumulate")


class HostLink(Sourced):
    pcie_gen: int = Field(ge=1, le=7, strict=True)
    pcie_lanes: int = Field(ge=1, le=32, strict=True)


class Interconnect(Sourced):
    kind: Literal["nvlink", "infinity-fabric", "pcie", "nvlink-c2c", "none"]
    bandwidth_gb_per_s: float = Field(ge=0, le=1_000_000, strict=True, description="per GPU, one direction")


class UnifiedMemory(Sourced):
    gpu_fraction: float = Field(gt=0, le=1, strict=True, description="share of memory the GPU may use by default")
    memory_options_gib: tuple[Annotated[float, Field(gt=0, le=1_000_000, strict=True)], ...] = Field(default=(), max_length=64)


class CpuCores(Sourced):
    """The CPU cores of a host profile: what sets llama.cpp's CPU compute roof (docs/cpu.md).

    ``clock_ghz`` is the clock the cores sustain under SIMD load (base clock unless the source says
    otherwise). Measured profiles (``planner calibrate``) also carry the SIMD rates the benchmark
    measured with ``measured_threads`` threads; those replace the ISA arithmetic."""

    model: str | None = None
    physical_cores: int = Field(ge=1, le=4096)
    threads: int = Field(ge=1, le=8192, description="hardware threads (SMT)")
    performance_cores: int | None = Field(
        default=None, ge=1, le=4096, description="big cores of a hybrid part (llama.cpp's default thread count)")
    simd: Literal["sse", "avx2", "avx512", "amx", "neon"]
    clock_ghz: float = Field(gt=0, le=10)
    measured_threads: int | None = Field(default=None, ge=1, le=8192)
    measured_float_vector_ops_per_s: float | None = Field(
        default=None, gt=0, description="fp32 SIMD ops/s of a cache-resident GEMV, all measured threads together")
    measured_int_vector_ops_per_s: float | None = Field(
        default=None, gt=0, description="int8 SIMD ops/s of a cache-resident int8 dot product, all measured threads")


class Price(Sourced):
    launch_usd: float = Field(gt=0, le=1e9, strict=True)


class Power(Sourced):
    """Board power (TDP / total graphics power) of one device at full load."""

    board_watts: float = Field(gt=0, le=10_000, strict=True)


class CloudPrice(Sourced):
    """A public on-demand rental price for one GPU of this kind."""

    usd_per_gpu_hour: float = Field(gt=0, le=1_000, strict=True)


class HardwareProfile(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    name: str = Field(min_length=1, max_length=200)
    vendor: Vendor
    kind: DeviceKind
    aliases: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = Field(default=(), max_length=100)
    memory: Memory
    compute: Compute
    host_link: HostLink | None = None
    interconnect: Interconnect | None = None
    unified_memory: UnifiedMemory | None = None
    price: Price | None = None
    gpu_cores: GpuCores | None = None
    power: Power | None = None
    cloud_price: CloudPrice | None = None
    cpu: CpuCores | None = None

    @model_validator(mode="after")
    def _check(self) -> HardwareProfile:
        if self.kind is DeviceKind.unified and self.unified_memory is None:
            raise ValueError("a unified-memory device needs a unified_memory block (gpu_fraction)")
        if self.memory.usable_mib is not None and self.memory.usable_mib > self.memory.capacity_gib * 1024:
            raise ValueError(f"memory.usable_mib {self.memory.usable_mib:g} exceeds capacity_gib "
                             f"{self.memory.capacity_gib:g} (= {self.memory.capacity_gib * 1024:g} MiB)")
        return self

    @property
    def memory_bytes(self) -> int:
        """Usable device memory: the driver-reported size when known, else the datasheet size."""
        if self.memory.usable_mib is not None:
            return int(self.memory.usable_mib * 1024**2)
        return gib_to_bytes(self.memory.capacity_gib)

    @property
    def family(self) -> str:
        """Device family for engine defaults: nvidia, amd, apple or cpu."""
        if self.kind is DeviceKind.cpu:
            return "cpu"
        return self.vendor.value if self.vendor in (Vendor.apple, Vendor.amd) else "nvidia"

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return gb_per_s_to_bytes_per_s(self.memory.bandwidth_gb_per_s)

    @property
    def core_cycles_per_s(self) -> float | None:
        """SM (or GPU core) cycles per second: count x boost clock, else FP32 rate / (2 x lanes per core)."""
        g = self.gpu_cores
        if g is None:
            return None
        if g.boost_clock_mhz is not None:
            return g.count * g.boost_clock_mhz * 1e6
        return tflops_to_flops(self.compute.fp32_tflops) / (2 * g.fp32_lanes_per_core)

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for a compute dtype, falling back to the nearest wider one the device has."""
        c = self.compute
        chain = {
            "fp8": [c.fp8_tflops, c.fp16_tflops, c.bf16_tflops, c.fp32_tflops],
            "int8": [c.int8_tops, c.fp16_tflops, c.bf16_tflops, c.fp32_tflops],
            "bf16": [c.bf16_tflops, c.fp16_tflops, c.fp32_tflops],
            "fp16": [c.fp16_tflops, c.bf16_tflops, c.fp32_tflops],
            "fp32": [c.fp32_tflops],
        }[dtype]
        return tflops_to_flops(next(v for v in chain if v is not None))


__all__ = [
    "GIB",
    "MLA",
    "Architecture",
    "Compute",
    "CpuCores",
    "DeviceKind",
    "Family",
    "HardwareProfile",
    "GpuCores",
    "HostLink",
    "Interconnect",
    "Memory",
    "MoE",
    "ModelSpec",
    "Price",
    "Published",
    "Sourced",
    "UnifiedMemory",
    "Vendor",
]

