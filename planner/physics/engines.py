"""How each inference engine lays out memory: cache cells, buffers and fixed per-process costs.

Pure functions; every constant names the engine source or measurement it comes from
(docs/physics.md §2.5-§3).
"""

from __future__ import annotations

from planner.physics.arith import minimum
from planner.physics.names import ENGINE_KV_DTYPES, Engine, get_engine  # noqa: F401 (re-exported)
from planner.spec.schema import Family, HardwareProfile, ModelSpec
from planner.units import GIB, MIB, ceil_div, pad_to_multiple

# llama.cpp -------------------------------------------------------------------------------------

LLAMA_CPP_CTX_PAD = 256  # llama_context: n_ctx = GGML_PAD(n_ctx, 256) (PR #17046)
LLAMA_CPP_N_UBATCH = 512  # default n_ubatch (common/common.h)
# Architectures llama.cpp builds with an interleaved-SWA cache (llama-kv-cache-iswa.cpp). Mistral-7B-v0.1
# loads as LLM_ARCH_LLAMA, which reads no window, so it gets a full cache (docs/physics.md §2.3).
LLAMA_CPP_SWA_FAMILIES = {Family.gemma2, Family.gemma3, Family.gpt_oss}
# Pipeline-parallel layer split keeps GGML_SCHED_MAX_COPIES = 4 compute buffers (ggml-backend.cpp).
LLAMA_CPP_PIPELINE_COPIES = 4

# Per-process runtime cost the engines do not report: the CUDA context. PyTorch measured 287 MB with
# CUDA_MODULE_LOADING=LAZY, the Linux default since CUDA 12.2 (pytorch/pytorch PR #86509), plus the
# cuBLAS workspace: 32 MiB on Hopper, 4 MiB otherwise (PyTorch PR #120925).
CUDA_CONTEXT_BYTES = 287_000_000
CUBLAS_WORKSPACE_BYTES = 32 * MIB
# Ollama reserves MinimumMemory() per GPU: 457 MiB non-Metal, 512 MiB Metal (ollama ml/device.go).
OLLAMA_RESERVE_BYTES = {"gpu": 457 * MIB, "metal": 512 * MIB}

# vLLM ------------------------------------------------------------------------------------------

VLLM_BLOCK_TOKENS = 16  # CacheConfig.DEFAULT_BLOCK_SIZE (vllm/config/cache.py)
VLLM_GPU_MEMORY_UTILIZATION = 0.9  # documented default since PR #2162; newest builds use 0.92
# "Estimated CUDA graph memory: 0.73 GiB total" for Llama-class models (vLLM start-up log, docs/physics.md §3.3)
VLLM_CUDA_GRAPH_BYTES = int(0.73 * GIB)
# Non-torch memory (NCCL, attention-backend buffers) grown after the start-up snapshot: ≈0.3 GiB on one
# GPU, 0.5-1 GiB with NCCL for tensor parallelism (vLLM gpu_worker docstring, docs/physics.md §3.1/§3.3).
VLLM_NON_TORCH_BYTES = int(0.3 * GIB)
VLLM_NCCL_BYTES = int(0.75 * GIB)


def backend(hw: HardwareProfile) -> str:
    """The compute backend engines use on this device family."""
    return {"cpu": "cpu", "apple": "metal", "amd": "rocm", "nvidia": "cuda"}[hw.family]


def runtime_context_bytes(hw: HardwareProfile, engine: Engine) -> int:
    """Fixed per-process, per-GPU memory outside the engine's own buffers."""
    b = backend(hw)
    if engine is Engine.ollama and b != "cpu":
        return OLLAMA_RESERVE_BYTES["metal" if b == "metal" else "gpu"]
    if b in ("cuda", "rocm"):  # ROCm: assumed like CUDA (no published measurement found)
        return CUDA_CONTEXT_BYTES + CUBLAS_WORKSPACE_BYTES
    return 0


