"""Reports other tools read: GitHub workflow annotations and SARIF 2.1.0, plus the escaping every report
needs (names come from files in pull requests, so they may hold control characters, `|`, HTML or @mentions).

Annotations: GitHub's workflow command ``::error file=F,line=L,title=T::MESSAGE``; in the message ``%``, CR and
LF are percent-encoded, in properties also ``:`` and ``,`` (GitHub "Workflow commands" reference, and
@actions/core ``command.ts`` escapeData/escapeProperty). SARIF: OASIS SARIF 2.1.0, one ``run`` with one rule per
check and one ``result`` per failed check at the line of the setting that decides it.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

RULES = {
    "memory": "The deployment does not fit in device memory.",
    "context": "The prompt and the generated tokens exceed the configured context.",
    "headroom_fraction": "Free device memory is below the objective.",
    "decode_tok_s": "Predicted decode speed is below the objective.",
    "ttft_s": "Predicted time to first token is above the objective.",
    "e2e_s": "Predicted end-to-end time is above the objective.",
}


def printable(text: object, limit: int = 500) -> str:
    """One line of text: control characters (newlines included) become spaces."""
    s = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return s if len(s) <= limit else s[:limit] + "..."


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, file: str, line: int | None, title: str, message: str) -> str:
    """One workflow-command line; the message is flattened to one line before escaping."""
    props = f"file={_escape_property(file)}"
    if line:
        props += f",line={int(line)}"
    props += f",title={_escape_property(printable(title, 100))}"
    return f"::{level} {props}::{_escape_data(printable(message, 1000))}"


def annotations(reports) -> list[str]:
    """An ``error`` per failing deployment at the line that decides it, a ``warning`` per unmodelled flag."""
    out = []
    for rep in reports:
        for i, d in enumerate(rep.result.deployments if rep.result else []):
            line = rep.lines[i] if i < len(rep.lines) else None
            if not d.passed:
                e = d.plan
                msg = (f"{d.name}: " + "; ".join(c.message for c in d.failures) +
                       f" ({e.model} {e.quant} on {e.num_gpus} x {e.gpu}, {e.engine}, ctx {e.ctx:,} x {e.batch})")
                out.append(annotation("error", rep.path, line, "planner check", msg))
        for f in rep.found:
            for w in f.warnings:
                m = re.search(r"\(line (\d+)\)", w)
                out.append(annotation("warning", rep.path, int(m.group(1)) if m else f.line, "planner check",
                                      f"{f.name}: {w}"))
    return out


def _uri(path: str) -> str:
    from urllib.parse import quote

    p = Path(path)
    try:
        p = p.resolve().relative_to(Path.cwd().resolve())
    except (ValueError, OSError):
        p = p.resolve() if not p.is_absolute() else p
    text = p.as_posix()
    return quote(text, safe="/") if not p.is_absolute() else "file://" + quote(text, safe="/")


def sarif(reports, version: str) -> dict:
    results = []
    for rep in reports:
        for i, d in enumerate(rep.result.deployments if rep.result else []):
            line = rep.lines[i] if i < len(rep.lines) and rep.lines[i] else 1
            for c in d.failures:
                results.append({
                    "ruleId": c.check,
                    "level": "error",
                    "message": {"text": printable(f"{d.name}: {c.message}", 2000)},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(rep.path)},
                                                        "region": {"startLine": max(1, int(line))}}}],
                    "properties": {"deployment": printable(d.name, 200), "predicted": c.predicted,
                                   "required": c.required, "unit": c.unit},
                })
    rules = [{"id": k, "shortDescription": {"text": v}} for k, v in RULES.items()]
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "planner check", "version": version, "rules": rules}},
                  "results": results}],
    }


_MENTION = re.compile(r"@(?=[A-Za-z0-9_-])")


def markdown_cell(text: object, limit: int = 300) -> str:
    """Text safe inside a GitHub markdown table cell or list item: one line, HTML escaped, ``|`` escaped,
    @mentions and #references defused, markdown emphasis characters escaped."""
    s = printable(text, limit)
    s = html.escape(s, quote=False)
    s = re.sub(r"([\\`*_\[\]|~])", r"\\\1", s)
    s = _MENTION.sub("@\u200b", s)  # a zero-width space: GitHub no longer sees a mention
    return s
