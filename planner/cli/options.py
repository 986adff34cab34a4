"""Options several commands share, declared once. Help text and choice lists are built from the
library's own names (planner.physics.names), so a new engine, KV dtype, parallel mode, sort key or
preference shows up in every command's --help without editing it here.

Values stay plain strings validated by the library: engine aliases (llamacpp, pytorch, hf) keep working,
and a bad value is one `error:` line with exit 2, as for every other bad input."""

from __future__ import annotations

from typing import Annotated, get_args

import typer

from planner.errors import InputError
from planner.physics.names import PARALLEL_MODES, Engine, Prefer, Sort, all_kv_dtypes


def either(choices: tuple[str, ...] | list[str]) -> str:
    """'a, b or c': a choice list as a sentence."""
    choices = list(choices)
    return choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"


ENGINE_NAMES = [e.value for e in Engine]
KV_DTYPES = all_kv_dtypes()
# tp and pp first: they are what users of more than one GPU pick; layer is the llama.cpp default
PARALLEL_CHOICES = tuple(sorted(PARALLEL_MODES, key=lambda mode: mode == "layer"))
PREFER_CHOICES: tuple[str, ...] = get_args(Prefer)
SORT_CHOICES: tuple[str, ...] = get_args(Sort)

Model = Annotated[str, typer.Option("--model", "-m", help="catalog id or alias, or a model file "
                                    "(model YAML, GGUF, config.json or folder)")]
Gpu = Annotated[str, typer.Option("--gpu", "-g", help="hardware id or alias, or a hardware YAML")]
EngineName = Annotated[str, typer.Option("--engine", "-e", help=f"inference engine: {either(ENGINE_NAMES)}")]
Json = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Markdown = Annotated[bool, typer.Option("--markdown", help="a markdown report for pull-request comments")]
PreferOption = Annotated[str, typer.Option("--prefer", help=f"{either(PREFER_CHOICES)}: how the best "
                                           "configuration is chosen (precision first, or fastest decode)")]
SortOption = Annotated[str, typer.Option("--sort", help=f"row order: {either(SORT_CHOICES)}")]
ParallelOption = Annotated[str | None, typer.Option("--parallel", help=f"{either(PARALLEL_CHOICES)} "
                                                    "(default: tp for vllm, else layer)")]


def plot_option(chart: str):
    """--plot FILE.png, with the command's own words for what the chart shows."""
    return Annotated[str | None, typer.Option("--plot", help=f"write {chart} to FILE.png")]


def kv_dtype_option(meaning: str):
    """--kv-dtype, listing every KV dtype some engine takes after the command's `meaning`."""
    return Annotated[str | None, typer.Option("--kv-dtype", help=f"{meaning}: {either(KV_DTYPES)}")]


def quant_option(meaning: str):
    """--quant/-q, with the command's own words for what fixing the weight format does."""
    return Annotated[str | None, typer.Option("--quant", "-q", help=meaning)]


def one_format(as_json: bool, markdown: bool) -> None:
    """--json and --markdown both write stdout; asking for both is bad input."""
    if as_json and markdown:
        raise InputError("choose one of --json and --markdown")


def check_choice(flag: str, value: str | None, choices: tuple[str, ...]) -> None:
    """Refuse a value outside `choices` with one line naming them all (None means the default)."""
    if value is not None and value not in choices:
        raise InputError(f"{flag} takes {either(choices)}, not '{value}'")
