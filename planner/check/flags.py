"""Engine flags -> planner fields: vLLM and llama.cpp argument lists, llama.cpp's LLAMA_ARG_* and Ollama's
environment. Flags the planner models set fields; flags that change memory or speed and that the planner
does not model become warnings naming the flag; anything else (ports, API keys, logging) is ignored.

Flag names and defaults: vLLM ``vllm/engine/arg_utils.py`` (EngineArgs), llama.cpp ``common/arg.cpp``, Ollama
``envconfig/config.go``. docs/check.md lists what each flag maps to.
"""

from __future__ import annotations

from planner.check.argv import Word, options
from planner.check.found import MAX_CTX, MAX_GPUS, MAX_SEQS, Found, fraction, positive_int
from planner.check.names import gguf_name, hf_name
from planner.physics.engines import VLLM_GPU_MEMORY_UTILIZATION

VLLM_VALUE_FLAGS = {
    "--model", "--max-model-len", "--gpu-memory-utilization", "--tensor-parallel-size", "-tp",
    "--pipeline-parallel-size", "-pp", "--kv-cache-dtype", "--max-num-seqs", "--max-num-batched-tokens",
    "--quantization", "-q", "--dtype", "--swap-space", "--cpu-offload-gb", "--port", "--host", "--served-model-name",
    "--api-key", "--download-dir", "--block-size", "--max-loras", "--max-cpu-loras", "--max-lora-rank",
    "--limit-mm-per-prompt", "--speculative-config", "--data-parallel-size", "-dp", "--config", "--tokenizer",
    "--chat-template", "--mm-encoder-tp-mode", "--num-gpu-blocks-override", "--kv-offloading-size",
    "--distributed-executor-backend", "--trust-remote-code", "--max-seq-len-to-capture", "--lora-modules",
    "--uvicorn-log-level", "--tool-call-parser", "--reasoning-parser", "--load-format", "--revision",
    "--compilation-config", "-O", "--model-name",
}
# Flags that change memory or speed which the planner's vLLM model does not represent.
VLLM_UNMODELLED = {
    "--swap-space": "CPU swap space for preempted sequences",
    "--cpu-offload-gb": "weights offloaded to CPU memory",
    "--enable-prefix-caching": "prefix caching (reuses KV blocks across requests)",
    "--max-num-batched-tokens": "prefill chunk / scheduler token budget",
    "--enable-chunked-prefill": "chunked prefill",
    "--enforce-eager": "no CUDA graphs (less memory, slower decode)",
    "--speculative-config": "speculative decoding",
    "--enable-lora": "LoRA adapters", "--max-loras": "LoRA adapters", "--max-cpu-loras": "LoRA adapters",
    "--limit-mm-per-prompt": "multimodal inputs (vision encoder memory)",
    "--mm-encoder-tp-mode": "vision encoder parallelism",
    "--block-size": "KV block size", "--num-gpu-blocks-override": "KV block count override",
    "--kv-offloading-size": "KV offloading to CPU", "--compilation-config": "torch.compile settings",
}
VLLM_QUANTS = {"fp8": "fp8", "awq": "awq-int4", "awq_marlin": "awq-int4", "gptq": "gptq-int4",
               "gptq_marlin": "gptq-int4", "bitsandbytes": "nf4", "mxfp4": "mxfp4", "compressed-tensors": None,
               "modelopt": None, "modelopt_fp4": None}
