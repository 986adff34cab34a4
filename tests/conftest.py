"""Shared fixtures: tiny spec factories, YAML writers and an in-process CLI runner.

The factories return *fresh* plain dicts (the YAML shape), so a test can break one field and hand the
dict to the schema or write it to a file; ``make_model`` / ``make_hw`` validate them.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from planner.spec.schema import HardwareProfile, ModelSpec

# The suite never touches the user's cache (catalog index, calibrations): it gets a folder of its own.
os.environ["PLANNER_CACHE_DIR"] = tempfile.mkdtemp(prefix="planner-tests-")

# A two-layer Llama with GQA (4 query heads, 2 KV heads of 16) and an untied head. Parameter count:
#   token_embd 256 × 64 + output 256 × 64                              =  32,768
#   per layer: 2 norms × 64 + q 64×64 + k 32×64 + v 32×64 + o 64×64
#              + gate/up/down 3 × 128 × 64 = 128 + 12,288 + 24,576      =  36,992  (× 2 layers = 73,984)
#   output_norm                                                        =      64
TINY_MODEL_PARAMS = 32_768 + 2 * 36_992 + 64

TINY_MODEL: dict = {
    "id": "tiny-llama",
    "name": "Tiny Llama (test)",
    "aliases": ["tiny/Tiny-Llama"],
    "architecture": {
        "source": "tests/conftest.py (made up for tests)",
        "family": "llama",
        "n_layers": 2,
        "hidden_size": 64,
        "n_heads": 4,
        "n_kv_heads": 2,
        "intermediate_size": 128,
        "vocab_size": 256,
        "max_context": 512,
    },
    "published": {"source": "tests/conftest.py (computed by hand)", "total_params": TINY_MODEL_PARAMS},
}

TINY_GPU: dict = {
    "id": "tiny-gpu",
    "name": "Tiny GPU (test)",
    "vendor": "nvidia",
    "kind": "gpu",
    "aliases": ["Tiny GPU"],
    "memory": {"source": "tests/conftest.py (made up)", "capacity_gib": 8, "bandwidth_gb_per_s": 100},
    "compute": {"source": "tests/conftest.py (made up)", "fp32_tflops": 10},
}


def _merge(base: dict, overrides: dict) -> dict:
    """Deep-merge ``overrides`` into a copy of ``base``; nested dicts merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def tiny_model_params() -> int:
    return TINY_MODEL_PARAMS


@pytest.fixture
def model_data() -> Callable[..., dict]:
    """``model_data(architecture={"n_kv_heads": 4})`` → a fresh model dict with the overrides merged."""
    return lambda **overrides: _merge(TINY_MODEL, overrides)


@pytest.fixture
def make_model(model_data) -> Callable[..., ModelSpec]:
    return lambda **overrides: ModelSpec.model_validate(model_data(**overrides))


@pytest.fixture
def hw_data() -> Callable[..., dict]:
    return lambda **overrides: _merge(TINY_GPU, overrides)


@pytest.fixture
def make_hw(hw_data) -> Callable[..., HardwareProfile]:
    return lambda **overrides: HardwareProfile.model_validate(hw_data(**overrides))


@pytest.fixture
def write_yaml(tmp_path: Path) -> Callable[[str, dict | str], Path]:
    """``write_yaml("x.yaml", data_or_text)`` → the path of a new file under tmp_path."""

    def write(name: str, content: dict | str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return write


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.strip().splitlines()


@pytest.fixture
def cli(capsys) -> Callable[..., CliResult]:
    """Run ``planner ARGS`` in-process through ``planner.cli.run`` (which returns the exit code)."""
    from planner.cli import app, run

    def invoke(*args: str, typer_app=None) -> CliResult:
        capsys.readouterr()  # drop anything printed before
        code = run(typer_app or app, [str(a) for a in args])
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return invoke
