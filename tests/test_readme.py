"""The README stays true: its two commands are the ones CI runs, and its example output is real."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _quick_start_commands() -> list[str]:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)]


def test_readme_has_exactly_two_set_up_commands_install_and_run_and_test():
    run, test = _quick_start_commands()
    assert run == "pip install -e . && plan --model llama3.1-8b --gpu rtx4090 --ctx 4096"
    assert test.endswith("python3 -m pytest") and "-e \".[dev]\"" in test and "torch==2.13.0" in test


def test_ci_runs_the_readmes_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _quick_start_commands()[1] in ci


def test_readme_example_rows_are_what_plan_prints(cli):
    result = cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--ctx", "4096")
    assert result.code == 0
    printed = {line.split()[0]: line.rstrip() for line in result.out.splitlines() if line[:1].isalpha()}
    example = README.split("## Quick start", 1)[1].split("| column |", 1)[0]
    rows = [line.rstrip() for line in example.splitlines() if re.match(r"^(f16|q8_0|q4_k_m) ", line)]
    assert len(rows) == 3
    for row in rows:
        assert printed[row.split()[0]] == row
