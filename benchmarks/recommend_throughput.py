"""How many candidate configurations `planner.search.grid` evaluates per second (issue 5: at least 1,000,000).

One candidate is one (quant, KV dtype, host layers, context, concurrency, GPU count) point with its
fit, memory, decode speed, TTFT and end-to-end time. Run: python benchmarks/recommend_throughput.py
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from planner.spec import catalog
    from planner.estimate import DEFAULT_HOST, ENGINE_KV_DTYPES, deployment, resolve_model
    from planner.physics.kvcache import get_kv_dtype
    from planner.physics.quant import Engine, quants_for
    from planner.search.grid import Group
    from planner.physics.workload import Workload

    resolved = resolve_model("llama3.1-8b")
    hw, host = catalog.load_hardware("rtx4090"), catalog.load_hardware(DEFAULT_HOST)
    kvs = [get_kv_dtype(k) for k in ENGINE_KV_DTYPES[Engine.llama_cpp]]
    n = resolved.spec.architecture.n_layers
    groups = [Group(deployment(resolved, hw, Engine.llama_cpp, q, "f16", Workload(), g, host=host))
              for q in quants_for(Engine.llama_cpp, resolved.spec) for g in (1, 2)]
    ctx = np.arange(256, 131_072 + 1, 256)
    batch = np.arange(1, 17)
    hosts = np.arange(n + 1)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for g in groups:
            grid = g.evaluate(kvs, hosts, ctx, batch)
            total += grid.size
        rate = total / (time.perf_counter() - start)
        best = max(best, rate)
    print(f"{total:,} candidate configurations per pass; {best:,.0f} candidates/s (best of 3)")

    from planner.search.recommend import prepare, recommend

    start = time.perf_counter()
    r = recommend(prepare("llama3.1-8b", "rtx4090", max_gpus=2))
    print(f"recommend llama3.1-8b on rtx4090 (up to 2 GPUs): {time.perf_counter() - start:.3f} s, "
          f"{r.candidates_evaluated:,} candidates")


if __name__ == "__main__":
    main()
