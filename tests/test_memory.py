"""The memory physics, pinned to exact values where the arithmetic is exact.

Reference: docs/physics.md §1 (weights), §2 (KV cache), §3 (buffers). Tolerances are used only
against published file sizes and logged llama.cpp buffer sizes, which are quoted there with their sources.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.spec import catalog
from planner.physics.engines import (
    llama_cpp_cells,
    llama_cpp_compute_buffer_bytes,
    vllm_cells,
)
from planner.estimate import ResolvedModel, deployment, estimate
from planner.physics.kvcache import KV_DTYPES, kv_cache_bytes, kv_cache_bytes_per_token, n_global_layers
from planner.physics.memory import memory_breakdown
from planner.physics.quant import (
    F16,
    IQ4_XS,
    MXFP4,
    Q2_K,
    Q3_K,
    Q4_0,
    Q4_K,
    Q5_0,
    Q5_K,
    Q6_K,
    Q8_0,
    QUANTS,
    Engine,
    gguf_tensor_type,
    tensor_bytes,
)
from planner.spec.tensors import Role, Tensor, parameter_count, tensor_inventory
from planner.physics.weights import weight_layout
from planner.physics.workload import Workload

MIB = 2**20
GIB = 2**30
F16_KV = KV_DTYPES["f16"]


def model(model_id: str):
    return catalog.load_model(model_id)


def run_estimate(model_id: str, gpu: str, engine: Engine, quant: str, kv: str = "f16", ctx: int = 4096,
                 batch: int = 1):
    d = deployment(ResolvedModel(spec=model(model_id)), catalog.load_hardware(gpu), engine, QUANTS[quant], kv,
                   Workload(ctx=ctx, batch=batch))
    return estimate(d)


# --------------------------------------------------------------------------------------------
# KV cache (docs/physics.md §2)
# --------------------------------------------------------------------------------------------


def test_kv_cache_of_llama31_8b_is_131072_bytes_per_token_in_f16():
    # 2 (K and V) × 32 layers × 8 kv heads × 128 head_dim × 2 bytes
    assert kv_cache_bytes_per_token(model("llama3.1-8b"), F16_KV) == 2 * 32 * 8 * 128 * 2 == 131_072


def test_kv_cache_counts_both_k_and_v():
    # Past slip: forgetting the ×2 for V gives 65,536.
    spec = model("llama3.1-8b")
    per_token = kv_cache_bytes_per_token(spec, F16_KV)
    a = spec.architecture
    assert per_token == 2 * a.n_layers * a.n_kv_heads * a.head_dim * 2


def test_kv_cache_of_llama31_8b_at_4k_is_512_mib():
    assert kv_cache_bytes(model("llama3.1-8b"), F16_KV, 4096, 4096) == 512 * MIB == 536_870_912


@pytest.mark.parametrize("dtype, mib", [("f16", 512), ("bf16", 512), ("f32", 1024), ("q8_0", 272), ("q4_0", 144)])
def test_kv_cache_of_llama31_8b_at_4k_per_dtype(dtype, mib):
    # q8_0 stores 34 bytes per 32 elements, q4_0 18 bytes per 32 (scales included; docs/physics.md §2.4).
    assert kv_cache_bytes(model("llama3.1-8b"), KV_DTYPES[dtype], 4096, 4096) == mib * MIB


def test_kv_cache_ignores_query_heads_under_gqa():
    # Llama-2-7B (MHA, 32 kv heads) needs 4× Llama-3.1-8B (8 kv heads): 512 KiB per token.
    assert kv_cache_bytes_per_token(model("llama2-7b"), F16_KV) == 512 * 1024


@pytest.mark.parametrize("dtype", ["f16", "bf16"])
def test_mla_kv_cache_of_deepseek_v3_is_one_576_wide_latent_per_layer(dtype):
    # 61 layers × (kv_lora_rank 512 + rope 64) × 2 bytes, no separate V (docs/physics.md §2.2).
    assert kv_cache_bytes_per_token(model("deepseek-v3"), KV_DTYPES[dtype]) == 61 * 576 * 2 == 70_272


def test_quantized_kv_rows_must_hold_whole_blocks(make_model):
    from planner.errors import InputError

    spec = make_model(architecture={"n_kv_heads": 1, "head_dim": 16, "n_heads": 4})  # rows of 16 elements
    with pytest.raises(InputError, match=r"q8_0 needs rows that are a multiple of 32 elements, this model's are 16"):
        kv_cache_bytes_per_token(spec, KV_DTYPES["q8_0"])


# Sliding windows (docs/physics.md §2.3) ------------------------------------------------------------


def test_gemma3_27b_llama_cpp_swa_layers_hold_1536_cells():
    # 5 local : 1 global over 62 layers → 10 global; n_swa 1024 + n_ubatch 512, padded to 256 → 1536.
    spec = model("gemma3-27b")
    assert n_global_layers(spec) == 10
    assert llama_cpp_cells(spec, 32768, 1) == (32768, 1536)


def test_gemma3_27b_kv_cache_under_llama_cpp_at_32k_f16():
    spec = model("gemma3-27b")
    a = spec.architecture
    per_layer_token = 2 * a.n_kv_heads * a.head_dim * 2  # K and V × 16 heads × 128 × 2 bytes = 8192
    assert per_layer_token == 8192
    expected = (10 * 32768 + 52 * 1536) * per_layer_token
    full, window = llama_cpp_cells(spec, 32768, 1)
    assert kv_cache_bytes(spec, F16_KV, full, window) == expected == 3_338_665_984
    mem = run_estimate("gemma3-27b", "rtx4090", Engine.llama_cpp, "q4_k_m", ctx=32768).memory
    assert mem.kv_cache_bytes == expected


def test_llama_cpp_swa_cells_are_capped_by_the_padded_context():
    # At ctx 1000 the padded context (1024) is below n_swa + n_ubatch: SWA layers get 1024 cells too.
    assert llama_cpp_cells(model("gemma3-27b"), 1000, 1) == (1024, 1024)


def test_llama_cpp_pads_context_to_256_cells_per_sequence():
    spec = model("llama3.1-8b")
    assert llama_cpp_cells(spec, 4000, 1) == (4096, 4096)
    assert llama_cpp_cells(spec, 4097, 1) == (4352, 4352)
    assert llama_cpp_cells(spec, 4096, 4) == (16384, 16384)  # four streams of 4096 cells


def test_vllm_cells_for_gemma3_sliding_layers_hold_window_plus_batched_tokens():
    # SlidingWindowSpec: cdiv(min(1024 − 1 + 2048, 32768), 16) + 1 = 193 blocks of 16.
    assert vllm_cells(model("gemma3-27b"), 32768, 2048) == (32768, 193 * 16)


def test_vllm_cells_round_up_to_16_token_blocks():
    assert vllm_cells(model("llama3.1-8b"), 4097, 8192) == (4112, 4112)
    # A short sequence never holds more window cells than full cells.
    assert vllm_cells(model("gemma3-27b"), 100, 2048) == (112, 112)


def test_mistral_7b_v01_gets_a_full_cache_under_llama_cpp():
    # llama.cpp loads Mistral-7B-v0.1 as LLM_ARCH_LLAMA, which reads no sliding window.
    spec = model("mistral-7b-v0.1")
    assert llama_cpp_cells(spec, 32768, 1) == (32768, 32768)
    mem = run_estimate("mistral-7b-v0.1", "h100-sxm", Engine.llama_cpp, "q8_0", ctx=32768).memory
    assert mem.kv_cache_bytes == 32 * 32768 * 4096 == 4 * GIB


def test_mistral_7b_v01_gets_a_4096_token_window_under_torch():
    mem = run_estimate("mistral-7b-v0.1", "h100-sxm", Engine.torch, "bf16", ctx=32768).memory
    assert mem.kv_cache_bytes == 32 * 4096 * 4096 == 512 * MIB


def test_llama_cpp_kv_for_batch_is_one_stream_per_sequence():
    mem = run_estimate("llama3.1-8b", "rtx4090", Engine.llama_cpp, "q4_k_m", ctx=4096, batch=4).memory
    assert mem.kv_cache_bytes == 4 * 512 * MIB


# --------------------------------------------------------------------------------------------
# Weights (docs/physics.md §1)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "storage, bpw",
    [(Q8_0, 8.5), (Q6_K, 6.5625), (Q5_K, 5.5), (Q5_0, 5.5), (Q4_K, 4.5), (Q4_0, 4.5), (IQ4_XS, 4.25),
     (MXFP4, 4.25), (Q3_K, 3.4375), (Q2_K, 2.625), (F16, 16.0)],
    ids=lambda x: x.name if hasattr(x, "name") else str(x),
)
def test_gguf_block_types_have_ggml_bits_per_weight(storage, bpw):
    assert storage.bits_per_weight == bpw


# llama.cpp tools/quantize/README.md sizes, recomputed to the byte in docs/physics.md §1.2. Our count lacks the
# 64-element F32 rope_freqs tensor (256 bytes), which planner does not model.
LLAMA31_8B_GGUF_BYTES = {
    "q2_k": 3_171_295_488,
    "q3_k_m": 4_011_081_984,
    "q4_0": 4_653_375_744,
    "iq4_xs": 4_476_526_848,
    "q4_k_m": 4_912_898_304,
    "q5_k_m": 5_725_151_488,
    "q6_k": 6_588_170_496,
    "q8_0": 8_532_934_912,
    "f16": 16_061_055_232,
}


@pytest.mark.parametrize("quant, real_bytes", LLAMA31_8B_GGUF_BYTES.items(), ids=list(LLAMA31_8B_GGUF_BYTES))
def test_gguf_size_of_llama31_8b_matches_llama_cpp_within_1_kib(quant, real_bytes):
    file_bytes = weight_layout(model("llama3.1-8b"), QUANTS[quant], Engine.llama_cpp).file_bytes
    assert abs(file_bytes - real_bytes) <= 1024
    assert abs(file_bytes - real_bytes) <= 0.01 * real_bytes


def test_q4_k_m_of_llama31_8b_mixes_q4_k_and_q6_k_as_llama_cpp_does():
    # docs/physics.md §1.2: 6,498.0 M params in Q4_K + 1,532.0 M in Q6_K (attn_v/ffn_down on half the layers, output).
    spec = model("llama3.1-8b")
    by_type: dict[str, int] = {}
    for t in tensor_inventory(spec):
        name = gguf_tensor_type(spec, t, "q4_k_m").name
        by_type[name] = by_type.get(name, 0) + t.n_elements
    assert round(by_type["Q4_K"] / 1e6, 1) == 6498.0
    assert round(by_type["Q6_K"] / 1e6, 1) == 1532.0
    assert set(by_type) == {"Q4_K", "Q6_K", "F32"}


def test_q4_k_m_is_not_params_times_4_5_bits():
    # Past slip: params × nominal bits / 8 under-predicts Q4_K_M by ~8.8 %.
    spec = model("llama3.1-8b")
    nominal = parameter_count(spec) * 45 // 80
    assert weight_layout(spec, QUANTS["q4_k_m"], Engine.llama_cpp).file_bytes > 1.08 * nominal


def test_awq_int4_llama31_8b_is_about_5_73_gb():
    # hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4 shards: 4.68 GB + 1.05 GB (docs/physics.md §1.3).
    file_bytes = weight_layout(model("llama3.1-8b"), QUANTS["awq-int4"], Engine.vllm).file_bytes
    assert abs(file_bytes - 5.73e9) <= 0.01 * 5.73e9


def test_four_bit_weights_are_not_zero_bytes():
    # Past slip: 4 // 8 == 0.
    t = Tensor("blk.0.attn_q", 0, 4096, 4096, Role.linear)
    spec = model("llama3.1-8b")
    assert tensor_bytes(spec, t, QUANTS["q4_0"], Engine.llama_cpp) == 4096 * 4096 * 18 // 32
    assert tensor_bytes(spec, t, QUANTS["awq-int4"], Engine.vllm) > 4096 * 4096 // 2


def test_tied_embedding_is_stored_once_in_the_file():
    layout = weight_layout(model("llama3.2-1b"), QUANTS["f16"], Engine.llama_cpp)
    assert layout.tied_embeddings
    assert layout.file_bytes == layout.token_embd_bytes + sum(layout.layer_bytes) + layout.other_bytes


def test_parameter_count_of_tiny_spec_counts_embeddings_and_head(make_model, tiny_model_params):
    # Past slip: dropping the embeddings. token_embd and output are 256 × 64 each here.
    assert parameter_count(make_model()) == tiny_model_params
    tied = make_model(architecture={"tie_word_embeddings": True})
    assert parameter_count(tied) == tiny_model_params - 256 * 64


@pytest.mark.parametrize("tied", [False, True])
def test_parameter_count_equals_numel_of_a_tiny_torch_llama(make_model, tied):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    spec = make_model(architecture={"tie_word_embeddings": tied})
    a = spec.architecture
    d, q, kv, f = a.hidden_size, a.n_heads * a.head_dim, a.n_kv_heads * a.head_dim, a.intermediate_size

    def linear(n_in, n_out):
        return nn.Linear(n_in, n_out, bias=False, device="meta")

    class Layer(nn.Module):  # the modules of transformers' LlamaDecoderLayer
        def __init__(self):
            super().__init__()
            self.input_layernorm = nn.Parameter(torch.empty(d, device="meta"))
            self.post_attention_layernorm = nn.Parameter(torch.empty(d, device="meta"))
            self.q_proj, self.k_proj, self.v_proj, self.o_proj = linear(d, q), linear(d, kv), linear(d, kv), linear(q, d)
            self.gate_proj, self.up_proj, self.down_proj = linear(d, f), linear(d, f), linear(f, d)

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(a.vocab_size, d, device="meta")
            self.layers = nn.ModuleList(Layer() for _ in range(a.n_layers))
            self.norm = nn.Parameter(torch.empty(d, device="meta"))
            self.lm_head = linear(d, a.vocab_size)
            if tied:
                self.lm_head.weight = self.embed_tokens.weight

    numel = sum(p.numel() for p in Llama().parameters())  # shared parameters are yielded once
    assert parameter_count(spec) == numel


# --------------------------------------------------------------------------------------------
# llama.cpp buffers against its logs (docs/physics.md §1.2, §3.2)
# --------------------------------------------------------------------------------------------


def test_llama3_8b_q4_k_m_at_8k_matches_llama_cpp_logged_buffers():
    mem = run_estimate("llama3-8b", "rtx4090", Engine.llama_cpp, "q4_k_m", ctx=8192).memory
    # "CUDA0 buffer size = 4403.49 MiB" = 4,912,898,304 − 295,501,824 (token_embd stays on the host).
    assert abs(mem.device_weights_bytes / MIB - 4403.49) < 0.01
    assert abs(mem.device_weights_bytes - (4_912_898_304 - 295_501_824)) <= 256  # the unmodelled rope_freqs
    # token_embd (Q4_K) in host memory: 128,256 × 4096 × 144 / 256 bytes.
    assert mem.host_weights_bytes == 295_501_824
    assert round(mem.host_weights_bytes / MIB, 2) == 281.81
    assert mem.kv_cache_bytes == 1024 * MIB


def test_llama3_8b_q4_0_device_weights_match_ollama_logged_4156_mib():
    mem = run_estimate("llama3-8b", "rtx4090", Engine.ollama, "q4_0", ctx=2048).memory
    assert abs(mem.device_weights_bytes / MIB - 4156.00) < 0.01


@pytest.mark.parametrize("ctx", [512, 2048, 4096])
def test_llama_cpp_compute_buffer_of_llama3_8b_is_258_5_mib(ctx):
    # logits 128,256 × 512 × 4 B + hidden state 4096 × 512 × 4 B (flash attention on).
    assert llama_cpp_compute_buffer_bytes(model("llama3-8b"), ctx, 1) == int(258.5 * MIB) == 271_056_896


def test_llama_cpp_compute_buffer_shrinks_with_a_context_below_the_ubatch():
    assert llama_cpp_compute_buffer_bytes(model("llama3-8b"), 256, 1) == (128_256 + 4096) * 256 * 4


def test_llama_cpp_estimate_carries_the_compute_buffer_as_overhead():
    mem = run_estimate("llama3.1-8b", "rtx4090", Engine.llama_cpp, "q4_k_m").memory
    assert mem.overhead["compute_buffer"] == 271_056_896


# --------------------------------------------------------------------------------------------
# Totals, headroom and fit
# --------------------------------------------------------------------------------------------

MODELS = ["llama3.1-8b", "gemma3-27b", "mistral-7b-v0.1", "mixtral-8x7b", "deepseek-v3", "phi3-mini"]
GPUS = ["rtx3060-12gb", "rtx4090", "h100-sxm", "m3-max", "ddr5-6000-2ch"]
ENGINES = [Engine.llama_cpp, Engine.vllm, Engine.torch]
DEFAULT_QUANT = {Engine.llama_cpp: "q4_k_m", Engine.ollama: "q4_k_m", Engine.vllm: "bf16", Engine.torch: "bf16"}
# Weight formats each engine runs, in order of storage bits.
QUANT_ORDER = {
    Engine.llama_cpp: ["q2_k", "q3_k_m", "q4_0", "q4_k_m", "q5_k_m", "q6_k", "q8_0", "f16"],
    Engine.vllm: ["awq-int4", "gptq-int4", "nf4", "fp8", "int8", "bf16"],
    Engine.torch: ["nf4", "int8", "bf16", "f32"],
}
KV_ORDER = {
    Engine.llama_cpp: ["q4_0", "q8_0", "f16", "f32"],
    Engine.vllm: ["fp8", "f16"],
    Engine.torch: ["f16", "f32"],
}

PROPERTY = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def _layout(model_id: str, quant: str, engine: Engine):
    return weight_layout(model(model_id), QUANTS[quant], engine)


def total_bytes(model_id, engine, quant=None, kv="f16", ctx=4096, batch=1, gpu="h100-sxm") -> int:
    quant = quant or DEFAULT_QUANT[engine]
    d = deployment(ResolvedModel(spec=model(model_id), layout=_layout(model_id, quant, engine), quant=quant),
                   catalog.load_hardware(gpu), engine, QUANTS[quant], kv, Workload(ctx=ctx, batch=batch))
    return memory_breakdown(d).total_bytes


@pytest.mark.parametrize("engine", ENGINES + [Engine.ollama], ids=lambda e: e.value)
def test_total_is_device_weights_plus_kv_plus_overhead(engine):
    mem = run_estimate("llama3.1-8b", "rtx4090", engine, DEFAULT_QUANT[engine]).memory
    assert mem.total_bytes == mem.device_weights_bytes + mem.kv_cache_bytes + mem.overhead_bytes
    assert mem.overhead_bytes == sum(mem.overhead.values())
    assert mem.headroom_bytes == mem.device_bytes - mem.total_bytes


def test_llama_cpp_weights_split_between_device_and_host_add_up_to_the_file():
    mem = run_estimate("llama3.1-8b", "rtx4090", Engine.llama_cpp, "q4_k_m").memory
    assert mem.device_weights_bytes + mem.host_weights_bytes == mem.weights_bytes


@given(
    model_id=st.sampled_from(MODELS),
    gpu=st.sampled_from(GPUS),
    engine=st.sampled_from(ENGINES),
    ctx=st.integers(1, 131_072),
    batch=st.integers(1, 16),
)
@PROPERTY
def test_fits_iff_total_within_device_and_headroom_is_the_difference(model_id, gpu, engine, ctx, batch):
    mem = run_estimate(model_id, gpu, engine, DEFAULT_QUANT[engine], ctx=ctx, batch=batch).memory
    assert mem.total_bytes == mem.device_weights_bytes + mem.kv_cache_bytes + mem.overhead_bytes
    assert mem.headroom_bytes == mem.device_bytes - mem.total_bytes
    assert mem.fits == (mem.total_bytes <= mem.device_bytes)


def test_a_405b_model_does_not_fit_a_12_gb_card():
    mem = run_estimate("llama3.1-405b", "rtx3060-12gb", Engine.llama_cpp, "q2_k").memory
    assert not mem.fits and mem.headroom_bytes < 0


def test_unified_memory_device_lends_its_gpu_share():
    mem = run_estimate("llama3.1-8b", "m3-max", Engine.llama_cpp, "q4_k_m").memory
    assert mem.device_bytes == int(128 * GIB * 0.75)


def test_vllm_device_budget_is_gpu_memory_utilization_of_total():
    mem = run_estimate("llama3.1-8b", "rtx4090", Engine.vllm, "bf16").memory
    assert mem.device_bytes == int(24564 * MIB * 0.9)


# Monotonicity (hypothesis) ---------------------------------------------------------------------


@given(
    model_id=st.sampled_from(MODELS),
    engine=st.sampled_from(ENGINES),
    ctxs=st.lists(st.integers(1, 262_144), min_size=2, max_size=2),
    batch=st.integers(1, 8),
)
@PROPERTY
def test_memory_total_never_decreases_as_context_grows(model_id, engine, ctxs, batch):
    lo, hi = sorted(ctxs)
    assert total_bytes(model_id, engine, ctx=lo, batch=batch) <= total_bytes(model_id, engine, ctx=hi, batch=batch)


@given(
    model_id=st.sampled_from(MODELS),
    engine=st.sampled_from(ENGINES),
    ctx=st.integers(1, 65_536),
    batches=st.lists(st.integers(1, 64), min_size=2, max_size=2),
)
@PROPERTY
def test_memory_total_never_decreases_as_batch_grows(model_id, engine, ctx, batches):
    lo, hi = sorted(batches)
    assert total_bytes(model_id, engine, ctx=ctx, batch=lo) <= total_bytes(model_id, engine, ctx=ctx, batch=hi)


@given(
    model_id=st.sampled_from(MODELS),
    engine=st.sampled_from(ENGINES),
    ctx=st.integers(1, 65_536),
    batch=st.integers(1, 8),
)
@PROPERTY
def test_memory_total_never_decreases_as_weight_bits_grow(model_id, engine, ctx, batch):
    totals = [total_bytes(model_id, engine, quant=q, ctx=ctx, batch=batch) for q in QUANT_ORDER[engine]]
    assert totals == sorted(totals), dict(zip(QUANT_ORDER[engine], totals))


@given(
    model_id=st.sampled_from(MODELS),
    engine=st.sampled_from(ENGINES),
    ctx=st.integers(1, 65_536),
    batch=st.integers(1, 8),
)
@PROPERTY
def test_memory_total_never_decreases_as_kv_bits_grow(model_id, engine, ctx, batch):
    totals = [total_bytes(model_id, engine, kv=kv, ctx=ctx, batch=batch) for kv in KV_ORDER[engine]]
    assert totals == sorted(totals), dict(zip(KV_ORDER[engine], totals))


@pytest.mark.parametrize("model_id", MODELS)
def test_gguf_file_size_grows_with_the_quant_order(model_id):
    sizes = [_layout(model_id, q, Engine.llama_cpp).file_bytes for q in QUANT_ORDER[Engine.llama_cpp]]
    assert sizes == sorted(sizes)
