"""The serving simulator against closed forms: plan's single-request figures, M/D/1, Little's law and the
batched roofline; plus determinism, preemption and the traffic readers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from planner.errors import InputError, SpecFileError
from planner.estimate import deployment, plan, resolve, resolve_hardware, resolve_model
from planner.physics.quant import Engine, get_quant
from planner.physics.workload import Workload
from planner.serving.capacity import evaluate
from planner.serving.engines import EngineKnobs, scheduler_for
from planner.serving.replica import Scheduler
from planner.serving.simulate import Slo, Traffic, simulate
from planner.serving.steps import StepModel
from planner.serving.traffic import parse_length, read_trace


def _vllm_h100(ctx: int = 4096):
    return deployment(resolve_model("llama3.1-8b"), resolve_hardware("h100-sxm"), Engine.vllm, get_quant("bf16"),
                      "bf16", Workload(ctx=ctx, batch=1))


def _llama_4090(slots: int = 1, ctx: int = 4096):
    return deployment(resolve_model("llama3.1-8b"), resolve_hardware("rtx4090"), Engine.llama_cpp,
                      get_quant("q4_k_m"), "f16", Workload(ctx=ctx, batch=slots))


def _traffic(prompt="1000", gen="300", **kw) -> Traffic:
    return Traffic(prompt=parse_length(prompt), gen=parse_length(gen), **kw)


@pytest.mark.parametrize("engine", ["vllm", "llama.cpp"])
def test_one_client_at_a_time_sees_plans_single_request_ttft_and_tpot(engine):
    d = _vllm_h100() if engine == "vllm" else _llama_4090()
    m = evaluate(d, _traffic(concurrency=1, duration_s=60.0), Slo())
    e = plan(resolve("llama3.1-8b", d.hardware.id, d.quant.id, engine, d.kv_dtype.id,
             Workload(ctx=4096, prompt_tokens=1000, gen_tokens=300)))[0].performance
    tpot = (e.e2e_s - e.ttft_s) / 299
    assert m.finished > 3
    for q in ("p50", "p95", "p99"):
        assert m.ttft_s[q] == pytest.approx(e.ttft_s, rel=1e-9)
        assert m.tpot_s[q] == pytest.approx(tpot, rel=1e-9)
        assert m.e2e_s[q] == pytest.approx(e.e2e_s, rel=1e-9)


def test_one_slot_fixed_service_time_matches_md1_mean_wait():
    """M/D/1: mean wait in queue W_q = rho / (2 mu (1 - rho)) (Pollaczek-Khinchine with zero variance)."""
    d = _llama_4090(slots=1)
    steps = StepModel(d)
    sched, _ = scheduler_for(d, EngineKnobs(slots=1, slot_ctx=4096))
    alone = simulate(steps, sched, 1, _traffic("200", "4", concurrency=1, duration_s=5.0))
    service_s = alone.e2e_s["mean"]
    prefill_s = alone.ttft_s["mean"]
    rho = 0.6
    mu = 1.0 / service_s
    n = 120_000
    m = simulate(steps, sched, 1, _traffic("200", "4", rps=rho * mu, duration_s=n / (rho * mu), seed=0))
    wait = m.ttft_s["mean"] - prefill_s
    expected = rho / (2 * mu * (1 - rho))
    assert m.requests > 100_000
    assert wait == pytest.approx(expected, rel=0.03)


def _littles_cases():
    small = Scheduler(max_seqs=64, max_tokens=2048, total_blocks=600, block_tokens=16, max_seq_tokens=8192)
    return [
        ("vllm open loop", _vllm_h100, None, _traffic("lognormal:mean=800,sigma=0.8", "exp:200", rps=15.0,
                                                      duration_s=60.0), 1),
        ("vllm preempting", _vllm_h100, small, _traffic("uniform:100,900", "uniform:50,400", rps=8.0,
                                                        duration_s=60.0), 1),
        ("closed loop", _vllm_h100, None, _traffic("500", "200", concurrency=32, duration_s=60.0), 2),
        ("least loaded", _vllm_h100, None, _traffic("500", "200", rps=30.0, duration_s=30.0, lb="least-loaded"), 3),
        ("llama-server slots", lambda: _llama_4090(4), None, _traffic("300", "100", rps=2.0, duration_s=120.0,
                                                                     burstiness=0.5), 1),
    ]


@pytest.mark.parametrize("name,make,sched,traffic,replicas", _littles_cases(), ids=lambda x: x if isinstance(x, str) else "")
def test_littles_law_holds_on_every_run(name, make, sched, traffic, replicas):
    """L = lambda W: the step loop's time-average of requests in the system equals arrivals x mean sojourn
    from the request ledger (two independent bookkeepings)."""
    d = make()
    if sched is None:
        sched, _ = scheduler_for(d, EngineKnobs(slots=4, slot_ctx=4096) if d.engine is not Engine.vllm else EngineKnobs())
    m = simulate(StepModel(d), sched, replicas, traffic, Slo())
    assert m.finished == m.requests - m.rejected
    assert m.littles_law_l == pytest.approx(m.littles_law_lambda_w, rel=1e-9)
    if name == "vllm preempting":
        assert m.preemptions > 0


def test_throughput_saturates_at_the_batched_roofline():
    """A closed loop beyond max_num_seqs cannot push more tokens than plan's aggregate decode at that batch."""
    d = _vllm_h100(ctx=4096)
    sched, _ = scheduler_for(d, EngineKnobs(max_num_seqs=64))
    steps = StepModel(d)
    e = plan(resolve("llama3.1-8b", "h100-sxm", "bf16", "vllm", "bf16",
             Workload(ctx=4096, batch=64, prompt_tokens=1, gen_tokens=2000)))[0].performance
    tok = [simulate(steps, sched, 1, _traffic("1", "2000", concurrency=c, duration_s=120.0)).throughput_tok_s
           for c in (64, 128, 256)]
    for t in tok:
        assert t == pytest.approx(e.aggregate_tok_s, rel=0.02)
    assert tok[2] == pytest.approx(tok[0], rel=0.01)


