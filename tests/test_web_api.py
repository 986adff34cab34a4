"""The web API is the command line's contract over HTTP: the same fields as the flags, the `--json`
document byte for byte, 422 with the exit-2 line for bad input, and no file ever read from a request."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import warnings

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # newer Starlette prefers httpx2 for its test client; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from planner.web import requests as rq
from planner.web.app import MAX_BODY_BYTES, create_app


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


def _flags(body: dict) -> list[str]:
    out = []
    for k, v in body.items():
        out += [f"--{k.replace('_', '-')}", str(v)]
    return out


@pytest.mark.parametrize("body", [
    {"model": "llama3.1-8b", "gpu": "rtx4090", "ctx": 4096},
    {"model": "llama3.1-8b", "gpu": "rtx4090", "ctx": 4096, "quant": "q4_k_m"},
    {"model": "qwen2.5-72b", "gpu": "h100", "engine": "vllm", "num_gpus": 2, "kv_dtype": "fp8", "batch": 8},
    {"model": "llama3.1-70b", "gpu": "rtx4090", "quant": "q4_k_m", "offload": "auto", "ctx": 8192},
])
def test_plan_answers_what_plan_json_prints(client, cli, body):
    r = client.post("/api/plan", json=body)
    printed = cli("plan", *_flags(body), "--json")
    assert r.status_code == 200
    assert r.text == printed.out
    assert r.headers["x-planner-exit-code"] == str(printed.code)


def test_a_plan_that_does_not_fit_answers_200_with_exit_code_1(client):
    r = client.post("/api/plan", json={"model": "llama3.1-405b", "gpu": "rtx4090", "quant": "f16"})
    assert r.status_code == 200
    assert r.json()["memory"]["fits"] is False
    assert r.headers["x-planner-exit-code"] == "1"


def test_recommend_answers_what_recommend_json_prints(client, cli):
    body = {"model": "llama3.1-8b", "gpu": "rtx4090", "min_ctx": 16384, "min_tok_s": 30, "concurrency": 2}
    r = client.post("/api/recommend", json=body)
    printed = cli("recommend", *_flags(body), "--json")
    assert r.status_code == 200 and r.text == printed.out
    assert r.headers["x-planner-exit-code"] == str(printed.code)


def test_compare_answers_what_compare_json_prints_and_takes_a_list_of_gpus(client, cli):
    printed = cli("compare", "--model", "llama3.1-8b", "--gpus", "rtx4090,a100-80gb-sxm", "--ctx", "8192", "--json")
    as_text = client.post("/api/compare", json={"model": "llama3.1-8b", "gpus": "rtx4090,a100-80gb-sxm", "ctx": 8192})
    as_list = client.post("/api/compare", json={"model": "llama3.1-8b", "gpus": ["rtx4090", "a100-80gb-sxm"],
                                                "ctx": 8192})
    assert as_text.text == printed.out == as_list.text


def test_models_and_gpus_answer_what_models_json_and_gpus_json_print(client, cli):
    assert client.get("/api/models").text == cli("models", "--json").out
    assert client.get("/api/gpus").text == cli("gpus", "--json").out


def test_engines_list_the_kv_dtypes_each_engine_runs(client):
    from planner.physics.engines import ENGINE_KV_DTYPES

    engines = {e["id"]: e["kv_dtypes"] for e in client.get("/api/engines").json()}
    assert engines == {e.value: list(kv) for e, kv in ENGINE_KV_DTYPES.items()}


def test_the_sweep_is_plan_json_with_the_context_full_at_each_length(client, cli):
    body = {"model": "llama3.1-8b", "gpu": "rtx4090", "quant": "q4_k_m", "points": [1024, 32768]}
    points = client.post("/api/plan/sweep", json=body).json()["points"]
    assert [p["ctx"] for p in points] == [1024, 32768]
    for p in points:
        n = p["ctx"]
        printed = cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "-q", "q4_k_m", "--ctx", n, "--prompt", n - 1,
                      "--gen", 1, "--json")
        assert p["plan"] == json.loads(printed.out)
    # a longer context reads more KV cache per step: slower
    assert points[1]["plan"]["performance"]["decode_tok_s_first"] < points[0]["plan"]["performance"]["decode_tok_s_first"]


def test_the_default_sweep_runs_up_to_the_trained_context(client):
    points = client.post("/api/plan/sweep", json={"model": "llama3.1-8b", "gpu": "rtx4090", "quant": "q8_0"}).json()
    ctxs = [p["ctx"] for p in points["points"]]
    assert ctxs[0] == 256 and ctxs[-1] == 131072 and ctxs == sorted(ctxs)


@pytest.mark.parametrize("command, body", [
    ("plan", {"model": "llama3.1-8x", "gpu": "rtx4090"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "ctx": 0}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "ctx": "many"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "engine": "foo"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "quant": "q9_z"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "engine": "vllm", "kv_dtype": "q4_0"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "parallel": "diagonal"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "host": "ddr9"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "offload": "lots"}),
    ("plan", {"model": "llama3.1-8b"}),
    ("plan", {"model": "llama3.1-8b", "gpu": "rtx4090", "colour": "blue"}),
    ("recommend", {"model": "llama3.1-8b", "gpu": "rtx4090", "headroom": 1}),
    ("recommend", {"model": "llama3.1-8b", "gpu": "rtx4090", "prefer": "cheap"}),
    ("recommend", {"model": "llama3.1-8b", "gpu": "rtx4090", "min_ctx": 10_000_000}),
    ("compare", {"model": "llama3.1-8b", "gpus": "rtx4090", "all": True}),
    ("compare", {"model": "llama3.1-8b", "gpus": "rtx4090,rtx9999"}),
    ("compare", {"model": "llama3.1-8b"}),
])
def test_bad_input_is_422_with_the_line_the_command_prints(client, cli, command, body):
    r = client.post(f"/api/{command}", json=body)
    args = []
    for k, v in body.items():
        args += [f"--{k.replace('_', '-')}"] if v is True else [f"--{k.replace('_', '-')}", str(v)]
    printed = cli(command, *args, "--json")
    assert printed.code == 2
    assert r.status_code == 422
    assert f"error: {r.json()['error']}" == printed.err_lines[0]


@pytest.mark.parametrize("body, needle", [
    ({"model": "/etc/passwd", "gpu": "rtx4090"}, "not a file"),
    ({"model": "model_specs/llama3.1-8b.yaml", "gpu": "rtx4090"}, "not a file"),
    ({"model": "llama3.1-8b", "gpu": "hardware_profiles/rtx4090.yaml"}, "not a file"),
    ({"model": "model.gguf", "gpu": "rtx4090"}, "not a file"),
    ({"model": "..", "gpu": "rtx4090"}, "not a file"),
    ({"model": "llama3.1-8b", "gpu": "local"}, "command-line only"),
    ({"model": "llama3.1-8b", "gpu": "rtx4090", "host": "../hosts/big.yaml"}, "not a file"),
    ({"model": "llama3.1-8b", "gpu": "rtx4090", "calibration": "cal.json"}, "reads no files"),
    ({"model": "llama3.1-8b", "gpu": "rtx4090", "plot": "out.png"}, "writes no files"),
])
def test_names_that_are_not_catalog_ids_are_refused_without_reading_anything(client, body, needle, monkeypatch):
    import builtins
    import io
    import os

    opened = []
    for module, name in ((builtins, "open"), (io, "open"), (os, "open")):  # the library reads with os.open
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, **k: opened.append(a[0]) or _real(*a, **k))
    r = client.post("/api/plan", json=body)
    assert r.status_code == 422 and needle in r.json()["error"]
    assert opened == []


def test_a_model_file_the_command_line_reads_is_refused_by_the_api(client, cli, model_data, write_yaml):
    path = write_yaml("tiny.yaml", model_data())
    assert cli("plan", "-m", path, "-g", "rtx4090", "-q", "f16", "--json").code == 0
    r = client.post("/api/plan", json={"model": str(path), "gpu": "rtx4090", "quant": "f16"})
    assert r.status_code == 422 and "catalog id or alias" in r.json()["error"]


def test_aliases_are_accepted_and_answer_like_the_id(client):
    by_id = client.post("/api/plan", json={"model": "llama3.1-8b", "gpu": "h100-sxm", "quant": "q8_0"})
    by_alias = client.post("/api/plan", json={"model": "llama3.1-8b", "gpu": "h100", "quant": "q8_0"})
    assert by_alias.status_code == 200 and by_alias.text == by_id.text


def test_flags_may_be_spelled_with_dashes(client):
    a = client.post("/api/plan", json={"model": "llama3.1-8b", "gpu": "rtx4090", "kv-dtype": "q8_0", "quant": "q8_0"})
    b = client.post("/api/plan", json={"model": "llama3.1-8b", "gpu": "rtx4090", "kv_dtype": "q8_0", "quant": "q8_0"})
    assert a.status_code == 200 and a.text == b.text


@pytest.mark.parametrize("field", ["ctx", "batch", "num_gpus", "prompt"])
def test_true_is_not_a_number(client, field):
    r = client.post("/api/plan", json={"model": "llama3.1-8b", "gpu": "rtx4090", field: True})
    assert r.status_code == 422
    assert r.json()["error"] == f"Invalid value for '--{field.replace('_', '-')}': Input should be a number, not true or false"


def test_an_oversized_body_is_refused_with_413(client):
    body = json.dumps({"model": "llama3.1-8b", "gpu": "rtx4090", "pad": "x" * MAX_BODY_BYTES})
    r = client.post("/api/plan", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("raw, needle", [(b"{not json", "not JSON"), (b"[1, 2]", "JSON object"),
                                         (b"\xff\xfe", "not JSON")])
def test_a_body_that_is_not_a_json_object_is_422(client, raw, needle):
    r = client.post("/api/plan", content=raw)
    assert r.status_code == 422 and needle in r.json()["error"]


def test_an_unknown_command_is_404(client):
    assert client.post("/api/launch-missiles", json={}).status_code == 404


def test_a_request_over_the_time_limit_gets_503():
    with TestClient(create_app(time_limit_s=1e-6)) as c:
        r = c.post("/api/recommend", json={"model": "llama3.1-8b", "gpu": "rtx4090"})
    assert r.status_code == 503 and "no answer within" in r.json()["error"]


def test_the_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    page = r.text.lower()
    for external in ("http://", "https://", "//cdn", "<link ", " src="):
        assert external not in page, external


def _cli_options(command) -> dict:
    import typing

    hints = typing.get_type_hints(command, include_extras=True)
    out = {}
    for p in inspect.signature(command).parameters.values():
        info, default = p.default, getattr(p.default, "default", None)
        decls = list(getattr(info, "param_decls", ()))
        if not hasattr(info, "param_decls"):  # Annotated[type, typer.Option(...)] (planner/cli/options.py)
            info = next(m for m in typing.get_args(hints[p.name])[1:] if hasattr(m, "param_decls"))
            default = ... if p.default is inspect.Parameter.empty else p.default
            decls = [info.default, *info.param_decls] if isinstance(info.default, str) else list(info.param_decls)
        flag = next(d for d in decls if d.startswith("--")).split("/")[0].lstrip("-").replace("-", "_")
        out[flag] = (default, getattr(info, "min", None), getattr(info, "max", None))
    return out


def _request_fields(model) -> dict:
    out = {}
    for name, f in model.model_fields.items():
        lo = next((m.ge for m in f.metadata if hasattr(m, "ge")), None)
        hi = next((m.le for m in f.metadata if hasattr(m, "le")), None)
        out[name] = (None if f.is_required() else f.default, lo, hi)
    return out


@pytest.mark.parametrize("module, request_model", [("plan", rq.PlanRequest), ("recommend", rq.RecommendRequest),
                                                   ("compare", rq.CompareRequest)])
def test_request_fields_are_the_flags_with_their_defaults_and_bounds(module, request_model):
    import importlib

    cli_module = importlib.import_module(f"planner.cli.{module}")
    flags = _cli_options(getattr(cli_module, f"{module}_command"))
    for name in rq.CLI_ONLY:
        flags.pop(name, None)
    flags = {k: (None if v[0] is ... else v[0], v[1], v[2]) for k, v in flags.items()}
    if module == "plan":
        flags["offload"] = ("none", None, None)
    assert _request_fields(request_model) == flags


def test_the_web_stage_never_imports_the_command_line():
    from pathlib import Path

    import planner.web

    for path in Path(planner.web.__file__).parent.glob("*.py"):
        assert "planner.cli" not in path.read_text(), path.name


def test_the_command_line_does_not_load_the_web_server_until_asked():
    code = ("import sys, planner.cli\n"
            "planner.cli.run(planner.cli.app, ['plan', '-m', 'llama3.1-8b', '-g', 'rtx4090', '--json'])\n"
            "print(sorted(m for m in ('starlette', 'uvicorn', 'httpx') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_a_non_loopback_host_warns_that_there_is_no_authentication():
    proc = subprocess.Popen([sys.executable, "-m", "planner", "web", "--host", "0.0.0.0", "--port", "0"],
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stderr.readline(), proc.stderr.readline()]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert "no authentication" in lines[0]
    assert lines[1].startswith("planner web: http://0.0.0.0:")


def test_loopback_hosts_are_recognised():
    from planner.web.server import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.10", "::", "example.org"))


def test_a_port_in_use_is_one_line_and_exit_2(cli):
    from planner.web.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        r = cli("web", "--port", taken.getsockname()[1])
    finally:
        taken.close()
    assert r.code == 2 and r.err_lines[0].startswith("error: cannot listen on 127.0.0.1:")
