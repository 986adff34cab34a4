"""What a reader understood of one deployment in a foreign config (a Kubernetes container, a compose
service, a Modelfile, a command line): the planner fields, the line each came from, and what is missing.

A ``Found`` is either complete (it becomes a planner deployment and is gated) or carries ``problem``,
one sentence saying why it cannot be evaluated (no GPU type, a model the catalog lacks, a model only in a
volume). Flags that change memory or speed and that the planner does not model are ``warnings``, by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Bounds for numbers read from configs: beyond them a value is a typo or an attack, not a deployment.
MAX_CTX = 100_000_000
MAX_GPUS = 4096
MAX_SEQS = 1_000_000


@dataclass
class Found:
    file: str
    line: int
    name: str
    kind: str
    engine: str | None = None
    model: str | None = None  # as written
    model_ref: str | None = None  # catalog id or a file path the planner can read
    quant: str | None = None
    gpu: str | None = None  # catalog id
    num_gpus: int = 1
    nodes: int = 1
    tp: int = 1
    pp: int = 1
    ctx: int | None = None
    concurrency: int | None = None
    kv_dtype: str | None = None
    ngl: int | None = None
    gpu_count_known: bool = False
    cpu_only: bool = False
    replicas: int = 1
    slo: dict = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # what was understood, for --explain
    lines: dict[str, int] = field(default_factory=dict)  # planner field -> line in the file
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def problem(self) -> str | None:
        """The first reason the deployment cannot be evaluated, or None."""
        return self.problems[0] if self.problems else None

    def note(self, key: str, value: object, line: int | None = None) -> None:
        self.settings[key] = str(value)
        if line is not None:
            self.lines.setdefault(key, line)

    def fail(self, reason: str) -> None:
        """Record a reason the deployment cannot be evaluated (the first one is reported as the cause)."""
        if reason not in self.problems:
            self.problems.append(reason)

    def line_for(self, *keys: str) -> int:
        for k in keys:
            if k in self.lines:
                return self.lines[k]
        return self.line


def positive_int(text: object, bound: int) -> int | None:
    """An integer in [0, bound] written as an int or a decimal string (``"8"``, ``32k`` = 32,000,
    ``32K`` = 32,768 as vLLM reads them), else None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if 0 <= text <= bound else None
    s = str(text).strip().strip("'\"")
    mult = 1
    if s[-1:] in ("k", "m") and s[:-1].isdigit():
        mult, s = (1000 if s[-1] == "k" else 1_000_000), s[:-1]
    elif s[-1:] in ("K", "M") and s[:-1].isdigit():
        mult, s = (1024 if s[-1] == "K" else 1024 * 1024), s[:-1]
    if not s.isdigit() or len(s) > 12:
        return None
    v = int(s) * mult
    return v if v <= bound else None


def fraction(text: object) -> float | None:
    try:
        v = float(str(text).strip().strip("'\""))
    except ValueError:
        return None
    return v if 0.0 < v <= 1.0 else None
