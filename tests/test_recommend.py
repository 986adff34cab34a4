"""planner recommend: the vectorised search against scalar plan(), feasibility of every pick, rejections,
launch commands and the JSON contract (issue 5)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from planner.spec import catalog
from planner.errors import InputError
from planner.estimate import DEFAULT_HOST, ENGINE_KV_DTYPES, deployment, plan, resolve, resolve_model
from planner.physics.kvcache import get_kv_dtype, kv_bytes_per_token_layer
from planner.physics.quant import Engine, quants_for
from planner.search.recommend import Targets, prepare, recommend
from planner.search.grid import Group
from planner.physics.workload import Workload
CASES = [
    ("llama3.1-8b", "rtx4090", "llama.cpp"),
    ("gemma2-9b", "rtx4090", "llama.cpp"),  # sliding-window layers
    ("qwen3-30b-a3b", "rtx4090", "llama.cpp"),  # MoE
    ("llama3.1-8b", "h100-sxm", "vllm"),
    ("mixtral-8x7b", "a100-80gb-sxm", "vllm"),
    ("deepseek-v3", "h200", "vllm"),  # MLA
    ("gemma3-27b", "rtx4090", "ollama"),
    ("llama3.1-8b", "m2-ultra", "llama.cpp"),  # unified memory
    ("qwen2.5-7b", "ddr5-6000-2ch", "llama.cpp"),  # CPU device
    ("mistral-7b-v0.1", "rtx3090", "torch"),
]


@pytest.mark.parametrize("model,gpu,engine", CASES)
def test_vectorised_equals_scalar_plan(model, gpu, engine):
    rng = random.Random(f"{model}{gpu}{engine}")
    e = Engine(engine)
    r, hw, host = resolve_model(model), catalog.load_hardware(gpu), catalog.load_hardware(DEFAULT_HOST)
    n = r.spec.architecture.n_layers
    kv_choices = [k for k in ENGINE_KV_DTYPES[e] if _kv_supported(r.spec, k)]
    for _ in range(8):
        q = rng.choice(quants_for(e, r.spec))
        kv = rng.choice(kv_choices)
        G = 1 if hw.kind.value != "gpu" else rng.choice([1, 2, 4])
        if e is Engine.vllm and r.spec.architecture.n_heads % G:
            G = 1
        P, N = rng.choice([0, 1, 512, 3000]), rng.choice([1, 2, 256, 1000])
        ctx, B = rng.choice([256, 1000, 4096, 40000]), rng.choice([1, 3, 8, 64])
        h = rng.choice([0, 1, n // 2, n]) if e.reads_gguf and hw.kind.value != "cpu" else 0
        d = deployment(r, hw, e, q, "f16", Workload(batch=B, prompt_tokens=P, gen_tokens=N), G, host=host)
        grid = Group(d).evaluate([get_kv_dtype(kv)], [h], [ctx], [B])
        est = plan(resolve(model, gpu, quant=q.id, engine=engine, kv_dtype=kv, num_gpus=G, offload=h or "none",
                   workload=Workload(ctx=ctx, batch=B, prompt_tokens=P, gen_tokens=N)))[0]
        m, p = est.memory, est.performance
        assert bool(grid.fits.ravel()[0]) == m.fits
        assert int(grid.total_bytes.ravel()[0]) == m.total_bytes
        assert int(grid.per_gpu_bytes.ravel()[0]) == m.per_gpu_bytes
        assert int(grid.kv_cache_bytes.ravel()[0]) == m.kv_cache_bytes
        assert int(grid.host_bytes.ravel()[0]) == m.host_bytes
        assert float(grid.decode_tok_s.ravel()[0]) == pytest.approx(p.decode_tok_s, rel=1e-6)
        assert float(grid.ttft_s.ravel()[0]) == pytest.approx(p.ttft_s, rel=1e-6)
        assert float(grid.e2e_s.ravel()[0]) == pytest.approx(p.e2e_s, rel=1e-6)


def _kv_supported(spec, kv: str) -> bool:
    """KV dtypes the model's cache can take (an MLA latent is not block-quantizable, for example)."""
    try:
        kv_bytes_per_token_layer(spec, get_kv_dtype(kv))
    except InputError:
        return False
    return True


