"""Run the decode benchmark suite (CPU by default) and report decode bytes/s as a fraction of copy bandwidth.

    python benchmarks/decode_bench_cpu.py            # full grid, a few minutes on 2 cores
    python benchmarks/decode_bench_cpu.py --quick    # under a minute
    python benchmarks/decode_bench_cpu.py --json out.json --dtype float16

The headline is the weight-streaming run (most layers, batch 1, shortest context):
fraction = decode bytes/s / copy bytes/s, where copy bytes/s = 2 · buffer bytes / t (read + write).
Note: on Linux, torch only asks for transparent huge pages when THP_MEM_ALLOC_ENABLE=1; with THP_MEM_ALLOC_ENABLE
set, copy bandwidth can nearly double on some VMs while GEMV-bound decode does not change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.kernels.decode_bench import run_suite

GB = 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    parser.add_argument("--quick", action="store_true", help="small grid (< 60 s)")
    parser.add_argument("--dtype", default=None, help="torch dtype name (default float32 on CPU)")
    parser.add_argument("--json", type=Path, default=None, help="write the BenchSuiteResult here")
    args = parser.parse_args()
    result = run_suite(args.device, quick=args.quick, dtype=args.dtype, progress=lambda m: print(f"  {m}", flush=True))
    print(f"device: {result.device_name}, torch {result.torch_version}, {result.dtype}, "
          f"{result.cpu_threads} threads, {result.elapsed_seconds:.0f} s")
    print(f"copy bandwidth: {result.copy.bytes_per_s / GB:.1f} GB/s ({result.copy.size_bytes / 2**20:.0f} MiB)")
    print(f"read bandwidth: {result.read.bytes_per_s / GB:.1f} GB/s")
    for g in result.gemv:
        print(f"GEMV {g.in_features}x{g.out_features} x{g.n_matrices}: {g.bytes_per_s / GB:.1f} GB/s")
    print(f"{'layers':>6} {'batch':>5} {'ctx':>6} {'weights MB':>10} {'KV MB':>7} {'ms/step':>8} {'GB/s':>6}")
    for r in result.runs:
        print(f"{r.n_layers:>6} {r.batch:>5} {r.context_tokens:>6} {r.weight_bytes_per_step / 1e6:>10.0f} "
              f"{r.kv_bytes_per_step / 1e6:>7.1f} {r.seconds_per_step * 1e3:>8.1f} {r.bytes_per_s / GB:>6.1f}")
    for s in result.skipped:
        print(f"skipped: {s}")
    best = result.weight_streaming_run()
    if best is None:
        print("no decode run fitted the memory budget")
        return 1
    fraction = result.fraction_of_copy_bandwidth(best)
    gemv_best = max(g.bytes_per_s for g in result.gemv)
    print(f"largest shape ({best.n_layers} layers, {best.weight_bytes_per_step / 1e6:.0f} MB weights, batch "
          f"{best.batch}, ctx {best.context_tokens}): decode {best.bytes_per_s / GB:.1f} GB/s = "
          f"{fraction:.0%} of copy bandwidth, {best.bytes_per_s / result.read.bytes_per_s:.0%} of read "
          f"bandwidth, {best.bytes_per_s / gemv_best:.0%} of the best batch-1 GEMV")
    if args.json:
        args.json.write_text(json.dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
