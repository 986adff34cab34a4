"""Kernel-path compute roofs (docs/accuracy.md §1), pinned with hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.estimate import ResolvedModel, deployment, get_engine
from planner.physics import kernel_paths as kp
from planner.physics import latency
from planner.physics import prefill
from planner.physics.efficiency import Efficiency, communication
from planner.physics.quant import get_quant
from planner.physics.workload import Workload
from planner.spec import catalog

# Llama-3-8B: 2 x (6.98e9 linear + 0.525e9 lm_head) parameters = 15,009,316,864 FLOP per decoded token.
LLAMA3_8B_FLOPS_PER_TOKEN = 15_009_316_864


def eff(**kw) -> Efficiency:
    """Overheads zero so that a step is exactly its roof."""
    base = dict(weight_bandwidth={"float": 0.9, "kquant": 0.9}, kv_bandwidth=0.5, compute={"float": 0.5},
                step_overhead_s=0.0, prefill_overhead_s=0.0, source="test")
    return Efficiency(**{**base, **kw})


def dep(gpu: str, quant: str = "f16", engine: str = "llama.cpp", batch: int = 1, prompt: int = 0):
    wl = Workload(ctx=max(1, prompt + 1), batch=batch, prompt_tokens=prompt, gen_tokens=1)
    return deployment(ResolvedModel(spec=catalog.load_model("llama3-8b")), catalog.load_hardware(gpu),
                      get_engine(engine), get_quant(quant), "f16", wl)


def test_elementwise_max_and_the_roofline_are_the_same_for_floats_and_arrays():
    from planner.physics.arith import maximum
    from planner.physics.roofline import roofline_time_s

    assert maximum(2.0, 3.0) == 3.0 and maximum(-1.0, -4.0) == -1.0
    a, b = np.array([1.0, 5.0, 2.0]), np.array([3.0, 4.0, 2.0])
    assert maximum(a, b).tolist() == [3.0, 5.0, 2.0]
    flops, rate = np.array([1e12, 1e9]), np.array([1e12, 1e12])
    vec = roofline_time_s(flops, np.array([1e9, 1e9]), rate, 1e12)
    assert vec.tolist() == [roofline_time_s(1e12, 1e9, 1e12, 1e12), roofline_time_s(1e9, 1e9, 1e12, 1e12)]


def test_a100_core_cycles_are_sms_times_boost_clock():
    a100 = catalog.load_hardware("a100-80gb-pcie")
    assert a100.core_cycles_per_s == pytest.approx(108 * 1.41e9)
    assert kp.core_cycles_per_s(108, 1.41e9) == pytest.approx(1.5228e11)


def test_a100_f16_decode_step_is_bound_by_the_cuda_core_matvec_rate():
    # 15.009e9 FLOP / (108 SMs x 1.41 GHz x 6 FLOP per SM-cycle) = 16.43 ms, while reading 16.06 GB at
    # 0.9 x 1,935 GB/s takes 9.2 ms: the CUDA-core roof binds.
    d = dep("a100-80gb-pcie")
    e = eff(matvec_flops_per_core_cycle={"float": 6.0, "kquant": 19.0})
    k = latency.decode_coefficients(d, e, e, communication())
    expected = LLAMA3_8B_FLOPS_PER_TOKEN / (108 * 1.41e9 * 6.0)
    assert expected == pytest.approx(0.016426, rel=1e-4)
    assert k.fixed_s == pytest.approx(expected, rel=1e-12)
    assert (k.bound, k.bound_path) == ("compute", kp.CUDA_CORE_MATVEC)
    assert k.weight_read_bytes / (0.9 * 1935e9) < expected


def test_rtx4090_f16_decode_stays_memory_bound_on_the_same_kernel():
    # 128 SMs x 2.52 GHz x 6 = 1.94e12 FLOP/s -> 7.7 ms < 16.06 GB / (0.9 x 1,008 GB/s) = 17.7 ms.
    d = dep("rtx4090")
    e = eff(matvec_flops_per_core_cycle={"float": 6.0, "kquant": 19.0})
    k = latency.decode_coefficients(d, e, e, communication())
    assert (k.bound, k.bound_path) == ("memory", kp.MEMORY)
    assert k.fixed_s == pytest.approx(k.weight_read_bytes / (0.9 * 1008e9), rel=1e-12)


def test_the_matvec_roof_applies_to_llama_cpp_small_batches_only():
    e = eff(matvec_flops_per_core_cycle={"float": 6.0, "kquant": 19.0})
    assert kp.kernel_path_rates(dep("a100-80gb-pcie", batch=8), e, 8)[0] == kp.CUDA_CORE_MATVEC
    assert kp.kernel_path_rates(dep("a100-80gb-pcie", batch=9), e, 9)[0] == kp.DATASHEET_PEAK
    assert kp.kernel_path_rates(dep("a100-80gb-pcie", "bf16", "vllm"), e, 1)[0] == kp.DATASHEET_PEAK
    assert kp.kernel_path_rates(dep("m1-max"), e, 1)[0] == kp.METAL_MATVEC


def test_m1_max_metal_rate_uses_gpu_cores_from_the_fp32_figure():
    # 10.4 TFLOP/s FP32 / (2 x 128 lanes) = 4.0625e10 core-cycles/s; x 8 FLOP per core-cycle.
    e = eff(matvec_flops_per_core_cycle={"float": 8.0})
    path, rate, _, _ = kp.kernel_path_rates(dep("m1-max"), e, 1)
    assert catalog.load_hardware("m1-max").gpu_cores.count == 32
    assert (path, rate) == (kp.METAL_MATVEC, pytest.approx(10.4e12 / 256 * 8.0))


def test_prefill_tensor_rate_caps_hopper_at_the_mma_sync_rate():
    # H100 PCIe: 114 SMs x 1.755 GHz x min(4,096, 2,048) x 0.4; RTX 4090: 128 x 2.52 GHz x 1,024 x 0.4.
    e = eff(gemm_tensor_share={"float": 0.4, "kquant": 0.3})
    _, _, path, rate = kp.kernel_path_rates(dep("h100-pcie", prompt=512), e, 1)
    assert (path, rate) == (kp.TENSOR_GEMM, pytest.approx(114 * 1.755e9 * 2048 * 0.4))
    _, _, _, rate = kp.kernel_path_rates(dep("rtx4090", prompt=512), e, 1)
    assert rate == pytest.approx(128 * 2.52e9 * 1024 * 0.4)
    assert kp.mma_sync_flops_per_core_cycle(np.array([1024.0, 2048.0, 4096.0])).tolist() == [1024.0, 2048.0, 2048.0]


def test_attention_score_traffic_adds_bytes_per_query_key_pair_without_flash_attention():
    # Llama-3-8B, P = 4096, one 512-token chunk count of 8: the score term is 32 heads x 16 B x 32 layers x
    # P(P+1)/2 pairs / 1,008 GB/s on an RTX 4090, on top of the same prefill without it.
    d = dep("rtx4090", prompt=4096)
    with_scores = eff(gemm_tensor_share={"float": 0.4}, score_bytes_per_pair_head=16.0)
    without = eff(gemm_tensor_share={"float": 0.4})
    t1, _ = prefill.prefill_seconds(d, with_scores, with_scores, communication(), 4096)
    t0, _ = prefill.prefill_seconds(d, without, without, communication(), 4096)
    expected = 32 * 16.0 * 32 * (4096 * 4097 / 2) / 1008e9
    assert t1 - t0 == pytest.approx(expected, rel=1e-9)


def test_gpu_core_blocks_agree_with_the_fp32_figures():
    """count x FP32 lanes x 2 x boost clock reproduces each datasheet FP32 rate within 1%."""
    checked = 0
    for hw in (catalog.load_hardware(i) for i in catalog.hardware().ids()):
        g = hw.gpu_cores
        if g is None or g.boost_clock_mhz is None:
            continue
        fp32 = g.count * g.fp32_lanes_per_core * 2 * g.boost_clock_mhz * 1e6
        assert fp32 == pytest.approx(hw.compute.fp32_tflops * 1e12, rel=0.01), hw.id
        checked += 1
    assert checked >= 35


def test_plan_json_names_the_binding_kernel_path(cli):
    out = cli("plan", "-m", "llama3-8b", "-g", "a100-80gb-pcie", "-q", "f16", "--prompt", "512", "--gen", "128",
              "--ctx", "1024", "--json")
    assert out.code == 0, out.err
    perf = json.loads(out.out)
    perf = perf[0]["performance"] if isinstance(perf, list) else perf["performance"]
    assert (perf["bound"], perf["bound_path"], perf["prefill_bound"]) == ("compute", kp.CUDA_CORE_MATVEC, "compute")


def test_vllm_runs_float16_weights(cli):
    out = cli("plan", "-m", "qwen2.5-7b", "-g", "v100-32gb", "-e", "vllm", "-q", "f16", "--ctx", "2048", "--json")
    assert out.code == 0, out.err
