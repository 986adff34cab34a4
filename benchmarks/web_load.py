"""Load on `planner web`: concurrent clients POSTing /api/plan on loopback (a benchmark, not a CI test).

    python benchmarks/web_load.py [--clients 50] [--requests 2000] [--port 0]

Starts `planner web --port 0` in a subprocess, then ``--clients`` threads, each with its own keep-alive
connection, send ``--requests`` requests in all (a bounded number in flight: one per client), cycling
through a few different plans. Every answer is checked: status 200 and the body byte for byte equal to
what `plan --json` prints for the same flags. Prints requests/s, latency percentiles and the error count;
exits 1 if any answer was wrong.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

BODIES = [
    {"model": "llama3.1-8b", "gpu": "rtx4090", "ctx": 4096},
    {"model": "llama3.1-8b", "gpu": "rtx4090", "ctx": 4096, "quant": "q4_k_m"},
    {"model": "qwen2.5-72b", "gpu": "h100", "engine": "vllm", "num_gpus": 2, "quant": "fp8", "ctx": 32768},
    {"model": "mixtral-8x7b", "gpu": "a100-80gb-sxm", "quant": "q8_0", "batch": 4},
]


def expected_bodies() -> list[str]:
    """What the command line prints for each body (`plan ... --json`), run once per body."""
    out = []
    for body in BODIES:
        flags = [x for k, v in body.items() for x in (f"--{k.replace('_', '-')}", str(v))]
        proc = subprocess.run([sys.executable, "-m", "planner", "plan", *flags, "--json"], capture_output=True,
                              text=True, timeout=120, check=True)
        out.append(proc.stdout)
    return out


def start_server(port: int) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen([sys.executable, "-m", "planner", "web", "--port", str(port)], stderr=subprocess.PIPE,
                            text=True, env=os.environ.copy())
    line = proc.stderr.readline()
    if not line.startswith("planner web: http://"):
        proc.kill()
        raise SystemExit(f"the server did not start: {line.strip()}")
    url = line.split()[2]
    host, port_text = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
    return proc, host, int(port_text)


def client(host: str, port: int, jobs: list[int], expected: list[str], latencies: list[float], wrong: list[str],
           lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    while True:
        with lock:
            if not jobs:
                break
            i = jobs.pop()
        k = i % len(BODIES)
        payload = json.dumps(BODIES[k])
        start = time.perf_counter()
        try:
            conn.request("POST", "/api/plan", body=payload, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            text = resp.read().decode()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            status, text = -1, str(exc)
        elapsed = time.perf_counter() - start
        with lock:
            latencies.append(elapsed)
            if status != 200 or text != expected[k]:
                wrong.append(f"request {i}: status {status}: {text[:120]}")
    conn.close()


def run(host: str, port: int, clients: int, requests: int, expected: list[str]) -> dict:
    jobs = list(range(requests))
    latencies: list[float] = []
    wrong: list[str] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=client, args=(host, port, jobs, expected, latencies, wrong, lock))
               for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {"clients": clients, "requests": len(latencies), "wall_s": wall, "requests_per_s": len(latencies) / wall,
            "p50_ms": q[49] * 1e3, "p95_ms": q[94] * 1e3, "p99_ms": q[98] * 1e3, "max_ms": max(latencies) * 1e3,
            "wrong": len(wrong), "first_wrong": wrong[:3]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    expected = expected_bodies()
    proc, host, port = start_server(args.port)
    try:
        run(host, port, 4, 40, expected)  # warm up: catalogs, imports
        results = [run(host, port, c, args.requests, expected) for c in sorted({1, 10, args.clients})]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{'clients':>7} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'wrong':>5}")
    for r in results:
        print(f"{r['clients']:>7} {r['requests']:>8} {r['requests_per_s']:>8.1f} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} "
              f"{r['p99_ms']:>8.1f} {r['max_ms']:>8.1f} {r['wrong']:>5}")
    for r in results:
        for w in r["first_wrong"]:
            print(f"wrong answer ({r['clients']} clients): {w}")
    sys.exit(1 if any(r["wrong"] for r in results) else 0)


if __name__ == "__main__":
    main()
