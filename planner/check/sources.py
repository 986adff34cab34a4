"""Which kind of file is this, and what deployments does it hold? One entry point for every reader.

Kinds: ``planner`` (the deployment schema of docs/check.md), ``kubernetes`` (any YAML stream with
``apiVersion``/``kind``), ``compose`` (``services:``), ``helm`` (``servingEngineSpec:``), ``modelfile``,
``command`` (shell text that starts vLLM, llama-server or Ollama). Every file is read once, through the
bounded reader, and every error is a ``SpecFileError`` with the file and, where it has one, the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from planner.check.argv import engine_command, shell_commands
from planner.check.flags import apply_llama, apply_vllm
from planner.check.found import Found
from planner.errors import SpecFileError
from planner.spec.catalog import MAX_SPEC_FILE_BYTES
from planner.spec.safeio import read_text

YAML_SUFFIXES = (".yaml", ".yml")
COMMAND_SUFFIXES = (".sh", ".bash", ".cmd", ".txt")


@dataclass
class Source:
    path: str
    kind: str
    text: str
    found: list[Found] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def is_candidate(path: Path) -> bool:
    """Files a directory walk reads: YAML, Modelfiles and shell scripts."""
    name = path.name.lower()
    return name.endswith(YAML_SUFFIXES + COMMAND_SUFFIXES + (".modelfile",)) or name.startswith("modelfile")


def read_source(path: Path | str) -> Source:
    """Read and classify one file; foreign kinds are parsed into ``found`` deployments."""
    from planner.check.modelfile import looks_like_modelfile, read_modelfile

    path = str(path)
    text = read_text(path, MAX_SPEC_FILE_BYTES)
    if "\x00" in text:
        raise SpecFileError(path, "not a text file (NUL byte)")
    if looks_like_modelfile(path, text):
        return _with_directives(Source(path, "modelfile", text, read_modelfile(path, text)))
    if path.lower().endswith(COMMAND_SUFFIXES) or _starts_like_command(text):
        return _with_directives(Source(path, "command", text, read_command(path, text)))
    return _read_yaml(path, text)


def _with_directives(src: Source) -> Source:
    from planner.check.containers import Where, apply_where

    values, lines = directives(src.text)
    if values:
        for f in src.found:
            apply_where(f, Where(file=src.path, annotations=values, annotation_lines=lines))
    return src


def _starts_like_command(text: str) -> bool:
    for raw in text.splitlines()[:20]:
        s = raw.strip()
        if s and not s.startswith("#"):
            return bool(re.match(r"^(\w+=\S*\s+)*(vllm\s|python3?\s+-m\s+vllm|\S*llama-server|ollama\s)", s))
    return False


_PLANNER_FILE = re.compile(r"\Adeployments\s*:|^deployments\s*:", re.MULTILINE)
_OTHER_KIND = re.compile(r"^(---|apiVersion\s*:|kind\s*:|services\s*:|servingEngineSpec\s*:)", re.MULTILINE)


def _read_yaml(path: str, text: str) -> Source:
    from planner.check import manifests
    from planner.check.yamldocs import load_documents

    if _PLANNER_FILE.search(text) and not _OTHER_KIND.search(text):
        return Source(path, "planner", text)  # parsed (once) by planner.check.deploy
    docs = load_documents(path, text)
    first = docs[0].data if docs else None
    if len(docs) == 1 and isinstance(first, dict) and "deployments" in first:
        return Source(path, "planner", text)
    if len(docs) == 1 and isinstance(first, dict) and isinstance(first.get("services"), dict):
        found, skipped = manifests.read_compose(path, docs)
        return Source(path, "compose", text, found, skipped)
    if len(docs) == 1 and isinstance(first, dict) and "servingEngineSpec" in first:
        found, skipped = manifests.read_helm(path, docs)
        return Source(path, "helm", text, found, skipped)
    if any(isinstance(d.data, dict) and "kind" in d.data and "apiVersion" in d.data for d in docs):
        found, skipped = manifests.read_kubernetes(path, docs)
        return Source(path, "kubernetes", text, found, skipped)
    if not docs:
        raise SpecFileError(path, "empty file: no deployment in it")
    if len(docs) == 1 and not isinstance(first, dict):
        raise SpecFileError(path, f"expected a mapping with 'deployments:', got {type(first).__name__}", docs[0].line)
    raise SpecFileError(path, "not a file planner check reads (expected deployments:, a Kubernetes manifest, "
                              "a compose file, production-stack values, a Modelfile or a command line)", docs[0].line)


def _assignments(text: str) -> dict[str, str]:
    """Shell variables assigned once at the top level (``X=1``, ``export X=1``); a variable assigned twice
    (as in an if/else) is left out, since which value runs depends on the machine."""
    seen: dict[str, list[str]] = {}
    for raw in text.splitlines()[:10_000]:
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_]\w*)=(\"[^\"]*\"|'[^']*'|\S*)\s*$", raw)
        if m:
            seen.setdefault(m.group(1), []).append(m.group(2).strip("\"'"))
    return {k: v[0] for k, v in seen.items() if len(set(v)) == 1 and "$(" not in v[0]}


def read_command(path: str, text: str) -> list[Found]:
    """A shell snippet: the first command that starts an inference server becomes the deployment."""
    env = _assignments(text)
    commands = shell_commands(text, 1, env)
    engine, words = engine_command(commands, env)
    if engine is None:
        raise SpecFileError(path, "no vllm, llama-server or ollama command in this file")
    f = Found(file=path, line=words[0].line if words else 1, name=Path(path).name, kind="command line")
    if engine == "vllm":
        apply_vllm(f, [w for w in words if w.text != "serve"])
    elif engine == "llama.cpp":
        apply_llama(f, words)
    else:
        f.engine = "ollama"
        f.fail("an Ollama server command names no model (models are pulled at run time)")
    for cmd in commands:  # VAR=value prefixes of the server command and exports
        for w in cmd:
            if w.text.startswith("CUDA_VISIBLE_DEVICES="):
                env["CUDA_VISIBLE_DEVICES"] = w.text.partition("=")[2]
    if "CUDA_VISIBLE_DEVICES" in env:
        devs = [d for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
        f.note("CUDA_VISIBLE_DEVICES", env["CUDA_VISIBLE_DEVICES"])
        f.gpu_count_known = True
        if engine != "vllm" and devs:
            f.num_gpus = len(devs)
    return [f]


_DIRECTIVE = re.compile(r"^\s*#\s*(planner\.(?:gpu|slo|concurrency))\s*[:=]\s*(.+?)\s*$")


def directives(text: str) -> tuple[dict, dict]:
    """``# planner.gpu: l4`` comment lines in a Modelfile or script: what annotations are for manifests
    (these formats have no field for the GPU). Other comments are never read as facts."""
    values: dict = {}
    lines: dict = {}
    for number, raw in enumerate(text.splitlines()[:10_000], start=1):
        m = _DIRECTIVE.match(raw)
        if m and m.group(1) not in values:
            values[m.group(1)], lines[m.group(1)] = m.group(2), number
    return values, lines
