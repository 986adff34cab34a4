"""Request bodies of the web API: one field per command-line flag, with the flag's default and bounds.

A field is the flag's long name without the dashes, ``-`` written ``_`` (``--kv-dtype`` -> ``kv_dtype``;
``kv-dtype`` is accepted too). Flags that read or write files (``--calibration``, ``--plot``) or pick an
output format (``--json``, ``--markdown``) have no field: the API reads no server files and always answers
with the ``--json`` document. Validation errors become the command line's one-line messages.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

NAME = Field(max_length=200)  # catalog ids and aliases are short; a longer string is not one

SHORT_FLAGS = {"model": "-m", "gpu": "-g", "quant": "-q", "engine": "-e"}
CLI_ONLY = {
    "calibration": "names a file, and the web API reads no files",
    "plot": "writes a file, and the web API writes no files",
    "json": "is implied: the web API always answers with the --json document",
    "markdown": "is command-line only: the web API answers with the --json document",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_truth_values_for_numbers(cls, v, info):
        # JSON true is not a count: `--ctx true` is refused on the command line, so it is here.
        numeric = cls.model_fields[info.field_name].annotation in (int, float, int | None, float | None)
        if isinstance(v, bool) and numeric:
            raise ValueError("Input should be a number, not true or false")
        return v


class PlanRequest(_Body):
    """`planner plan` (see planner/cli/plan.py for the flags' meaning)."""

    model: str = NAME
    gpu: str = NAME
    ctx: int = Field(4096, ge=1)
    batch: int = Field(1, ge=1)
    quant: str | None = Field(None, max_length=40)
    kv_dtype: str = Field("f16", max_length=40)
    engine: str = Field("llama.cpp", max_length=40)
    prompt: int = Field(512, ge=0)
    gen: int = Field(256, ge=1)
    num_gpus: int = Field(1, ge=1)
    parallel: str | None = Field(None, max_length=40)
    nodes: int = Field(1, ge=1)
    offload: str = Field("none", max_length=40)
    host: str | None = Field(None, max_length=200)
    threads: int | None = Field(None, ge=1, le=8192)

    @field_validator("offload", mode="before")
    @classmethod
    def _layers_as_text(cls, v):
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v


class SweepRequest(PlanRequest):
    """`plan` at each context length in ``points`` (one decode step with the context full: ``--ctx L
    --prompt L-1 --gen 1``), for the page's speed chart; ``quant`` is required."""

    quant: str = Field(max_length=40)
    points: list[int] | None = Field(None, min_length=1, max_length=24)

    @field_validator("points")
    @classmethod
    def _positive(cls, v):
        if v is not None and any(p < 2 for p in v):
            raise ValueError("each context length is at least 2 tokens")
        return v


class RecommendRequest(_Body):
    """`planner recommend` (see planner/cli/recommend.py)."""

    model: str = NAME
    gpu: str = NAME
    engine: str = Field("llama.cpp", max_length=40)
    num_gpus: int = Field(1, ge=1, le=64)
    min_ctx: int | None = Field(None, ge=1)
    min_tok_s: float | None = Field(None, ge=0)
    max_ttft: float | None = Field(None, ge=0)
    max_e2e: float | None = Field(None, ge=0)
    prompt: int = Field(512, ge=0)
    gen: int = Field(256, ge=1)
    concurrency: int = Field(1, ge=1)
    headroom: float = Field(0.1, ge=0, le=0.99)
    prefer: str = Field("quality", max_length=40)
    quant: str | None = Field(None, max_length=40)
    kv_dtype: str | None = Field(None, max_length=40)
    offload: bool = True
    host: str | None = Field(None, max_length=200)
    top: int = Field(5, ge=1, le=50)


class CompareRequest(_Body):
    """`planner compare` (see planner/cli/compare.py); ``gpus`` is the comma-separated list or a JSON list."""

    model: str = NAME
    gpus: str | None = Field(None, max_length=4000)
    all: bool = False
    ctx: int = Field(4096, ge=1)
    quant: str | None = Field(None, max_length=40)
    kv_dtype: str | None = Field(None, max_length=40)
    engine: str = Field("llama.cpp", max_length=40)
    prompt: int = Field(512, ge=0)
    gen: int = Field(256, ge=1)
    concurrency: int = Field(1, ge=1)
    min_tok_s: float | None = Field(None, ge=0)
    max_ttft: float | None = Field(None, ge=0)
    max_e2e: float | None = Field(None, ge=0)
    headroom: float = Field(0.1, ge=0, le=0.99)
    prefer: str = Field("quality", max_length=40)
    sort: str = Field("tok_s", max_length=40)
    min_quality: str = Field("q4_k_m", max_length=40)
    usd_per_gpu_hour: float | None = Field(None)

    @field_validator("gpus", mode="before")
    @classmethod
    def _list_as_text(cls, v):
        if isinstance(v, list) and all(isinstance(g, str) for g in v):
            return ",".join(v)
        return v


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


class BodyError(ValueError):
    """A request body that does not match its command's flags; the message is the command line's."""


def parse(model: type[_Body], body: object) -> _Body:
    """Validate a decoded JSON body; raise BodyError with the line the command line would print."""
    if not isinstance(body, dict):
        raise BodyError("the request body must be a JSON object of flags, e.g. {\"model\": \"llama3.1-8b\"}")
    data = {}
    for key, value in body.items():
        name = str(key).strip().lstrip("-").replace("-", "_")
        if name in CLI_ONLY:
            raise BodyError(f"{flag(name)} {CLI_ONLY[name]}")
        data[name] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BodyError(_message(exc)) from None


def _message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "extra_forbidden":
        return f"No such option: {flag(name)}"
    if first["type"] == "missing":
        short = f" / '{SHORT_FLAGS[name]}'" if name in SHORT_FLAGS else ""
        return f"Missing option '{flag(name)}'{short}."
    msg = first["msg"].removeprefix("Value error, ")
    return f"Invalid value for '{flag(name)}': {msg}" if name else msg
