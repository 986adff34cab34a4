"""kernels/: cached decode matches full recompute, exact byte accounting, benches return sane numbers (CPU, tiny)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from planner.kernels import microbench as mb
from planner.kernels.decode_bench import BenchSuiteResult, prompt_length, run_decode, run_suite
from planner.kernels.llama import build_model, greedy_generate, reference_logits
from planner.kernels.shapes import (
    LLAMA_3_1_8B,
    TINY,
    kv_bytes_per_step,
    layers_for_budget,
    resident_bytes,
    weight_bytes_per_step,
)
from planner.kernels.timing import quantile, time_calls

MIB = 1024**2


@pytest.fixture(scope="module")
def tiny_model():
    return build_model(TINY, n_layers=2, max_seq=64, seed=1)


@pytest.mark.parametrize("batch", [1, 2])
def test_cached_decode_matches_full_recompute(tiny_model, batch):
    prompt = torch.randint(0, TINY.vocab, (batch, 9), generator=torch.Generator().manual_seed(batch))
    with torch.inference_mode():
        tokens, logits = greedy_generate(tiny_model, prompt, n_new=12)
        reference = reference_logits(tiny_model, tokens)
    assert tokens.shape == (batch, 21)
    torch.testing.assert_close(logits, reference[:, 8:20], rtol=1e-4, atol=1e-4)
    assert torch.equal(tokens[:, 9:], reference[:, 8:20].argmax(-1))  # greedy picks agree too


def test_kv_cache_appended_at_the_right_position(tiny_model):
    prompt = torch.randint(0, TINY.vocab, (2, 10), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        stepwise = tiny_model.new_cache(2)
        tiny_model.forward(prompt[:, :9], 0, stepwise)
        tiny_model.forward(prompt[:, 9:], 9, stepwise)  # one decode step writes position 9
        at_once = tiny_model.new_cache(2)
        tiny_model.forward(prompt, 0, at_once)
    for layer in range(tiny_model.n_layers):
        for a, b in ((stepwise.k[layer], at_once.k[layer]), (stepwise.v[layer], at_once.v[layer])):
            torch.testing.assert_close(a[:, :, :10], b[:, :, :10], rtol=1e-5, atol=1e-5)
            assert a[:, :, 9].abs().sum() > 0
            assert a[:, :, 10:].abs().sum() == 0  # nothing written past the last position


def test_weight_bytes_closed_form_and_model_numel(tiny_model):
    d = TINY  # hidden 64, heads 4, kv 2, head_dim 16, intermediate 160, vocab 128
    per_layer = 64 * (4 + 2 * 2) * 16 + 4 * 16 * 64 + 64 * 2 * 160 + 160 * 64 + 2 * 64
    assert per_layer == 8192 + 4096 + 20480 + 10240 + 128 == 43136
    expected = (2 * per_layer + 64 + 64 * 128) * 4  # two layers, final norm, LM head; fp32
    assert weight_bytes_per_step(d, 2, 4) == expected == 378_112
    numel = sum(p.numel() for p in tiny_model.parameters()) - d.vocab * d.hidden  # minus the embedding table
    assert numel * 4 == expected


def test_kv_bytes_closed_form():
    assert kv_bytes_per_step(TINY, n_layers=2, batch=3, context=50, elem_bytes=4) == 2 * 2 * 3 * 50 * 2 * 16 * 4
    # Llama-3.1-8B, bf16 KV: 131,072 bytes per token (docs/physics.md), 512 MiB at ctx 4096, batch 1
    assert kv_bytes_per_step(LLAMA_3_1_8B, 32, 1, 1, 2) == 131_072
    assert kv_bytes_per_step(LLAMA_3_1_8B, 32, 1, 4096, 2) == 512 * MIB


def test_decode_run_accounting_is_exact(tiny_model):
    run = run_decode(tiny_model, batch=2, context_tokens=24, warmup_steps=2, n_steps=4)
    assert run.prompt_tokens == prompt_length(24, 2, 4) == 24 - 2 - 2 - 1
    assert run.weight_bytes_per_step == 378_112
    assert run.kv_bytes_per_step == 2 * 2 * 2 * 24 * 2 * 16 * 4  # 2 · layers · batch · ctx · kv heads · hd · 4 B
    assert run.n_steps == 4 and run.seconds_per_step > 0
    assert run.bytes_per_s == pytest.approx((run.weight_bytes_per_step + run.kv_bytes_per_step) / run.seconds_per_step)
    with pytest.raises(ValueError, match="context_tokens"):
        prompt_length(3, 2, 4)


def test_layers_for_budget():
    elem = 4
    fixed = resident_bytes(TINY, 0, 1, 100, elem)
    per_layer = resident_bytes(TINY, 1, 1, 100, elem) - fixed
    assert layers_for_budget(TINY, fixed + per_layer, elem, 1, 100) == 1
    assert layers_for_budget(TINY, fixed + 2 * per_layer - 1, elem, 1, 100) == 1
    assert layers_for_budget(TINY, fixed + per_layer - 1, elem, 1, 100) == 0
    assert layers_for_budget(TINY, 10**12, elem, 1, 100) == TINY.n_layers  # capped at the model's depth


def test_timing_quantiles_and_calls():
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert quantile([0.0, 10.0], 0.2) == pytest.approx(2.0)
    calls = []
    t = time_calls(lambda: calls.append(1), "cpu", warmup=2, repeats=5)
    assert len(calls) == 7 and t.n == 5 and 0 <= t.p20_s <= t.median_s <= t.p80_s


def _positive_finite(x: float) -> bool:
    return math.isfinite(x) and x > 0


def test_microbenches_return_positive_finite_numbers():
    results = [
        mb.copy_bandwidth("cpu", 4 * MIB, repeats=3),
        mb.read_bandwidth("cpu", 4 * MIB, repeats=3),
        mb.gemv_bandwidth("cpu", 256, 512, total_bytes=4 * MIB, repeats=3),
        mb.attention_bandwidth("cpu", 2, 8, 2, 32, 256, repeats=3),
    ]
    for r in results:
        assert _positive_finite(r.bytes_per_s) and _positive_finite(r.seconds)
        assert json.loads(json.dumps(r.to_dict())) == r.to_dict()
    gemm = mb.gemm_throughput("cpu", 16, 128, 256, repeats=3)
    assert gemm.flops == 2 * 16 * 128 * 256 and _positive_finite(gemm.flops_per_s)
    assert results[2].n_matrices * 256 * 512 * 4 == results[2].weight_bytes >= 4 * MIB


def test_import_kernels_does_not_import_torch():
    code = "import sys, planner.kernels, planner.kernels.shapes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_run_suite_quick_round_trips():
    messages = []
    result = run_suite("cpu", quick=True, dims=TINY, memory_budget_bytes=64 * MIB, progress=messages.append)
    assert result.runs and messages and result.device == "cpu" and result.dtype == "float32"
    assert {(r.n_layers, r.batch, r.context_tokens) for r in result.runs} == {
        (n, b, c) for n in (1, 2) for b in (1, 2) for c in (128, 512)
    }
    assert all(_positive_finite(r.bytes_per_s) for r in result.runs)
    data = json.loads(json.dumps(result.to_dict()))
    assert BenchSuiteResult.from_dict(data) == result
    best = result.weight_streaming_run()
    assert (best.n_layers, best.batch, best.context_tokens) == (2, 1, 128)
    assert _positive_finite(result.fraction_of_copy_bandwidth(best))