def test_grid_broadcasts_every_axis():
    r, hw = resolve_model("llama3.1-8b"), catalog.load_hardware("rtx4090")
    d = deployment(r, hw, Engine.llama_cpp, quants_for(Engine.llama_cpp, r.spec)[0], "f16", Workload())
    kvs = [get_kv_dtype(k) for k in ("f16", "q8_0")]
    grid = Group(d).evaluate(kvs, np.arange(3), np.array([256, 4096, 8192]), np.array([1, 2, 4, 8]))
    assert grid.fits.shape == (2, 3, 3, 4)
    assert grid.decode_tok_s.shape == (2, 3, 1, 4)
    assert grid.size == 72


def _fits_with(targets: Targets, e) -> bool:
    m, p, t = e.memory, e.performance, targets
    return (m.fits and m.headroom_bytes >= t.headroom_fraction * m.device_bytes
            and (t.min_tok_s is None or p.decode_tok_s >= t.min_tok_s)
            and (t.max_ttft_s is None or p.ttft_s <= t.max_ttft_s)
            and (t.max_e2e_s is None or p.e2e_s <= t.max_e2e_s))


@pytest.mark.parametrize("model,gpu,engine,targets,kw", [
    ("llama3.1-8b", "rtx4090", "llama.cpp", Targets(min_ctx=16384, min_tok_s=60, max_e2e_s=10), {}),
    ("llama3.1-70b", "rtx4090", "llama.cpp", Targets(min_tok_s=5), {"max_gpus": 2}),
    ("llama3.1-8b", "h100-sxm", "vllm", Targets(max_ttft_s=0.5), {"concurrency": 16}),
])
def test_every_recommendation_replanned_fits_and_meets_targets(model, gpu, engine, targets, kw):
    s = prepare(model, gpu, engine, targets=targets, **kw)
    r = recommend(s)
    assert r.recommendations
    for rec in r.recommendations:
        e = plan(resolve(model, gpu, quant=rec.quant, engine=engine, kv_dtype=rec.kv_dtype, num_gpus=rec.num_gpus,
                 offload=rec.offload_layers or "none",
                 workload=Workload(ctx=rec.ctx, batch=rec.concurrency, prompt_tokens=512, gen_tokens=256)))[0]
        assert _fits_with(targets, e), rec
        assert rec.ctx >= (targets.min_ctx or 0)
        assert e.model_dump() == rec.plan.model_dump()


def test_largest_context_fits_and_256_more_does_not():
    t = Targets(headroom_fraction=0.1)
    r = recommend(prepare("llama3.1-8b", "rtx4090", targets=t, quant="f16", kv_dtype="f16", offload=False))
    rec = r.recommendations[0]
    assert rec.ctx < 131072  # f16 weights leave room for about 57k tokens

    def ok(ctx):
        e = plan(resolve("llama3.1-8b", "rtx4090", quant="f16", kv_dtype="f16", workload=Workload(ctx=ctx)))[0]
        return _fits_with(t, e)

    assert ok(rec.ctx)
    assert not ok(rec.ctx + 256)
    assert r.answers.largest_ctx.ctx == rec.ctx


def test_most_concurrent_sequences_is_the_edge():
    t = Targets(min_ctx=8192)
    r = recommend(prepare("llama3.1-8b", "rtx4090", targets=t, quant="q4_k_m", kv_dtype="f16", offload=False))
    c = r.answers.max_concurrency
    assert r.answers.max_concurrency_ctx == 8192

    def ok(b):
        e = plan(resolve("llama3.1-8b", "rtx4090", quant="q4_k_m", workload=Workload(ctx=8192, batch=b)))[0]
        return _fits_with(t, e)

    assert ok(c.concurrency) and not ok(c.concurrency + 1)


def test_max_gen_tokens_within_budget():
    t = Targets(max_e2e_s=5)
    r = recommend(prepare("llama3.1-8b", "rtx4090", targets=t, quant="q4_k_m", kv_dtype="f16", offload=False))
    n = r.answers.max_gen_tokens
    assert n and n > 256

    def e2e(gen):
        return plan(resolve("llama3.1-8b", "rtx4090", quant="q4_k_m",
                    workload=Workload(ctx=r.recommendations[0].ctx, gen_tokens=gen)))[0].performance.e2e_s

    assert e2e(n) <= 5 < e2e(n + 1)


