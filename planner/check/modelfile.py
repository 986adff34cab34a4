"""Ollama Modelfiles: ``FROM`` (a library tag, an ``hf.co/`` GGUF repository or a local GGUF) and the
``PARAMETER`` s that size memory (``num_ctx``, ``num_gpu``, ``num_batch``; ``num_predict`` caps generation).

Format: ollama ``docs/modelfile.mdx``. Instructions are case-insensitive, ``#`` starts a comment (a commented
``FROM`` is not read), and a ``\"\"\"`` block (TEMPLATE, SYSTEM) may span lines.
"""

from __future__ import annotations

from pathlib import Path

from planner.check.found import MAX_CTX, Found, positive_int
from planner.check.names import gguf_name, ollama_tag

MAX_LINES = 20_000


def looks_like_modelfile(name: str, text: str) -> bool:
    if Path(name).name.lower().startswith("modelfile") or name.lower().endswith(".modelfile"):
        return True
    for raw in text.splitlines()[:50]:
        s = raw.strip()
        if s and not s.startswith("#"):
            return s.upper().startswith("FROM ")
    return False


def _instructions(text: str):
    """(line, INSTRUCTION, rest) for each instruction outside triple-quoted blocks."""
    in_block = False
    for number, raw in enumerate(text.splitlines()[:MAX_LINES], start=1):
        s = raw.strip()
        if in_block:
            if s.count('"""') % 2 == 1:
                in_block = False
            continue
        if not s or s.startswith("#"):
            continue
        word, _, rest = s.partition(" ")
        if rest.count('"""') % 2 == 1:
            in_block = True
        yield number, word.upper(), rest.strip()


def read_modelfile(path: str, text: str) -> list[Found]:
    f = Found(file=path, line=1, name=Path(path).name, kind="Ollama Modelfile", engine="ollama")
    for number, word, rest in _instructions(text):
        if word == "FROM":
            f.line = number
            f.model = rest
            f.lines["model"] = number
            if rest.lower().endswith(".gguf"):
                mid, q, note = gguf_name(rest)
                f.settings["model-file"] = rest
            else:
                mid, q, note = ollama_tag(rest)
            f.model_ref, f.quant = mid, q
            f.fail(note) if mid is None else f.notes.append(note)
        elif word == "PARAMETER":
            key, _, value = rest.partition(" ")
            key, value = key.lower(), value.strip()
            if key == "num_ctx":
                v = positive_int(value, MAX_CTX)
                if not v:
                    f.fail(f"PARAMETER num_ctx {value[:20]!r} is not a token count")
                    f.lines.setdefault("ctx", number)
                else:
                    f.ctx = v
                    f.note("num_ctx", v, number)
                    f.lines["ctx"] = number
            elif key == "num_gpu":
                v = positive_int(value, 100_000)
                if v is not None:
                    f.ngl = v
                    f.note("num_gpu", v, number)
            elif key == "num_predict":
                v = positive_int(value, MAX_CTX)
                if v:
                    f.note("num_predict", v, number)
                    f.slo.setdefault("gen_tokens", v)
            elif key == "num_batch":
                f.note("num_batch", value, number)
                if value != "512":
                    f.warnings.append(f"PARAMETER num_batch {value[:12]} (line {number}) is not modelled: the planner "
                                      "sizes compute buffers for the default batch")
    if f.model is None:
        f.fail("no FROM line: the Modelfile names no model")
    return [f]