def llama_cpp_cells(spec: ModelSpec, ctx: int, n_seq: int) -> tuple[int, int]:
    """Cache cells (summed over the sequences' streams) for full and sliding-window layers.

    llama_context: n_ctx = pad256(ctx × n_seq); non-unified streams get n_ctx_seq = pad256(n_ctx / n_seq)
    each. SWA layers (llama-kv-cache-iswa.cpp): pad256(min(n_ctx_seq, n_swa + n_ubatch)) per stream.
    """
    n_ctx = pad_to_multiple(ctx * n_seq, LLAMA_CPP_CTX_PAD)
    n_ctx_seq = pad_to_multiple(n_ctx // n_seq, LLAMA_CPP_CTX_PAD)
    full = n_ctx_seq * n_seq
    window = spec.architecture.sliding_window
    if window is None or spec.architecture.family not in LLAMA_CPP_SWA_FAMILIES:
        return full, full
    swa = pad_to_multiple(minimum(n_ctx_seq, window + LLAMA_CPP_N_UBATCH), LLAMA_CPP_CTX_PAD)
    return full, swa * n_seq


def llama_cpp_compute_buffer_bytes(spec: ModelSpec, ctx: int, n_seq: int) -> int:
    """Worst-case graph reserved by sched_reserve with Flash Attention on (docs/physics.md §3.2):
    logits 4 × n_vocab × n_out + hidden state 4 × n_embd × n_tokens, n_tokens = min(n_ctx, n_ubatch).
    Llama-3-8B: 128,256 × 512 × 4 + 4,096 × 512 × 4 = 258.5 MiB, as llama.cpp logs it."""
    n_tokens = minimum(ctx * n_seq, LLAMA_CPP_N_UBATCH)
    a = spec.architecture
    return 4 * a.vocab_size * n_tokens + 4 * a.hidden_size * n_tokens


def vllm_batch_defaults(hw: HardwareProfile) -> tuple[int, int]:
    """(max_num_batched_tokens, max_num_seqs) of `vllm serve` (EngineArgs.get_batch_defaults):
    8192 / 1024 on GPUs of ≥70 GiB other than A100, else 2048 / 256."""
    big = hw.memory_bytes >= 70 * GIB and "a100" not in hw.id
    return (8192, 1024) if big else (2048, 256)


def vllm_cells(spec: ModelSpec, ctx: int, max_batched_tokens: int) -> tuple[int, int]:
    """Cells one sequence of ``ctx`` tokens holds in vLLM's paged cache: ceil(ctx / 16) blocks of 16;
    sliding-window layers (SlidingWindowSpec) at most cdiv(min(window − 1 + max_num_batched_tokens,
    ctx), 16) + 1 blocks."""
    full_blocks = ceil_div(ctx, VLLM_BLOCK_TOKENS)
    window = spec.architecture.sliding_window
    if window is None:
        return full_blocks * VLLM_BLOCK_TOKENS, full_blocks * VLLM_BLOCK_TOKENS
    swa_blocks = minimum(full_blocks, ceil_div(minimum(window - 1 + max_batched_tokens, ctx), VLLM_BLOCK_TOKENS) + 1)
    return full_blocks * VLLM_BLOCK_TOKENS, swa_blocks * VLLM_BLOCK_TOKENS


def activation_peak_bytes(spec: ModelSpec, tokens: int, logits_rows: int, elem_bytes: int = 2) -> int:
    """Largest live activation set of one forward pass over ``tokens`` tokens: the FFN's gate and up
    outputs plus q, k, v and two hidden-size buffers (elem_bytes each), and fp32 logits for
    ``logits_rows`` rows. This is vLLM's profile_run peak (docs/physics.md §3.3: the sampler's
    rows × vocab × 4 B is 0.49 GiB for 1024 Llama-3 rows)."""
    a = spec.architecture
    ffn = a.intermediate_size
    if spec.moe is not None:
        ffn = max(ffn if spec.moe.first_dense_layers else 0,
                  spec.moe.expert_intermediate_size * (spec.moe.n_active_experts + spec.moe.n_shared_experts))
    per_token = 2 * ffn + (a.n_heads + 2 * a.n_kv_heads) * a.head_dim + 2 * a.hidden_size
    return tokens * per_token * elem_bytes + logits_rows * a.vocab_size * 4