def test_quality_prefers_precision_speed_prefers_tok_s():
    q = recommend(prepare("llama3.1-8b", "rtx4090"), "quality").recommendations
    s = recommend(prepare("llama3.1-8b", "rtx4090"), "speed").recommendations
    assert q[0].quant in ("f16", "bf16")
    speeds = [x.plan.performance.decode_tok_s for x in s]
    assert speeds == sorted(speeds, reverse=True)
    assert speeds[0] > q[0].plan.performance.decode_tok_s


def test_rejected_names_constraint(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--min-tok-s", "100", "--json")
    data = json.loads(res.out)
    assert res.code == 0
    by_quant = {x["quant"]: x for x in data["rejected"]}
    assert by_quant["f16"]["constraint"] == "min_tok_s"
    assert by_quant["f16"]["predicted"] < 100 == by_quant["f16"]["required"]
    assert {"f16", "bf16", "q8_0"} <= set(by_quant)


@pytest.mark.parametrize("args,constraint", [
    (["--min-tok-s", "100000"], "min_tok_s"),
    (["--max-ttft", "0.000001"], "max_ttft"),
    (["--min-ctx", "131072", "--quant", "f16", "--kv-dtype", "f16", "--no-offload"], "min_ctx"),
])
def test_no_feasible_exits_1_naming_binding_constraint(cli, args, constraint):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", *args)
    assert res.code == 1
    assert f"binding constraint: {constraint}" in res.out
    data = json.loads(cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", *args, "--json").out)
    assert data["recommendations"] == [] and data["binding_constraint"] == constraint


def test_memory_binding_when_nothing_fits(cli):
    res = cli("recommend", "--model", "llama3.1-405b", "--gpu", "rtx3060-12gb", "--no-offload")
    assert res.code == 1 and "binding constraint: memory" in res.out


def test_json_contract(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--min-ctx", "8192", "--json")
    assert res.code == 0
    data = json.loads(res.out)
    assert {"recommendations", "rejected"} <= set(data)
    rec = data["recommendations"][0]
    assert {"quant", "kv_dtype", "ctx", "concurrency", "offload_layers", "num_gpus", "plan", "commands"} <= set(rec)
    assert set(rec["commands"]) == {"llama.cpp", "ollama", "vllm"}
    assert {"memory", "performance", "quant", "ctx"} <= set(rec["plan"])
    plan_json = json.loads(cli("plan", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--quant", rec["quant"],
                               "--kv-dtype", rec["kv_dtype"], "--ctx", str(rec["ctx"]), "--json").out)
    assert rec["plan"] == plan_json


def test_commands_flags():
    r = recommend(prepare("llama3.1-8b", "rtx4090", quant="q4_k_m", kv_dtype="q8_0",
                          targets=Targets(min_ctx=8192), concurrency=2))
    rec = r.recommendations[0]
    c = rec.commands
    ctx, n = rec.ctx, rec.plan.offload.ngl
    assert c["llama.cpp"] == (f"llama-server -m llama3.1-8b-Q4_K_M.gguf -c {ctx * 2} -ngl {n} -ctk q8_0 -ctv q8_0 "
                              f"-fa on -np 2 -n 256")
    assert "PARAMETER num_ctx" in c["ollama"] and "PARAMETER num_predict 256" in c["ollama"]
    assert f"PARAMETER num_gpu {n}" in c["ollama"] and "OLLAMA_KV_CACHE_TYPE=q8_0" in c["ollama"]
    assert c["vllm"] is None  # a GGUF k-quant


def test_vllm_command_and_null_llama_cpp_for_awq():
    r = recommend(prepare("llama3.1-8b", "h100-sxm", "vllm", quant="awq-int4", concurrency=4, max_gpus=2))
    c = r.recommendations[0].commands
    assert c["llama.cpp"] is None and c["ollama"] is None
    v = c["vllm"]
    for flag in ("vllm serve meta-llama/Llama-3.1-8B", "--max-model-len", "--max-num-seqs 4",
                 "--gpu-memory-utilization 0.9", "--kv-cache-dtype auto", "--quantization awq",
                 "--tensor-parallel-size 1"):
        assert flag in v


def test_bad_input_exit_2(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4099")
    assert res.code == 2 and res.err_lines[0].startswith("error: unknown GPU")
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--prefer", "cheap")
    assert res.code == 2 and len(res.err_lines) == 1


def test_text_and_markdown(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--max-e2e", "10")
    assert res.code == 0
    assert "largest context that fits" in res.out and "most output tokens within 10 s" in res.out
    assert "llama-server -m" in res.out
    md = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--markdown")
    assert md.code == 0 and md.out.startswith("### Recommended settings") and "```sh" in md.out


# ------------------------------------------------------------------ review findings


@pytest.mark.parametrize("args,constraint", [
    (["--concurrency", "10000"], "host_memory"),
    (["--model", "llama3.1-405b", "--gpu", "rtx3060-12gb", "--no-offload"], "memory"),
    (["--min-ctx", "131072", "--quant", "f16", "--kv-dtype", "f16", "--no-offload"], "min_ctx"),
    (["--min-tok-s", "100000"], "min_tok_s"),
    (["--max-ttft", "0.000001"], "max_ttft"),
])
def test_binding_constraint_reports_a_value_on_the_failing_side(cli, args, constraint):
    base = ["--model", "llama3.1-8b", "--gpu", "rtx4090"]
    res = cli("recommend", *base, *args, "--json")
    data = json.loads(res.out)
    assert res.code == 1 and data["binding_constraint"] == constraint
    for rej in data["rejected"]:
        below = rej["constraint"] in ("min_ctx", "min_tok_s")
        assert (rej["predicted"] < rej["required"]) if below else (rej["predicted"] > rej["required"]), rej


def test_host_memory_binds_when_offloaded_layers_overflow_the_host(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--concurrency", "10000")
    assert res.code == 1
    assert "binding constraint: host_memory" in res.out
    line = res.out.splitlines()[res.out.splitlines().index(
        "no configuration fits and meets the targets; binding constraint: host_memory") + 1]
    assert "of host memory; the host has 64.00 GiB" in line
    needs = float(line.split("needs ")[1].split(" GiB")[0])
    assert needs > 64.0


def test_offloaded_part_that_overflows_the_host_is_not_a_device_memory_failure():
    r, hw = resolve_model("llama3.1-8b"), catalog.load_hardware("rtx4090")
    host = catalog.load_hardware(DEFAULT_HOST)
    d = deployment(r, hw, Engine.llama_cpp, quants_for(Engine.llama_cpp, r.spec)[0], "f16",
                   Workload(batch=10000), host=host)
    grid = Group(d).evaluate([get_kv_dtype("f16")], [0, 32], [256], [10000])
    device_fits, host_fits = grid.device_fits.ravel(), grid.host_fits.ravel()
    assert list(device_fits) == [False, True]  # all 32 layers in host memory leave the GPU room
    assert list(host_fits) == [True, False]  # ... but 10,000 sequences of KV cache do not fit 64 GiB
    assert list(grid.fits.ravel()) == [False, False]
    assert int(grid.host_bytes.ravel()[1]) > host.memory_bytes


def test_min_ctx_above_the_trained_context_is_an_input_error_naming_it(cli):
    import time

    start = time.perf_counter()
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--min-ctx", "100000000")
    assert time.perf_counter() - start < 2
    assert res.code == 2 and res.out == ""
    expected = "error: --min-ctx 100,000,000 is above llama3.1-8b's trained context of 131,072 tokens"
    assert res.err_lines == [expected]


def test_min_ctx_equal_to_the_trained_context_is_searched(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--min-ctx", "131072", "--json")
    data = json.loads(res.out)
    assert res.code == 0 and data["recommendations"][0]["ctx"] == 131072


def test_prompt_and_gen_above_the_trained_context_is_an_input_error(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--prompt", "131072", "--gen", "1")
    assert res.code == 2
    expected = "error: --prompt + --gen = 131,073 tokens is above llama3.1-8b's trained context of 131,072 tokens"
    assert res.err_lines == [expected]


def test_quant_the_engine_cannot_run_is_an_input_error_like_plan(cli):
    args = ["--model", "llama3.1-8b", "--gpu", "rtx4090", "--engine", "vllm", "--quant", "q4_k_m"]
    res = cli("recommend", *args)
    assert res.code == 2 and len(res.err_lines) == 1
    assert res.err_lines == cli("plan", *args).err_lines
    assert res.err_lines[0].startswith("error: engine vllm does not run quant 'q4_k_m'; choose one of: ")


def test_json_and_markdown_together_is_an_input_error(cli):
    res = cli("recommend", "--model", "llama3.1-8b", "--gpu", "rtx4090", "--json", "--markdown")
    assert res.code == 2 and res.out == ""
    assert res.err_lines == ["error: choose one of --json and --markdown"]


def test_quality_ranks_every_fully_resident_configuration_before_any_offloaded_one():
    r = recommend(prepare("llama3.1-8b", "rtx4090", kv_dtype="f16", concurrency=128), "quality", top=50)
    recs = r.recommendations
    resident = [x.offload_layers == 0 for x in recs]
    assert resident[0] and resident == sorted(resident, reverse=True)  # no resident one after an offloaded
    assert (recs[0].quant, recs[0].offload_layers) == ("q8_0", 0)
    f16 = next(x for x in recs if x.quant == "f16")
    assert f16.offload_layers == 7
    # Batch-128 decode is KV-bound; the KV share is fitted to the published tg512 -> tg8192 slowdowns
    # (RTX 4090 Q4_K_M 130.58 -> 110.66 tok/s, XiongjieDai, planner/data/measurements.csv).
    assert recs[0].plan.performance.decode_tok_s == pytest.approx(16.9, abs=0.05)
    # The 7 offloaded f16 layers at batch 128 run on the host's cores, bounded by the SIMD roof of
    # planner.physics.cpu (Ryzen 9 7950X profile, 16 threads) rather than by DDR5 bandwidth.
    assert f16.plan.performance.decode_tok_s == pytest.approx(1.65, abs=0.05)


def test_quality_objective_orders_resident_then_weight_bits_then_kv_bits_then_gpus_then_speed():
    from planner.search.rank import objective
    from planner.search.types import Config

    def cfg(quant, wbits, kvbits, gpus=1, host=0, tok_s=10.0):
        return Config(quant=quant, kv_dtype="f16", ctx=4096, concurrency=1, offload_layers=host, num_gpus=gpus,
                      decode_tok_s=tok_s, ttft_s=0.1, e2e_s=1.0, total_bytes=1, device_bytes=2,
                      weight_bits=wbits, kv_bits=kvbits)

    configs = [
        cfg("f16-offloaded", 16, 16, host=7, tok_s=100),
        cfg("q8-slow", 8.5, 16, tok_s=5),
        cfg("q8-fast", 8.5, 16, tok_s=6),
        cfg("q8-kv8", 8.5, 8.5, tok_s=50),
        cfg("q8-two-gpus", 8.5, 16, gpus=2, tok_s=60),
        cfg("f32", 32, 16, tok_s=1),
        cfg("q4", 4.5, 16, tok_s=90),
        cfg("f16-offloaded-more", 16, 16, host=20, tok_s=100),
    ]
    ranked = [c.quant for c in sorted(configs, key=lambda c: objective(c, "quality"))]
    assert ranked == ["f32", "q8-fast", "q8-slow", "q8-two-gpus", "q8-kv8", "q4", "f16-offloaded",
                      "f16-offloaded-more"]


def test_recommend_modules_keep_functions_short():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "planner"
    for path in sorted(root.glob("recommend*.py")):
        source = path.read_text(encoding="utf-8")
        assert len(source.splitlines()) <= 400, path.name
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno + 1 <= 50, f"{path.name}:{node.name}"


def test_objective_is_documented():
    from pathlib import Path

    import planner.search.recommend

    doc = (Path(__file__).resolve().parent.parent / "docs" / "recommend.md").read_text(encoding="utf-8")
    for text in (doc, planner.search.recommend.__doc__):
        assert "every layer in device memory" in text
        assert "bits per weight" in text and "fewest GPUs" in text
