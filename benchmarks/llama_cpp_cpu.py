"""Real llama.cpp on this CPU against `plan --gpu local --engine llama.cpp --threads N` (not a CI test).

    pip install llama-cpp-python          # compiles llama.cpp: minutes on 2 cores
    python benchmarks/llama_cpp_cpu.py --threads 2 [--calibration cal.json] [--workdir DIR]

1. Writes a Qwen2.5-0.5B-shaped GGUF with random F16 weights (the `gguf` package's writer; 24 layers,
   hidden 896, 14/2 heads, FFN 4864, vocab 151,936, tied embeddings) and quantizes it with llama.cpp's own
   quantizer (llama_cpp.llama_model_quantize) to Q8_0, Q4_K_M and Q4_0. Nothing is downloaded.
2. Measures batch-1 decode with ``--threads`` threads in every format: ``--rounds`` rounds that alternate
   between the formats (so load from other processes hits all of them alike); one round = ``--tokens``
   single-token llama_decode calls after a one-token prompt; tok/s = tokens / seconds, the fastest round.
3. Calibrates the device (`planner calibrate --device cpu --quick`) unless ``--calibration`` names a file,
   and asks `plan --model <file.gguf> --gpu local --engine llama.cpp --threads N --prompt 1 --gen <tokens>`
   for its prediction of each file.
4. Prints measured and predicted tok/s, the error of each format and the median |error|.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Qwen2.5-0.5B (config.json of Qwen/Qwen2.5-0.5B)
SHAPE = {"n_layers": 24, "hidden": 896, "n_heads": 14, "n_kv_heads": 2, "ffn": 4864, "vocab": 151936,
         "rope_theta": 1_000_000.0, "rms_eps": 1e-6, "ctx": 32768}
# llama_ftype values (llama.h)
FTYPES = {"q8_0": 7, "q4_0": 2, "q4_k_m": 15}
FORMATS = ["f16", "q8_0", "q4_k_m", "q4_0"]


def write_f16_gguf(path: Path, seed: int = 0) -> None:
    """A random-weight qwen2 GGUF: llama.cpp's tensor names and metadata keys, an SPM-style vocabulary of
    placeholder tokens (byte tokens first) so that llama.cpp loads it; decode speed does not depend on
    the values."""
    import gguf

    s = SHAPE
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("random qwen2.5-0.5b-shaped")
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["hidden"])
    w.add_block_count(s["n_layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["n_heads"])
    w.add_head_count_kv(s["n_kv_heads"])
    w.add_rope_freq_base(s["rope_theta"])
    w.add_layer_norm_rms_eps(s["rms_eps"])
    w.add_file_type(1)  # LLAMA_FTYPE_MOSTLY_F16
    tokens = [f"<0x{i:02X}>".encode() for i in range(256)] + [f"t{i}".encode() for i in range(256, s["vocab"])]
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * s["vocab"])
    w.add_token_types([6] * 256 + [1] * (s["vocab"] - 256))  # 6 = byte, 1 = normal
    w.add_bos_token_id(256)
    w.add_eos_token_id(257)

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(np.float16)

    def vec(n: int, value: float | None = None) -> np.ndarray:
        return np.full(n, value, np.float32) if value is not None else (rng.standard_normal(n) * 0.02).astype(np.float32)

    h, kv = s["hidden"], s["n_kv_heads"] * (s["hidden"] // s["n_heads"])
    w.add_tensor("token_embd.weight", mat(s["vocab"], h))
    w.add_tensor("output_norm.weight", vec(h, 1.0))
    for i in range(s["n_layers"]):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", vec(h, 1.0))
        w.add_tensor(p + "attn_q.weight", mat(h, h))
        w.add_tensor(p + "attn_q.bias", vec(h))
        w.add_tensor(p + "attn_k.weight", mat(kv, h))
        w.add_tensor(p + "attn_k.bias", vec(kv))
        w.add_tensor(p + "attn_v.weight", mat(kv, h))
        w.add_tensor(p + "attn_v.bias", vec(kv))
        w.add_tensor(p + "attn_output.weight", mat(h, h))
        w.add_tensor(p + "ffn_norm.weight", vec(h, 1.0))
        w.add_tensor(p + "ffn_gate.weight", mat(s["ffn"], h))
        w.add_tensor(p + "ffn_up.weight", mat(s["ffn"], h))
        w.add_tensor(p + "ffn_down.weight", mat(h, s["ffn"]))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize(src: Path, dst: Path, fmt: str, threads: int) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[fmt]
    params.nthread = threads
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({fmt}) returned {rc}")


def model_files(workdir: Path, threads: int) -> dict[str, Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    files = {f: workdir / f"qwen2.5-0.5b-random-{f}.gguf" for f in FORMATS}
    if not files["f16"].is_file():
        print(f"writing {files['f16']}", flush=True)
        write_f16_gguf(files["f16"])
    for fmt in FORMATS[1:]:
        if not files[fmt].is_file():
            print(f"quantizing to {fmt}", flush=True)
            quantize(files["f16"], files[fmt], fmt, threads)
    return files


def time_decode(llm, tokens: int) -> float:
    """Seconds for ``tokens`` single-token decode steps after a one-token prompt (fresh KV cache)."""
    llm.reset()
    llm.eval([256])
    t0 = time.perf_counter()
    for i in range(tokens):
        llm.eval([300 + i])
    return time.perf_counter() - t0


def measure(files: dict[str, Path], threads: int, tokens: int, rounds: int) -> dict[str, list[float]]:
    from llama_cpp import Llama

    models = {f: Llama(model_path=str(p), n_threads=threads, n_threads_batch=threads, n_ctx=512, n_batch=64,
                       verbose=False) for f, p in files.items()}
    for llm in models.values():  # warm the page cache and the thread pool
        time_decode(llm, 4)
    speeds: dict[str, list[float]] = {f: [] for f in files}
    for r in range(rounds):
        order = FORMATS if r % 2 == 0 else FORMATS[::-1]
        for f in order:
            speeds[f].append(tokens / time_decode(models[f], tokens))
        print(f"round {r + 1}: " + ", ".join(f"{f} {speeds[f][-1]:.2f}" for f in FORMATS), flush=True)
    return speeds


def planner_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True, text=True, check=False)


def predict(path: Path, threads: int, tokens: int, calibration: str) -> dict:
    out = planner_cli("plan", "--model", str(path), "--gpu", "local", "--engine", "llama.cpp", "--threads",
                      str(threads), "--prompt", "1", "--gen", str(tokens), "--ctx", "512", "--calibration",
                      calibration, "--json")
    if out.returncode not in (0, 1):
        raise RuntimeError(f"plan failed: {out.stderr.strip()}")
    data = json.loads(out.stdout)
    return (data[0] if isinstance(data, list) else data)["performance"]  # a file fixes its one format


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=32, help="decode steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calibration", default=None, help="calibration file (default: calibrate now)")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "planner-llama-cpp")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    files = model_files(args.workdir, args.threads)
    calibration = args.calibration
    if calibration is None:
        calibration = str(args.workdir / "calibration.json")
        print("planner calibrate --device cpu --quick", flush=True)
        cal = planner_cli("calibrate", "--device", "cpu", "--quick", "--out", calibration)
        print(cal.stdout + cal.stderr, flush=True)
        if cal.returncode != 0:
            return cal.returncode
    speeds = measure(files, args.threads, args.tokens, args.rounds)
    rows = []
    for f in FORMATS:
        perf = predict(files[f], args.threads, args.tokens, calibration)
        measured = max(speeds[f])
        rows.append({"format": f, "measured_tok_s": measured, "measured_median_tok_s": statistics.median(speeds[f]),
                     "rounds_tok_s": speeds[f], "predicted_tok_s": perf["decode_tok_s"], "bound": perf["bound"],
                     "efficiency_source": perf["efficiency_source"],
                     "error_pct": 100 * (perf["decode_tok_s"] / measured - 1)})
    print(f"\n{'format':8} {'measured':>9} {'(median)':>9} {'predicted':>9} {'error':>7}  bound")
    for r in rows:
        print(f"{r['format']:8} {r['measured_tok_s']:9.2f} {r['measured_median_tok_s']:9.2f} "
              f"{r['predicted_tok_s']:9.2f} {r['error_pct']:+6.1f}%  {r['bound']} ({r['efficiency_source']})")
    median_abs = statistics.median(abs(r["error_pct"]) for r in rows)
    print(f"median |error| over {len(rows)} formats: {median_abs:.1f}% (threads {args.threads}, "
          f"load average {os.getloadavg()[0]:.1f})")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "median_abs_error_pct": median_abs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
