"""The roofline and what a decode step reads: both limits, MoE experts touched, weight bytes per step.

Issue 3, item 9: "both roofline limits (memory-bound at batch 1, compute-bound at large batch) ... MoE
expected experts". Exact where the arithmetic is exact; the MoE table is docs/physics.md §4.5's, rounded there
to one decimal (to three significant figures for the large values), so the tolerance is that rounding.
"""

from __future__ import annotations

import json

import pytest

from planner.spec import catalog

from planner.physics import latency
from planner.physics.efficiency import communication, default_efficiency
from planner.estimate import ResolvedModel, deployment, get_engine
from planner.physics.performance import host_efficiency
from planner.physics.quant import get_quant
from planner.physics.roofline import expected_distinct_experts, roofline_seconds
from planner.physics.workload import Workload


def make_deployment(model: str, gpu: str, quant: str, engine: str, workload: Workload | None = None, **kw):
    return deployment(ResolvedModel(spec=catalog.load_model(model)), catalog.load_hardware(gpu), get_engine(engine),
                      get_quant(quant), "f16", workload or Workload(), **kw)


def coefficients(d, batch: int | None = None):
    eff = default_efficiency(d.engine, d.hardware)
    return latency.decode_coefficients(d, eff, host_efficiency(d), communication(), batch), eff


# The pure function ------------------------------------------------------------------------------


def test_roofline_is_the_slower_of_compute_and_memory():
    # 2 TFLOP at 1 TFLOP/s = 2 s against 1 GB at 1 TB/s = 1 ms: compute wins.
    assert roofline_seconds(2e12, 1e9, 1e12, 1e12) == (2.0, "compute")
    # 1 GFLOP at 1 TFLOP/s = 1 ms against 3 GB at 1 GB/s = 3 s: memory wins.
    assert roofline_seconds(1e9, 3e9, 1e12, 1e9) == (3.0, "memory")


def test_roofline_with_nothing_to_compute_is_the_memory_time():
    assert roofline_seconds(0, 5e9, 1e12, 1e9) == (5.0, "memory")
    assert roofline_seconds(0, 0, 1e12, 1e9) == (0.0, "memory")


# Both limits on a real deployment ---------------------------------------------------------------


def test_batch_1_decode_is_memory_bound_and_costs_the_weight_read():
    """Llama-3.1-8B bf16 on an H100 SXM under vLLM, batch 1: the step is the overhead plus the time to
    stream the weights (plus KV); the GEMV FLOPs are far below the ridge (docs/physics.md §4.1)."""
    d = make_deployment("llama3.1-8b", "h100-sxm", "bf16", "vllm")
    k, eff = coefficients(d)
    assert k.bound == "memory"
    weight_s = k.weight_read_bytes / (d.hardware.bandwidth_bytes_per_s * eff.weight_eff(d.quant))
    fixed_overhead = eff.step_overhead_s + d.model.architecture.n_layers * eff.layer_overhead_s
    assert k.fixed_s == pytest.approx(fixed_overhead + weight_s, rel=1e-12)
    # The arithmetic intensity of the step is ~1 FLOP/byte, far under the H100's ridge (~295 FLOP/B).
    assert k.flops_per_step / k.weight_read_bytes < 2


def test_large_batch_decode_is_compute_bound_and_costs_the_gemm_flops():
    """The same at batch 1024: 1024 tokens per weight read is past the bf16 ridge (B ≈ 300, §4.1)."""
    d = make_deployment("llama3.1-8b", "h100-sxm", "bf16", "vllm", Workload(ctx=1024, batch=1024,
                                                                              prompt_tokens=128, gen_tokens=64))
    k, eff = coefficients(d)
    assert k.bound == "compute"
    flops_s = k.flops_per_step / (d.hardware.peak_flops("bf16") * eff.decode_compute_eff(d.quant))
    fixed_overhead = eff.step_overhead_s + d.model.architecture.n_layers * eff.layer_overhead_s
    assert k.fixed_s == pytest.approx(fixed_overhead + flops_s, rel=1e-12)
    # The weight bytes per step do not depend on the batch for a dense model.
    assert k.weight_read_bytes == coefficients(d, batch=1)[0].weight_read_bytes


