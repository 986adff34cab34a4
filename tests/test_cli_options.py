"""Shared options are declared once (planner/cli/options.py): their help lists every name the library
knows, and bad choices are one line with exit 2."""

from __future__ import annotations

from typing import get_args

import pytest
import typer

from planner.physics.names import PARALLEL_MODES, Engine, Prefer, Sort, all_kv_dtypes

COMMANDS = ("plan", "recommend", "compare")


def _option_help(command: str, flag: str) -> str:
    from planner.cli import app

    group = typer.main.get_command(app)
    params = [p for p in group.commands[command].params if flag in p.opts]
    assert len(params) == 1, f"{command} has no single {flag}"
    return params[0].help


@pytest.mark.parametrize("command", COMMANDS)
def test_engine_help_lists_every_engine(command):
    text = _option_help(command, "--engine")
    assert [e.value for e in Engine if e.value not in text] == []


@pytest.mark.parametrize("command", COMMANDS)
def test_kv_dtype_help_lists_every_kv_dtype(command):
    text = _option_help(command, "--kv-dtype")
    assert [k for k in all_kv_dtypes() if k not in text] == []


def test_choice_helps_list_every_choice():
    assert all(m in _option_help("plan", "--parallel") for m in PARALLEL_MODES)
    assert all(s in _option_help("compare", "--sort") for s in get_args(Sort))
    for command in ("recommend", "compare"):
        assert all(p in _option_help(command, "--prefer") for p in get_args(Prefer))


def test_rendered_plan_help_names_transformers(cli):
    res = cli("plan", "--help")
    assert res.code == 0 and "transformers" in " ".join(res.out.split())


def test_engine_aliases_still_accepted(cli):
    res = cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "-e", "hf", "-q", "bf16", "--json")
    assert res.code == 0 and '"transformers"' in res.out


@pytest.mark.parametrize("args", [
    ("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "--parallel", "diagonal"),
    ("recommend", "-m", "llama3.1-8b", "-g", "rtx4090", "--prefer", "cheap"),
    ("compare", "-m", "llama3.1-8b", "--gpus", "rtx4090", "--prefer", "cheap"),
    ("compare", "-m", "llama3.1-8b", "--gpus", "rtx4090", "--sort", "colour"),
])
def test_bad_choice_is_one_line_and_exit_2(cli, args):
    res = cli(*args)
    assert res.code == 2 and len(res.err_lines) == 1, res.err
    assert res.err_lines[0].startswith("error: ") and args[-1] in res.err_lines[0]


def test_parallel_error_message_unchanged(cli):
    res = cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "--parallel", "x")
    assert res.err_lines == ["error: --parallel takes tp, pp or layer, not 'x'"]
