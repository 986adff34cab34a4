"""Ready-to-paste launch settings for one planned configuration: llama.cpp, Ollama and vLLM.

An engine gets ``None`` when it cannot run the configuration: the weight format or KV dtype is not
one it loads (GGUF k-quants for vLLM, AWQ for llama.cpp), it would need host offload it does not do,
its tensor-parallel size does not divide the heads, or, for an engine other than the planned one, the
same settings do not fit in its memory model.
"""

from __future__ import annotations

from planner.estimate import ENGINE_KV_DTYPES, Estimate
from planner.physics.quant import ENGINE_QUANTS, Engine

# vLLM --quantization names for planner's formats (vLLM docs, "Supported hardware for quantization").
VLLM_QUANTIZATION = {"fp8": "fp8", "awq-int4": "awq", "gptq-int4": "gptq", "nf4": "bitsandbytes",
                     "int8": "compressed-tensors", "mxfp4": "mxfp4"}
VLLM_DTYPE = {"bf16": "bfloat16", "f16": "float16"}
VLLM_KV = {"f16": "auto", "bf16": "auto", "fp8": "fp8"}


def gguf_name(model: str, model_id: str, quant: str) -> str:
    return model if model.endswith(".gguf") else f"{model_id}-{quant.upper()}.gguf"


def hf_repo(spec) -> str:
    """The Hugging Face repo id among the model's aliases, else its catalog id."""
    return next((a for a in spec.aliases if "/" in a), spec.id)


def _runs(s, engine: Engine, e: Estimate) -> int | None:
    """The context ``engine`` can run these settings with: the planned one, or for another engine the
    largest multiple of 256 (down to the required context) that fits its memory model; None if none."""
    quants = ENGINE_QUANTS[engine] + (("f16",) if engine is Engine.vllm else ())
    if e.quant not in quants or e.kv_dtype not in ENGINE_KV_DTYPES[engine]:
        return None
    host_layers = e.offload.host_layers if e.offload else 0
    if engine is Engine.vllm and (host_layers or s.resolved.spec.architecture.n_heads % e.num_gpus):
        return None
    if engine.value == e.engine:
        return e.ctx
    from planner.errors import InputError
    from planner.estimate import deployment
    from planner.physics.memory import memory_breakdown
    from planner.physics.quant import get_quant
    from planner.physics.workload import Workload

    def workload(ctx: int) -> Workload:
        return Workload(ctx=ctx, batch=e.batch, prompt_tokens=e.prompt_tokens, gen_tokens=e.gen_tokens)

    quant = get_quant("bf16" if e.quant == "f16" and engine is Engine.vllm else e.quant)
    try:
        d = deployment(s.resolved, s.hw, engine, quant, e.kv_dtype, workload(e.ctx), e.num_gpus, host=s.host,
                       host_layers=host_layers)
    except InputError:
        return None

    def ok(ctx: int) -> bool:
        m = memory_breakdown(d.model_copy(update={"workload": workload(ctx)}))
        return m.fits and m.headroom_bytes >= s.targets.headroom_fraction * m.device_bytes

    if ok(e.ctx):
        return e.ctx
    lo, hi = -(-max(e.prompt_tokens + e.gen_tokens, s.targets.min_ctx or 1) // 256), e.ctx // 256
    if lo > hi or not ok(lo * 256):
        return None
    while lo < hi:  # memory grows with the context: bisect on multiples of 256
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if ok(mid * 256) else (lo, mid - 1)
    return lo * 256


def _gguf_ctx_and_ngl(s, engine: Engine, e: Estimate) -> tuple[int, int] | None:
    """Context per slot the engine can run, and ``-ngl`` (GPU layers + the output layer), or None."""
    ctx = _runs(s, engine, e)
    if ctx is None:
        return None
    return ctx, e.offload.ngl if e.offload else s.resolved.spec.architecture.n_layers + 1


def llama_cpp(s, e: Estimate) -> str | None:
    found = _gguf_ctx_and_ngl(s, Engine.llama_cpp, e)
    if found is None:
        return None
    ctx, ngl = found
    np_ = e.batch
    return (f"llama-server -m {gguf_name(s.model, e.model, e.quant)} -c {ctx * np_} -ngl {ngl} "
            f"-ctk {e.kv_dtype} -ctv {e.kv_dtype} -fa on -np {np_} -n {e.gen_tokens}")


def ollama(s, e: Estimate) -> str | None:
    found = _gguf_ctx_and_ngl(s, Engine.ollama, e)
    if found is None:
        return None
    ctx, ngl = found
    return "\n".join([
        f"OLLAMA_KV_CACHE_TYPE={e.kv_dtype} OLLAMA_FLASH_ATTENTION=1 OLLAMA_NUM_PARALLEL={e.batch} ollama serve",
        "# Modelfile",
        f"FROM ./{gguf_name(s.model, e.model, e.quant)}",
        f"PARAMETER num_ctx {ctx}",
        f"PARAMETER num_predict {e.gen_tokens}",
        f"PARAMETER num_gpu {ngl}",
    ])


def vllm(s, e: Estimate) -> str | None:
    ctx = _runs(s, Engine.vllm, e)
    if ctx is None:
        return None
    from planner.physics.engines import VLLM_GPU_MEMORY_UTILIZATION

    parts = [f"vllm serve {hf_repo(s.resolved.spec)}", f"--max-model-len {ctx}", f"--max-num-seqs {e.batch}",
             f"--gpu-memory-utilization {VLLM_GPU_MEMORY_UTILIZATION}", f"--kv-cache-dtype {VLLM_KV[e.kv_dtype]}"]
    if e.quant in VLLM_QUANTIZATION:
        parts.append(f"--quantization {VLLM_QUANTIZATION[e.quant]}")
    else:
        parts.append(f"--dtype {VLLM_DTYPE[e.quant]}")
    parts.append(f"--tensor-parallel-size {e.num_gpus}")
    return " ".join(parts)


def commands(s, e: Estimate) -> dict[str, str | None]:
    return {"llama.cpp": llama_cpp(s, e), "ollama": ollama(s, e), "vllm": vllm(s, e)}