def test_plan_reports_both_bounds(cli):
    base = ("plan", "-m", "llama3.1-8b", "-g", "h100-sxm", "-e", "vllm", "-q", "bf16", "--json")
    small = cli(*base)
    big = cli(*base, "--batch", "1024", "--ctx", "1024", "--prompt", "128", "--gen", "64")
    assert small.code in (0, 1) and big.code in (0, 1), small.err + big.err
    assert json.loads(small.out)["performance"]["bound"] == "memory"
    assert json.loads(big.out)["performance"]["bound"] == "compute"


# MoE ---------------------------------------------------------------------------------------------

# docs/physics.md §4.5: E_d(B) = E · (1 − (1 − k/E)^B), B = 1, 2, 4, 8, 16, 32, 64, 128.
BATCHES = [1, 2, 4, 8, 16, 32, 64, 128]
MOE_TABLE = {
    (8, 2): [2, 3.5, 5.5, 7.2, 7.9, 8, 8, 8],  # Mixtral
    (32, 4): [4, 7.5, 13.2, 21.0, 28.2, 31.6, 32, 32],  # gpt-oss-20b
    (128, 4): [4, 7.9, 15.3, 28.7, 51.0, 81.7, 111, 126],  # gpt-oss-120b
    (256, 8): [8, 15.8, 30.5, 57.4, 102, 163, 222, 252],  # DeepSeek-V3
}


@pytest.mark.parametrize(("experts", "k"), list(MOE_TABLE))
def test_expected_distinct_experts_matches_the_physics_table(experts, k):
    for batch, expected in zip(BATCHES, MOE_TABLE[(experts, k)]):
        # The table prints one decimal below 100 and whole numbers from 100 (and 8/32 for "all of them"):
        # the tolerance is that rounding.
        tol = 0.1 if expected < 100 and expected != experts else 0.5
        assert expected_distinct_experts(experts, k, batch) == pytest.approx(expected, abs=tol), (experts, k, batch)


def test_expected_distinct_experts_exact_points():
    assert expected_distinct_experts(8, 2, 1) == pytest.approx(2.0, rel=1e-12)  # batch 1 reads exactly k
    assert expected_distinct_experts(8, 2, 2) == pytest.approx(3.5, rel=1e-12)  # 8 · (1 − 0.75²)
    assert expected_distinct_experts(8, 8, 3) == 8.0  # k = E: every expert, always


def test_expected_distinct_experts_grows_with_batch_and_never_exceeds_all():
    values = [expected_distinct_experts(128, 4, b) for b in range(1, 600)]
    assert values == sorted(values)
    assert values[-1] <= 128


def test_mixtral_batch_1_reads_the_dense_weights_and_2_of_8_experts():
    d = make_deployment("mixtral-8x7b", "h100-sxm", "bf16", "vllm")
    layout = d.layout
    n = d.model.architecture.n_layers
    assert d.model.moe.n_experts == 8 and d.model.moe.n_active_experts == 2
    assert all(e > 0 for e in layout.layer_expert_bytes)
    dense = sum(layout.layer_bytes) - sum(layout.layer_expert_bytes)
    expected = dense + sum(layout.layer_expert_bytes) * 2 / 8
    assert latency.weight_read_bytes(d, range(n), 1) == pytest.approx(expected, rel=1e-12)
    # What the decode step reports adds the output layer (the embedding table is a gather, not a read).
    k, _ = coefficients(d)
    assert k.weight_read_bytes == int(expected + layout.output_bytes)


def test_mixtral_bytes_per_step_rise_with_batch_until_every_expert_is_read():
    d = make_deployment("mixtral-8x7b", "h100-sxm", "bf16", "vllm")
    n = d.model.architecture.n_layers
    reads = [latency.weight_read_bytes(d, range(n), b) for b in (1, 2, 4, 8, 64)]
    assert reads == sorted(reads)
    assert reads[-1] == pytest.approx(sum(d.layout.layer_bytes), rel=1e-6)  # 8·(1 − 0.75⁶⁴) ≈ 8
