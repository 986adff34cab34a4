"""Shared pieces of the model-file readers: the result type and small helpers."""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, ValidationError

from planner.errors import SpecFileError
from planner.spec.layout import WeightLayout
from planner.spec.schema import ModelSpec


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


def grouped_layout(groups: Iterable[tuple[str, int | None, bool, int]], n_layers: int, n_params: int,
                   label: str) -> WeightLayout:
    """A WeightLayout from tensors already classified as (kind, layer, is_expert, n_bytes), where kind is
    'embd', 'output', 'layer' (with its index) or 'other'. Without an output tensor the embeddings are
    tied: the table serves as the head too."""
    embd = output = other = 0
    layers, experts = [0] * n_layers, [0] * n_layers
    has_output = has_experts = False
    for kind, layer, is_expert, n_bytes in groups:
        if kind == "embd":
            embd += n_bytes
        elif kind == "output":
            output += n_bytes
            has_output = True
        elif kind == "layer" and layer is not None and layer < n_layers:
            layers[layer] += n_bytes
            if is_expert:
                experts[layer] += n_bytes
                has_experts = True
        else:
            other += n_bytes  # final norm, vision tower, next-token-prediction layers beyond n_layers
    return WeightLayout(
        token_embd_bytes=embd,
        output_bytes=output if has_output else embd,
        tied_embeddings=not has_output,
        layer_bytes=tuple(layers),
        layer_expert_bytes=tuple(experts) if has_experts else (),
        other_bytes=other,
        n_params=n_params,
        label=label,
    )
