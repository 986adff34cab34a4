"""Wall time of `plan` as users run it: a fresh process each time, median of several runs.

    python benchmarks/plan_walltime.py [--runs 15]

Prints the median and 90th percentile wall time of each command, and checks that none imports torch.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = [
    ["plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--ctx", "4096"],
    ["plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--ctx", "4096", "--quant", "q4_k_m", "--json"],
    ["plan", "--model", "deepseek-v3", "--gpu", "h200", "--num-gpus", "8", "--engine", "vllm", "--quant", "fp8"],
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    exe = shutil.which("plan")
    for cmd in COMMANDS:
        argv = [exe, *cmd[1:]] if exe else [sys.executable, "-m", "planner", *cmd]
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            times.append(time.perf_counter() - start)
        times.sort()
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        print(f"{' '.join(cmd):<100} median {statistics.median(times) * 1000:6.0f} ms   p90 {p90 * 1000:6.0f} ms")
    probe = subprocess.run([sys.executable, "-c", "import sys, planner.cli; print('torch' in sys.modules)"],
                           capture_output=True, text=True, check=True)
    print(f"torch imported by planner.cli: {probe.stdout.strip()}")


if __name__ == "__main__":
    main()