def test_a_seed_fixes_the_run_and_another_seed_changes_it():
    d = _vllm_h100()
    t = _traffic("lognormal:mean=500,sigma=0.5", "exp:100", rps=10.0, duration_s=30.0, seed=3)
    a, b = evaluate(d, t, Slo()), evaluate(d, t, Slo())
    c = evaluate(d, replace(t, seed=4), Slo())
    assert (a.requests, a.ttft_s, a.tpot_s) == (b.requests, b.ttft_s, b.tpot_s)
    assert a.ttft_s != c.ttft_s


def test_a_request_larger_than_the_pool_is_refused_not_deadlocked():
    d = _vllm_h100()
    sched = Scheduler(max_seqs=8, max_tokens=512, total_blocks=10, block_tokens=16)
    m = simulate(StepModel(d), sched, 1, _traffic("1000", "10", rps=1.0, duration_s=10.0), Slo(ttft_p95_s=1))
    assert m.rejected == m.requests > 0
    assert not m.meets_slo


def test_prefix_cache_hits_shorten_prefill():
    d = _vllm_h100()
    t = _traffic("2000", "50", rps=2.0, duration_s=60.0)
    cold = evaluate(d, t, Slo())
    warm = evaluate(d, t, Slo(), knobs=EngineKnobs(prefix_hit=0.75))
    assert warm.ttft_s["p50"] < 0.5 * cold.ttft_s["p50"]


@pytest.mark.parametrize("text,mean", [("1000", 1000), ("lognormal:mean=1000,sigma=0.8", 1000),
                                       ("uniform:200,400", 300), ("exp:300", 300), ("exp:mean=300", 300)])
def test_length_distributions_have_their_stated_means(text, mean):
    d = parse_length(text)
    x = d.sample(np.random.default_rng(0), 200_000)
    assert d.mean == mean
    assert x.mean() == pytest.approx(mean, rel=0.02)


@pytest.mark.parametrize("bad", ["lognormal:mean=1000", "uniform:5", "uniform:9,2", "exp:-1", "gauss:3", "abc",
                                 "lognormal:mean=1e99,sigma=1", "nan"])
def test_bad_length_specs_are_input_errors(bad):
    with pytest.raises(InputError):
        parse_length(bad)


def test_azure_trace_columns_and_jsonl_are_read(tmp_path):
    csv = tmp_path / "azure.csv"
    csv.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                   "2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.9951690,396,109\n"
                   "2023-11-16 18:15:47.0000000,100,0\n")
    r = read_trace(str(csv))
    assert list(r.prompt) == [374, 100, 396]
    assert list(r.gen) == [44, 1, 109]  # zero outputs still yield one token
    assert r.arrival_s[0] == 0.0 and r.arrival_s[2] == pytest.approx(4.3145790, abs=1e-6)
    jl = tmp_path / "t.jsonl"
    jl.write_text('{"arrival_time": 0.5, "prompt_tokens": 10, "output_tokens": 5}\n'
                  '{"arrival_time": 0.0, "prompt_tokens": 20, "output_tokens": 6}\n')
    r = read_trace(str(jl))
    assert list(r.prompt) == [20, 10] and list(r.arrival_s) == [0.0, 0.5]


@pytest.mark.parametrize("content", ["TIMESTAMP,ContextTokens\n1,2\n", "TIMESTAMP,ContextTokens,GeneratedTokens\n",
                                     "TIMESTAMP,ContextTokens,GeneratedTokens\nx,1,2\n",
                                     "TIMESTAMP,ContextTokens,GeneratedTokens\n1,-5,2\n", '{"a": 1\n', "[1, 2]\n"])
def test_malformed_traces_are_spec_file_errors(tmp_path, content):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(SpecFileError):
        read_trace(str(p))


def test_a_fifo_trace_does_not_hang(tmp_path):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(SpecFileError):
        read_trace(str(fifo))


def test_trace_replay_runs_the_trace_requests(tmp_path):
    p = tmp_path / "t.csv"
    rows = "\n".join(f"{i * 0.5},{200 + i},{20 + i % 7}" for i in range(40))
    p.write_text("arrival_s,prompt_tokens,output_tokens\n" + rows + "\n")
    m = evaluate(_vllm_h100(), _traffic(trace=str(p), duration_s=600.0), Slo())
    assert m.requests == m.finished == 40
    assert math.isclose(m.littles_law_l, m.littles_law_lambda_w, rel_tol=1e-9)


def test_traffic_of_builds_validated_traffic_for_other_stages():
    from planner.serving.capacity import traffic_of

    t = traffic_of(rps=2.0, prompt="uniform:100,200", gen=50, duration_s=30.0)
    m = evaluate(_vllm_h100(), t, Slo(ttft_p95_s=1.0, tpot_p95_s=0.05, min_goodput_rps=1.0))
    assert m.meets_slo and m.ttft_s["p95"] < 1.0
    with pytest.raises(InputError):
        traffic_of(rps=2.0, concurrency=3)
