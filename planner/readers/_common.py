"""Shared pieces of the model-file readers: the result type and small helpers."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.errors import SpecFileError
from planner.layout import WeightLayout
from planner.schema import ModelSpec


class ModelFile(BaseModel):
    """What a model file tells the planner.

    ``layout`` holds exact weight bytes when the file headers give them (GGUF tensor infos,
    safetensors headers), else None. ``quant`` is a planner quant id when the file determines
    one (e.g. GGUF file type Q4_K_M → ``q4_k_m``), else None; ``label`` always names the format.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: ModelSpec
    layout: WeightLayout | None
    quant: str | None
    label: str
    path: str


def make_id(text: str) -> str:
    """A catalog-style id (``^[a-z0-9][a-z0-9._-]*$``) from a file or model name."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    s = re.sub(r"^[^a-z0-9]+", "", s)[:120].rstrip("-")
    return s or "model"


def spec_error(path: str, exc: ValidationError) -> SpecFileError:
    """One-line error for a spec built from a file that fails schema validation."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return SpecFileError(path, f"model read from this file is invalid: {loc}: {first['msg']}{suffix}")


def period_from_flags(sliding: list[bool]) -> int:
    """Period p with 'layer i is global iff (i+1) % p == 0' from per-layer sliding flags.

    All sliding gives 1. Otherwise the first global layer fixes p; an irregular pattern that p
    does not reproduce is approximated by it (linear time, whatever the list length).
    """
    if all(sliding):
        return 1
    return sliding.index(False) + 1