VLLM_KV = {"auto": None, "fp8": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8", "bfloat16": "bf16", "float16": "f16"}


def _bad(f: Found, flag: str, value: object, line: int, what: str) -> None:
    f.fail(f"{flag} {str(value)[:40]!r} is not {what}")
    f.lines.setdefault("ctx" if "len" in flag or "ctx" in flag else flag, line)


def apply_vllm(f: Found, words: list[Word]) -> None:
    f.engine = "vllm"
    for flag, value, line in options(words, VLLM_VALUE_FLAGS):
        if flag in ("", "serve") and value is not None and f.model is None and value != "serve":
            set_hf_model(f, value, line)
        elif flag in ("--model", "--model-name") and value is not None:
            set_hf_model(f, value, line)
        elif flag == "--max-model-len":
            v = positive_int(value, MAX_CTX)
            _bad(f, flag, value, line, "a token count") if not v else (f.note("max-model-len", v, line),
                                                                       setattr(f, "ctx", v), f.lines.update(ctx=line))
        elif flag in ("--tensor-parallel-size", "-tp", "--pipeline-parallel-size", "-pp"):
            v = positive_int(value, MAX_GPUS)
            key = "tp" if "t" in flag.lstrip("-")[:1] else "pp"
            if not v:
                _bad(f, flag, value, line, "a GPU count")
            else:
                setattr(f, key, v)
                f.note(flag.lstrip("-"), v, line)
                f.lines["num_gpus"] = line
        elif flag == "--gpu-memory-utilization":
            v = fraction(value)
            if v is None:
                _bad(f, flag, value, line, "a fraction in (0, 1]")
            else:
                f.note("gpu-memory-utilization", v, line)
                if abs(v - VLLM_GPU_MEMORY_UTILIZATION) > 1e-9:
                    f.warnings.append(f"--gpu-memory-utilization {v:g} (line {line}) is not modelled: the planner "
                                      f"assumes vLLM's default {VLLM_GPU_MEMORY_UTILIZATION:g}")
        elif flag == "--kv-cache-dtype" and value is not None:
            kv = VLLM_KV.get(value.lower(), "?")
            if kv == "?":
                _bad(f, flag, value, line, "a KV-cache dtype the planner knows")
            elif kv:
                f.kv_dtype = kv
                f.note("kv-cache-dtype", kv, line)
                f.lines["kv_dtype"] = line
        elif flag == "--max-num-seqs":
            v = positive_int(value, MAX_SEQS)
            f.note("max-num-seqs", v if v else value, line)  # an upper bound, not a reservation (paged KV)
        elif flag in ("--quantization", "-q") and value is not None:
            q = VLLM_QUANTS.get(value.lower(), "?")
            if q == "?" or q is None:
                f.fail(f"--quantization {value[:40]} is not a format the planner models")
            else:
                f.quant = q
                f.note("quantization", q, line)
                f.lines["quant"] = line
        elif flag == "--dtype" and value is not None:
            f.note("dtype", value, line)
            if value.lower() in ("half", "float16", "fp16"):
                f.notes.append(f"--dtype {value}: 16-bit weights, sized as bf16 (same bytes)")
        elif flag in ("--data-parallel-size", "-dp"):
            v = positive_int(value, MAX_GPUS)
            if v and v > 1:
                f.note("data-parallel-size", v, line)
                f.notes.append(f"data parallel {v}: {v} engine copies, each checked as one")
        elif flag == "--config":
            f.fail(f"the settings are in --config {str(value)[:60]}, a file this config does not include")
        elif flag in VLLM_UNMODELLED:
            f.warnings.append(f"{flag}{' ' + value if value else ''} (line {line}) is not modelled: "
                              f"{VLLM_UNMODELLED[flag]}")
    f.num_gpus = f.tp * f.pp


def set_hf_model(f: Found, value: str, line: int) -> None:
    """A vLLM model argument: a Hugging Face id (matched to the catalog), or a path in the image."""
    f.model = value
    f.lines["model"] = line
    in_volume = value.startswith(("/", "pvc://", "s3://", "gs://", "oci://"))
    name = value.rstrip("/").split("/")[-1].replace("--", "/") if in_volume else value.removeprefix("hf://")
    if "$" in name:
        f.model_ref = None
        f.fail(f"the model name '{value[:80]}' depends on a shell variable the file does not set")
        return
    mid, q, note = hf_name(name)
    if in_volume:
        if mid is None:
            f.model_ref = None
            f.fail(f"the model is only a path in a volume or bucket ({value[:80]}); its name is not in the catalog")
            return
        note = f"model read from the path's last part: {note}"
    f.model_ref = mid
    if mid is None:
        f.fail(note)
    else:
        f.notes.append(note) if note != value else None
        if q and f.quant is None:
            f.quant = q


# --------------------------------------------------------------------------------------------- llama.cpp

LLAMA_VALUE_FLAGS = {
    "-m", "--model", "-hf", "--hf-repo", "-hfr", "-hff", "--hf-file", "-c", "--ctx-size", "-ngl", "--n-gpu-layers",
    "--gpu-layers", "-np", "--parallel", "-ctk", "--cache-type-k", "-ctv", "--cache-type-v", "-b", "--batch-size",
    "-ub", "--ubatch-size", "-t", "--threads", "-ts", "--tensor-split", "-sm", "--split-mode", "--port", "--host",
    "-a", "--alias", "--cache-reuse", "-n", "--n-predict", "--rpc", "-mg", "--main-gpu", "--api-key", "-dev",
    "--device", "--mem", "-fa", "--flash-attn",
}
LLAMA_UNMODELLED = {
    "-sm": "split mode other than layer", "--rpc": "RPC workers (model spread over hosts)",
    "--cache-reuse": "KV reuse across requests", "-md": "draft model (speculative decoding)",
    "--model-draft": "draft model (speculative decoding)", "--mmproj": "multimodal projector",
    "-ot": "tensor overrides", "--override-tensor": "tensor overrides", "--no-mmap": "no memory map",
    "--cpu-moe": "MoE experts on the CPU", "--n-cpu-moe": "MoE experts on the CPU",
}
# common/arg.cpp presets: flag -> (model repository, catalog id or None)
LLAMA_PRESETS = {
    "--fim-qwen-1.5b-default": "ggml-org/Qwen2.5-Coder-1.5B-Q8_0-GGUF",
    "--fim-qwen-3b-default": "ggml-org/Qwen2.5-Coder-3B-Q8_0-GGUF",
    "--fim-qwen-7b-default": "ggml-org/Qwen2.5-Coder-7B-Q8_0-GGUF",
    "--fim-qwen-7b-spec": "ggml-org/Qwen2.5-Coder-7B-Q8_0-GGUF",
    "--fim-qwen-14b-spec": "ggml-org/Qwen2.5-Coder-14B-Q8_0-GGUF",
    "--gpt-oss-20b-default": "ggml-org/gpt-oss-20b-GGUF",
    "--gpt-oss-120b-default": "ggml-org/gpt-oss-120b-GGUF",
}
LLAMA_KV = {"f16", "bf16", "f32", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"}
_ALIASES = {"--model": "-m", "--hf-repo": "-hf", "-hfr": "-hf", "--ctx-size": "-c", "--n-gpu-layers": "-ngl",
            "--gpu-layers": "-ngl", "--parallel": "-np", "--cache-type-k": "-ctk", "--cache-type-v": "-ctv",
            "--batch-size": "-b", "--ubatch-size": "-ub", "--threads": "-t", "--tensor-split": "-ts",
            "--split-mode": "-sm", "--flash-attn": "-fa", "--hf-file": "-hff"}


def set_gguf_model(f: Found, value: str, line: int, repo: bool = False) -> None:
    f.model = value
    f.lines["model"] = line
    if repo:
        name, _, tag = value.partition(":")
        mid, q, note = gguf_name(name.split("/")[-1] + (f"-{tag}" if tag else "") + ".gguf")
    else:
        mid, q, note = gguf_name(value)
    f.model_ref = mid
    if q:
        f.quant = q
    if mid is None:
        f.fail(note)
    else:
        f.notes.append(note)


def apply_llama(f: Found, words: list[Word]) -> None:
    f.engine = "llama.cpp"
    for flag, value, line in options(words, LLAMA_VALUE_FLAGS):
        flag = _ALIASES.get(flag, flag)
        if flag == "-fa" and value is not None and value.lower() not in ("on", "off", "auto", "1", "0"):
            value = None  # an old boolean -fa followed by another word: that word was not its value
        if flag == "-m" and value:
            set_gguf_model(f, value, line)
            f.settings["model-file"] = value
        elif flag == "-hf" and value:
            set_gguf_model(f, value, line, repo=True)
        elif flag in LLAMA_PRESETS:
            f.note("preset", flag, line)
            set_gguf_model(f, LLAMA_PRESETS[flag], line, repo=True)
            if f.model_ref is None:
                f.problems[-1:] = [f"preset {flag} means {LLAMA_PRESETS[flag]}, which is not in the catalog"]
        elif flag == "-c":
            v = positive_int(value, MAX_CTX)
            if v is None:
                _bad(f, flag, value, line, "a token count")
            else:
                f.ctx = v  # 0: the GGUF's trained context, resolved by the evaluator
                f.note("ctx-size", v, line)
                f.lines["ctx"] = line
        elif flag == "-ngl":
            v = positive_int(value, 100_000)
            _bad(f, flag, value, line, "a layer count") if v is None else (setattr(f, "ngl", v),
                                                                           f.note("n-gpu-layers", v, line))
        elif flag == "-np":
            v = positive_int(value, MAX_SEQS)
            if not v:
                _bad(f, flag, value, line, "a slot count")
            else:
                f.concurrency = v
                f.note("parallel", v, line)
                f.lines["concurrency"] = line
        elif flag in ("-ctk", "-ctv") and value:
            kv = value.lower()
            if kv not in LLAMA_KV:
                _bad(f, flag, value, line, "a KV-cache type")
            else:
                f.kv_dtype = kv if f.kv_dtype in (None, "f16") else f.kv_dtype
                f.note(flag.lstrip("-"), kv, line)
                f.lines["kv_dtype"] = line
        elif flag == "-fa":
            f.note("flash-attn", value or "on", line)
        elif flag == "-ub" and value and value != "512":
            f.warnings.append(f"-ub {value} (line {line}) is not modelled: the planner sizes compute buffers for "
                              "the default ubatch 512")
        elif flag == "-ts" and value:
            f.note("tensor-split", value, line)
            parts = [p for p in value.replace("/", ",").split(",") if p.strip()]
            if len(set(parts)) > 1:
                f.warnings.append(f"-ts {value} (line {line}) is not modelled: the planner splits layers evenly")
        elif flag == "-sm" and value and value.lower() != "layer":
            f.warnings.append(f"-sm {value} (line {line}) is not modelled: {LLAMA_UNMODELLED['-sm']}")
        elif flag in ("-t", "-b", "--mlock", "-n", "--mem"):
            f.note(flag.lstrip("-"), value if value is not None else "on", line)
        elif flag in LLAMA_UNMODELLED:
            f.warnings.append(f"{flag} (line {line}) is not modelled: {LLAMA_UNMODELLED[flag]}")


LLAMA_ENV = {"LLAMA_ARG_MODEL": "-m", "LLAMA_ARG_HF_REPO": "-hf", "LLAMA_ARG_CTX_SIZE": "-c",
             "LLAMA_ARG_N_GPU_LAYERS": "-ngl", "LLAMA_ARG_N_PARALLEL": "-np", "LLAMA_ARG_CACHE_TYPE_K": "-ctk",
             "LLAMA_ARG_CACHE_TYPE_V": "-ctv", "LLAMA_ARG_FLASH_ATTN": "-fa", "LLAMA_ARG_UBATCH": "-ub",
             "LLAMA_ARG_BATCH": "-b", "LLAMA_ARG_THREADS": "-t", "LLAMA_ARG_TENSOR_SPLIT": "-ts",
             "LLAMA_ARG_SPLIT_MODE": "-sm"}


def llama_env_words(env: dict[str, str], env_lines: dict[str, int]) -> list[Word]:
    """llama-server reads every flag from LLAMA_ARG_<NAME> too; turned into the flags they stand for."""
    words = []
    for k, flag in LLAMA_ENV.items():
        if k in env:
            words += [Word(flag, env_lines.get(k, 1)), Word(str(env[k]), env_lines.get(k, 1))]
    return words


OLLAMA_KV = {"f16": "f16", "q8_0": "q8_0", "q4_0": "q4_0"}


def apply_ollama_env(f: Found, env: dict[str, str], env_lines: dict[str, int]) -> None:
    """OLLAMA_NUM_PARALLEL, OLLAMA_KV_CACHE_TYPE, OLLAMA_CONTEXT_LENGTH set fields; OLLAMA_GPU_OVERHEAD and
    the scheduler settings are warned about."""
    def line(k: str) -> int:
        return env_lines.get(k, f.line)

    if "OLLAMA_NUM_PARALLEL" in env:
        v = positive_int(env["OLLAMA_NUM_PARALLEL"], MAX_SEQS)
        if v:
            f.concurrency = v
            f.note("OLLAMA_NUM_PARALLEL", v, line("OLLAMA_NUM_PARALLEL"))
            f.lines["concurrency"] = line("OLLAMA_NUM_PARALLEL")
    if "OLLAMA_CONTEXT_LENGTH" in env:
        v = positive_int(env["OLLAMA_CONTEXT_LENGTH"], MAX_CTX)
        if v and f.ctx is None:
            f.ctx = v
            f.note("OLLAMA_CONTEXT_LENGTH", v, line("OLLAMA_CONTEXT_LENGTH"))
            f.lines["ctx"] = line("OLLAMA_CONTEXT_LENGTH")
    if "OLLAMA_KV_CACHE_TYPE" in env:
        kv = OLLAMA_KV.get(str(env["OLLAMA_KV_CACHE_TYPE"]).lower())
        if kv is None:
            f.fail(f"OLLAMA_KV_CACHE_TYPE '{str(env['OLLAMA_KV_CACHE_TYPE'])[:20]}' is not f16, q8_0 or q4_0")
        else:
            f.kv_dtype = kv
            f.note("OLLAMA_KV_CACHE_TYPE", kv, line("OLLAMA_KV_CACHE_TYPE"))
            f.lines["kv_dtype"] = line("OLLAMA_KV_CACHE_TYPE")
    if "OLLAMA_FLASH_ATTENTION" in env:
        f.note("OLLAMA_FLASH_ATTENTION", env["OLLAMA_FLASH_ATTENTION"], line("OLLAMA_FLASH_ATTENTION"))
    for k, what in (("OLLAMA_GPU_OVERHEAD", "extra VRAM reserved per GPU"),
                    ("OLLAMA_MAX_LOADED_MODELS", "several models loaded at once"),
                    ("OLLAMA_SCHED_SPREAD", "spreading one model over all GPUs")):
        if k in env:
            f.warnings.append(f"{k}={str(env[k])[:20]} (line {line(k)}) is not modelled: {what}")
