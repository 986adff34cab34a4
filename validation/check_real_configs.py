"""Run `planner check --explain` over a folder of deployment configs and summarise what was understood.

Usage: python validation/check_real_configs.py FOLDER [--gpu ID]

Not a unit test: the folder holds configs collected from public repositories (Kubernetes manifests, compose
files, Helm values, Modelfiles, command lines). For every file it runs the CLI in a fresh process (so a crash
is seen as a crash, with its exit code and stderr), prints per deployment what was understood or why it was
not, then a summary: files read, files refused with a reason, deployments understood, deployments reported
with a reason (grouped by the kind of reason), and crashes (anything that is not exit 0 or one clean error
line with exit 2). With ``--gpu`` the deployments that lack only a GPU type are also gated, and their
verdicts counted.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REASONS = [
    ("no GPU type", r"no GPU type"),
    ("GPU type ambiguous", r"is ambiguous"),
    ("no GPU requested (CPU)", r"no GPU requested"),
    ("model not in the catalog", r"is not in the catalog"),
    ("model only in a volume/bucket path", r"only a path in a volume"),
    ("model named nowhere", r"no model"),
    ("model depends on a shell variable", r"depends on a shell variable"),
    ("settings in a file not included", r"--config"),
    ("unsupported engine", r"unsupported engine"),
    ("model is a local file or blob", r"local file or blob"),
]


def reason_kind(text: str) -> str:
    for label, pattern in REASONS:
        if re.search(pattern, text):
            return label
    return "other: " + text[:80]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from planner.cli import main; main()", *args],
                          capture_output=True, text=True, timeout=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--gpu", help="also gate deployments that lack only a GPU type, on this GPU")
    ns = ap.parse_args()
    files = sorted(p for p in ns.folder.iterdir() if p.is_file() and p.suffix.lower() != ".md")
    stats: Counter = Counter()
    reasons: Counter = Counter()
    any_reason: Counter = Counter()
    verdicts: Counter = Counter()
    for path in files:
        proc = run(["check", "--explain", "--json", str(path)])
        print(f"== {path.name}")
        err_lines = proc.stderr.strip().splitlines()
        if proc.returncode == 2 and len(err_lines) == 1 and "Traceback" not in proc.stderr:
            stats["files refused with a reason"] += 1
            print(f"   refused: {err_lines[0].removeprefix('error: ').replace(str(path), path.name)}")
            continue
        if proc.returncode != 0:
            stats["crashes"] += 1
            print(f"   CRASH exit {proc.returncode}: {proc.stderr.strip()[-500:]}")
            continue
        stats["files read"] += 1
        (report,) = json.loads(proc.stdout)
        for d in report["deployments"]:
            stats["deployments"] += 1
            stats["deployments whose model was identified"] += d["model_id"] is not None
            gpu = d["gpu"] or "?"
            gpus = d["num_gpus"]
            head = (f"   {d['name']} (line {d['line']}): {d['engine']} {d['model_id'] or '?'} {d['quant'] or '?'} "
                    f"on {gpus} x {gpu}, ctx {d['ctx'] if d['ctx'] is not None else 'default'}")
            if d["understood"]:
                stats["deployments understood"] += 1
                print(head + "  -> understood")
            else:
                stats["deployments reported with a reason"] += 1
                reasons[reason_kind(d["problems"][0])] += 1
                for p in d["problems"]:
                    any_reason[reason_kind(p)] += 1
                print(head + f"  -> not evaluable: {'; '.join(d['problems'])}")
            for w in d["warnings"]:
                stats["warnings (unmodelled flags, ineffective keys)"] += 1
                print(f"      warning: {w}")
        for s in report["skipped"]:
            stats["documents/services skipped (no inference server)"] += 1
        if ns.gpu:
            gated = run(["check", str(path), "--gpu", ns.gpu, "--json"])
            verdicts[{0: "pass", 1: "fail", 2: "not evaluable"}.get(gated.returncode, "crash")] += 1
            if gated.returncode == 1:
                data = json.loads(gated.stdout)
                for f in data.get("files", [data]):
                    for dep in f["deployments"]:
                        if not dep["passed"]:
                            print(f"   on {ns.gpu}: FAIL {dep['name']}: {'; '.join(dep['failures'])}")
    print("\n== summary")
    print(f"files: {len(files)}")
    for key in ("files read", "files refused with a reason", "crashes", "deployments",
                "deployments whose model was identified", "deployments understood",
                "deployments reported with a reason", "warnings (unmodelled flags, ineffective keys)",
                "documents/services skipped (no inference server)"):
        print(f"{key}: {stats[key]}")
    for kind, n in reasons.most_common():
        print(f"  first reason '{kind}': {n}")
    for kind, n in any_reason.most_common():
        print(f"  among all reasons '{kind}': {n}")
    if ns.gpu:
        print(f"gated on {ns.gpu} (per file): " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    return 1 if stats["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
