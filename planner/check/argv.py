"""Command lines as deployments write them: shell text or argv lists, with the line of every word.

``commands(...)`` splits shell text (continuations, comments, ``&&``/``;``/``|``, ``sh -c "..."``) into commands
of :class:`Word` s; ``engine_command`` finds the one that starts an inference server (``vllm serve``,
``python -m vllm.entrypoints.openai.api_server``, ``llama-server``, ``ollama serve``). Variables are expanded
from the container's environment the way Kubernetes (``$(VAR)``) and compose/sh (``$VAR``, ``${VAR:-default}``)
do; a variable with no value stays unexpanded and is reported by the reader that needs it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

MAX_WORDS = 10_000  # no real command line has more; words beyond it are not read


@dataclass(frozen=True)
class Word:
    text: str
    line: int


_VAR = re.compile(r"\$\((\w+)\)|\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


def expand(text: str, env: dict[str, str]) -> str:
    """Substitute $(VAR), ${VAR}, ${VAR:-default} and $VAR from ``env``; unknown ones stay as written,
    except that ${VAR:-default} falls back to its default."""
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name in env:
            return env[name]
        if m.group(3) is not None:
            return m.group(3)
        return m.group(0)

    return _VAR.sub(sub, text)


def _split(text: str) -> list[str]:
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lex.whitespace_split = True
        lex.commenters = "#"
        return list(lex)
    except ValueError:  # an unbalanced quote: fall back to whitespace
        return text.split()


def shell_commands(text: str, first_line: int, env: dict[str, str] | None = None,
                   line_step: bool = True) -> list[list[Word]]:
    """Shell text -> commands of words. ``first_line`` is the line of the text's first line; with
    ``line_step`` each physical line advances it (a literal block), else every word gets ``first_line``."""
    env = env or {}
    commands: list[list[Word]] = []
    current: list[Word] = []
    segments: list[tuple[str, int]] = []  # the physical lines of one logical line, with their numbers
    raw_lines = text.splitlines() or [""]
    for i, raw in enumerate(raw_lines):
        number = first_line + (i if line_step else 0)
        if raw.rstrip().endswith("\\"):
            segments.append((raw.rstrip()[:-1], number))
            continue
        segments.append((raw, number))
        for tok, line in _words(segments, env):
            if set(tok) <= set(";&|"):
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(Word(tok, line))
            if sum(len(c) for c in commands) + len(current) > MAX_WORDS:
                return commands + [current]
        if current:
            commands.append(current)
        current, segments = [], []
    return [c for c in commands if c]


def _words(segments: list[tuple[str, int]], env: dict[str, str]) -> list[tuple[str, int]]:
    """Words of a logical line, each with its physical line when every physical line splits on its own
    (no quote spans lines), else all with the first line."""
    try:
        out = []
        for seg, line in segments:
            lex = shlex.shlex(expand(seg, env), posix=True, punctuation_chars=";&|")
            lex.whitespace_split = True
            lex.commenters = "#"
            out += [(tok, line) for tok in lex]
        return out
    except ValueError:
        return [(tok, segments[0][1]) for tok in _split(expand(" ".join(s for s, _ in segments), env))]


def unwrap_shell(words: list[Word], env: dict[str, str]) -> list[list[Word]]:
    """``sh -c "a; b"`` / ``bash -lc ...`` -> the commands inside; any other command -> itself."""
    if len(words) >= 3 and words[0].text.split("/")[-1] in ("sh", "bash", "ash", "dash", "zsh") \
            and words[1].text.startswith("-") and "c" in words[1].text:
        inner = shell_commands(words[2].text, words[2].line, env, line_step=True)
        return [c for cmd in inner for c in unwrap_shell(cmd, env)]
    return [words]


def _base(word: str) -> str:
    return word.split("/")[-1].lower()


def engine_of(words: list[Word]) -> tuple[str | None, int]:
    """(engine, index of the first argument after the program words) for a server command, else (None, 0)."""
    for i, w in enumerate(words[:6]):
        b = _base(w.text)
        nxt = words[i + 1].text if i + 1 < len(words) else ""
        if b == "vllm" and nxt == "serve":
            return "vllm", i + 2
        if b in ("python", "python3") and nxt == "-m" and i + 2 < len(words) \
                and words[i + 2].text.startswith("vllm.entrypoints"):
            return "vllm", i + 3
        if b.startswith("vllm.entrypoints"):
            return "vllm", i + 1
        if b in ("llama-server", "llama-cli", "server", "llama-cpp-server") or b.startswith("llama-server"):
            return "llama.cpp", i + 1
        if b == "ollama" and nxt == "serve":
            return "ollama", i + 1
    return None, 0


def engine_command(commands: list[list[Word]], env: dict[str, str]) -> tuple[str | None, list[Word]]:
    """The first command that starts vLLM or llama.cpp (``ollama serve`` counts only when nothing else does)."""
    flat = [c for cmd in commands for c in unwrap_shell(cmd, env)]
    fallback: tuple[str | None, list[Word]] = (None, [])
    for cmd in flat:
        eng, at = engine_of(cmd)
        if eng in ("vllm", "llama.cpp"):
            return eng, cmd[at - 1:] if eng == "vllm" and cmd[at - 1].text == "serve" else cmd[at:]
        if eng == "ollama" and fallback[0] is None:
            fallback = ("ollama", cmd[at - 1:])
    return fallback


def ollama_pulled_model(commands: list[list[Word]], env: dict[str, str]) -> Word | None:
    """The model named by ``ollama pull|run NAME`` in a command (init containers, postStart hooks)."""
    for cmd in (c for command in commands for c in unwrap_shell(command, env)):
        for i, w in enumerate(cmd[:-2]):
            if _base(w.text) == "ollama" and cmd[i + 1].text in ("pull", "run") \
                    and not cmd[i + 2].text.startswith("-"):
                return cmd[i + 2]
    return None


def options(words: list[Word], flags_with_value: set[str]) -> list[tuple[str, str | None, int]]:
    """(flag, value or None, line) for every option; ``--a=b``, ``--a b`` and ``--a_b`` (read as ``--a-b``)
    are the same. A flag takes the next word as its value when it is listed in ``flags_with_value``."""
    out: list[tuple[str, str | None, int]] = []
    i = 0
    while i < len(words):
        w = words[i]
        t = w.text
        if not t.startswith("-") or t == "-":
            out.append(("", t, w.line))  # a positional word
            i += 1
            continue
        name, eq, value = t.partition("=")
        if name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        if eq:
            out.append((name, value, w.line))
        elif name in flags_with_value and i + 1 < len(words):
            out.append((name, words[i + 1].text, w.line))
            i += 1
        else:
            out.append((name, None, w.line))
        i += 1
    return out
