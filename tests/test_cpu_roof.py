"""llama.cpp's CPU compute roof (issue 10, item 1): SIMD work per weight against the cores' issue rate.

Hand-computed cases: Qwen2.5-0.5B in Q4_0 is 357,826,560 Q4_0 weights in the decoder and the tied
151,936 x 896 head, which llama.cpp stores as Q8_0 (896 is not a multiple of Q6_K's 256-element block).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from planner.estimate import ResolvedModel, deployment, plan, resolve
from planner.physics import cpu, latency
from planner.physics.efficiency import communication, default_efficiency
from planner.physics.performance import host_efficiency
from planner.physics.quant import Engine, get_quant
from planner.physics.workload import Workload
from planner.spec import catalog
from planner.spec.schema import HardwareProfile

Q4_0_WEIGHTS, HEAD_WEIGHTS = 357_826_560, 151_936 * 896


def two_core_avx2(bandwidth_gb_s: float = 50.0, **cpu_fields) -> HardwareProfile:
    return HardwareProfile.model_validate({
        "id": "two-core-avx2", "name": "2-core AVX2 test host", "vendor": "cpu", "kind": "cpu",
        "memory": {"source": "test", "capacity_gib": 16, "bandwidth_gb_per_s": bandwidth_gb_s},
        "compute": {"source": "test", "fp32_tflops": 0.2},
        "cpu": {"source": "test", "physical_cores": 2, "threads": 4, "simd": "avx2", "clock_ghz": 3.0,
                **cpu_fields},
    })


def qwen_deployment(hw: HardwareProfile, quant: str = "q4_0", threads: int | None = None, batch: int = 1):
    spec = catalog.load_model("qwen2.5-0.5b")
    return deployment(ResolvedModel(spec=spec), hw, Engine.llama_cpp, get_quant(quant),
                      workload=Workload(ctx=64, batch=batch, prompt_tokens=0, gen_tokens=1), threads=threads)


def step(d):
    eff = default_efficiency(d.engine, d.hardware)
    return latency.decode_coefficients(d, eff, host_efficiency(d), communication()), eff


def test_qwen_q4_0_weights_by_storage_type_match_the_hand_count():
    spec = catalog.load_model("qwen2.5-0.5b")
    assert dict(cpu.weights_by_type(spec, "q4_0", 0, 24, True)) == {"Q4_0": Q4_0_WEIGHTS, "Q8_0": HEAD_WEIGHTS}


def test_two_thread_avx2_q4_0_step_is_bound_by_the_simd_roof():
    # 13 vector ops per 32 Q4_0 weights, 9 per 32 Q8_0 weights; R = 2 threads x 2 ops/cycle x 3.0 GHz.
    ops = Q4_0_WEIGHTS * 13 / 32 + HEAD_WEIGHTS * 9 / 32
    expected_compute_s = ops / (2 * 2 * 3.0e9)
    assert expected_compute_s == pytest.approx(0.0153045, rel=1e-5)
    d = qwen_deployment(two_core_avx2(), threads=2)
    k, eff = step(d)
    memory_s = k.weight_read_bytes / (50e9 * eff.weight_eff(d.quant))
    assert memory_s < expected_compute_s
    assert k.bound == "compute"
    assert k.fixed_s == pytest.approx(eff.step_overhead_s + expected_compute_s, rel=1e-12)


def test_f16_on_the_same_cpu_is_bound_by_bandwidth():
    d = qwen_deployment(two_core_avx2(), quant="f16", threads=2)
    k, eff = step(d)
    assert k.bound == "memory"
    assert k.fixed_s == pytest.approx(eff.step_overhead_s + k.weight_read_bytes / (50e9 * eff.weight_eff(d.quant)))


def test_threads_scale_the_roof_up_to_the_physical_cores():
    hw = two_core_avx2(bandwidth_gb_s=1000.0)
    one, two, four = (step(qwen_deployment(hw, threads=t))[0].fixed_s for t in (1, 2, 4))
    overhead = default_efficiency(Engine.llama_cpp, hw).step_overhead_s
    assert (one - overhead) == pytest.approx(2 * (two - overhead), rel=1e-12)
    assert four == pytest.approx(two, rel=1e-12)  # SMT siblings share the vector pipes


def test_default_threads_are_the_performance_or_physical_cores():
    assert cpu.default_threads(catalog.load_hardware("core-i9-13900k").cpu) == 8
    assert cpu.default_threads(catalog.load_hardware("graviton3").cpu) == 64
    hw = two_core_avx2(bandwidth_gb_s=1000.0)
    assert step(qwen_deployment(hw))[0].fixed_s == pytest.approx(step(qwen_deployment(hw, threads=2))[0].fixed_s)


def test_measured_rates_replace_the_isa_arithmetic():
    # The larger measured rate (4e9 with 2 threads) is the vector pipes' rate for every kernel.
    hw = two_core_avx2(bandwidth_gb_s=1000.0, measured_threads=2, measured_float_vector_ops_per_s=4e9,
                       measured_int_vector_ops_per_s=3e9)
    k, eff = step(qwen_deployment(hw, threads=2))
    expected = (Q4_0_WEIGHTS * 13 / 32 + HEAD_WEIGHTS * 9 / 32) / 4e9
    assert k.fixed_s == pytest.approx(eff.step_overhead_s + expected, rel=1e-12)
    assert cpu.vector_ops_per_s(hw.cpu, 1, integer=True) == pytest.approx(2e9)


def test_batch_multiplies_the_simd_work():
    hw = two_core_avx2(bandwidth_gb_s=1000.0)
    overhead = default_efficiency(Engine.llama_cpp, hw).step_overhead_s
    b1 = step(qwen_deployment(hw, threads=2))[0].fixed_s - overhead
    b4 = step(qwen_deployment(hw, threads=2, batch=4))[0].fixed_s - overhead
    assert b4 == pytest.approx(4 * b1, rel=1e-12)


def test_pure_roof_functions_take_numpy_arrays():
    threads = np.array([1.0, 2.0, 4.0])
    rate = cpu.isa_vector_ops_per_s(threads, 2.0, 3e9)
    t, compute_bound = cpu.step_seconds(np.array([1e9, 1e9, 1e9]), 1e11, cpu.compute_seconds(0.0, 6e7, 1.0, rate))
    assert np.allclose(t, [0.01, 0.01, 0.01]) and compute_bound.tolist() == [False, False, False]
    t, compute_bound = cpu.step_seconds(np.array([1e6]), 1e11, cpu.compute_seconds(0.0, 6e8, 1.0, rate[:1]))
    assert np.allclose(t, [0.1]) and compute_bound.tolist() == [True]
    assert cpu.step_seconds(2.0, 1.0, 1.0) == (2.0, False)


def test_offloaded_layers_use_the_host_cpu_roof():
    def host_layer_time(threads: int) -> float:
        d = deployment(ResolvedModel(spec=catalog.load_model("llama3-8b")), catalog.load_hardware("rtx4060ti-16gb"),
                       Engine.llama_cpp, get_quant("q4_0"), host=catalog.load_hardware("core-i9-13900k"),
                       host_layers=16, threads=threads)
        return step(d)[0].fixed_s

    assert host_layer_time(1) > 2 * host_layer_time(8)


def test_plan_threads_flag_reports_the_compute_bound(cli):
    args = ["plan", "-m", "llama3-8b", "-g", "core-i9-13900k", "-q", "q4_0", "--prompt", "0", "--json"]
    two = json.loads(cli(*args, "--threads", "2").out)["performance"]
    eight = json.loads(cli(*args).out)["performance"]
    assert two["bound"] == "compute" and two["decode_tok_s"] < eight["decode_tok_s"]
    assert cli(*args, "--threads", "0").code == 2


def test_other_engines_on_cpu_keep_the_flop_roofline():
    hw = catalog.load_hardware("ddr5-6000-2ch")
    with_threads = plan(resolve("llama3-8b", hw, quant="bf16", engine="torch", threads=1))[0].performance.decode_tok_s
    assert with_threads == plan(resolve("llama3-8b", hw, quant="bf16", engine="torch"))[0].performance.decode_tok_s


# ikawrakow/ik_llama.cpp PR #54 (Sep 2024), "t/s (llama.cpp)" column, i.e. mainline llama.cpp: LLaMA-3.1-8B
# tg128 on a Ryzen 9 7950X (Zen 4) with 4 threads. The op counts were not fitted to these rows.
@pytest.mark.parametrize(("quant", "measured_tok_s", "bound"), [("q4_0", 11.25, "compute"), ("q8_0", 7.56, "memory")])
def test_ryzen_7950x_llama31_8b_tg128_at_4_threads(quant, measured_tok_s, bound):
    from planner.physics.workload import Workload as W

    est = plan(resolve("llama3.1-8b", "ddr5-6000-2ch", quant=quant, threads=4, workload=W(ctx=256, prompt_tokens=0,
                                                                                   gen_tokens=128)))[0]
    assert est.performance.bound == bound
    assert est.performance.decode_tok_s == pytest.approx(measured_tok_s, rel=0.15)
