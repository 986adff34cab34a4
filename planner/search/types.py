"""The data of `recommend`: targets, evaluated configurations, picks, rejections, answers, one search's inputs."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from planner.estimate import Estimate
from planner.physics.names import Prefer  # noqa: F401  (re-exported: search.recommend and callers import it from here)

# Constraints in the order they are checked; a configuration's *stage* is the index of the first one it
# fails (FEASIBLE when it fails none).
CONSTRAINTS = ("memory", "host_memory", "min_ctx", "min_tok_s", "max_ttft", "max_e2e")
FEASIBLE = len(CONSTRAINTS)
CTX_STEP = 256
MAX_CTX_POINTS = 1024  # contexts per search grid: 256-token steps up to 262,144 tokens, coarser above
MAX_CONCURRENCY = 256


MAX_SECONDS = 1e7  # about four months: any latency target above it is a typo, and inf is no number


class Targets(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    min_ctx: int | None = Field(default=None, ge=1, le=100_000_000)
    min_tok_s: float | None = Field(default=None, ge=0, le=1e7)
    max_ttft_s: float | None = Field(default=None, ge=0, le=MAX_SECONDS)
    max_e2e_s: float | None = Field(default=None, ge=0, le=MAX_SECONDS)
    headroom_fraction: float = Field(default=0.1, ge=0, le=0.99)


class ConfigKey(BaseModel):
    """What names a configuration; recommendations, rejections and evaluated candidates all carry it
    (these six keys are part of the --json contract)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quant: str
    kv_dtype: str
    ctx: int
    concurrency: int
    offload_layers: int
    num_gpus: int


class Config(ConfigKey):
    """One evaluated configuration, with what the vectorised model predicts for it."""

    decode_tok_s: float
    ttft_s: float
    e2e_s: float
    total_bytes: int
    device_bytes: int
    weight_bits: float
    kv_bits: float


class Recommendation(ConfigKey):
    plan: Estimate
    commands: dict[str, str | None]


class Rejection(ConfigKey):
    constraint: str
    predicted: float
    required: float
    message: str


class Answers(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    largest_ctx: Config | None = None
    max_concurrency: Config | None = None
    max_concurrency_ctx: int
    max_concurrency_capped: bool = False
    max_gen_tokens: int | None = None
    max_gen_tokens_note: str | None = None


class RecommendResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    gpu: str
    engine: str
    prefer: str
    concurrency: int
    prompt_tokens: int
    gen_tokens: int
    targets: Targets
    recommendations: list[Recommendation]
    rejected: list[Rejection]
    answers: Answers
    binding_constraint: str | None = None
    binding_message: str | None = None
    candidates_evaluated: int


@dataclass(frozen=True)
class Miss:
    """The closest configuration of one (quant, KV dtype, GPU count) that fails ``CONSTRAINTS[stage]``
    (stage FEASIBLE: it fails none), with the predicted and the allowed value and why, in words."""

    stage: int
    closeness: float
    config: Config
    predicted: float
    required: float
    message: str


@dataclass
class Search:
    """Inputs of one search, already resolved to library objects (see ``recommend.prepare``)."""

    model: str
    gpu: str
    resolved: object
    hw: object
    host: object
    host_name: str | None
    engine: object
    prompt: int
    gen: int
    concurrency: int
    targets: Targets
    max_gpus: int = 1
    quants: list | None = None
    kv_dtypes: list[str] | None = None
    offload: bool = True
    efficiency: object = None
    evaluated: int = field(default=0)
    only_gpus: list[int] | None = None  # compare: evaluate exactly these GPU counts
    cache: dict = field(default_factory=dict)  # quant id → a Deployment, reused across devices


def min_ctx_needed(s: Search) -> int:
    return max(s.targets.min_ctx or 0, s.prompt + s.gen, 1)
