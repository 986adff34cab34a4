"""The page in a real browser (headless Chromium driven by Playwright): the numbers it shows are the ones
`plan --json` prints for the same inputs, bad input shows the command line's error line, a shared link
restores the inputs, and the page asks nothing of any server but its own.

Needs Debian's ``chromium`` and ``pip install playwright`` (.ci/run installs both); skipped without them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import threading
import time

import pytest

CHROMIUM = os.environ.get("PLANNER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if os.environ.get("CI"):  # CI installs the browser (.ci/run): there a missing one is a failure, not a skip
    assert CHROMIUM is not None, "CI must install Debian's chromium for the browser tests"
    import playwright.sync_api  # noqa: F401
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need `pip install playwright`")
if CHROMIUM is None:
    pytest.skip("no chromium binary (apt-get install -y chromium); the browser tests need one",
                allow_module_level=True)

from planner.views.text import gib, num, seconds
from planner.web.server import bind, make_server, url_of


@pytest.fixture(scope="module")
def server_url():
    sock = bind("127.0.0.1", 0)
    server = make_server(sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start"
    yield url_of(sock).rstrip("/")
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server_url):
    """A fresh page whose every request is recorded; anything not for the server is aborted and, at the
    end of the test, reported as a failure."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    outside: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith(server_url + "/"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(15_000)
    yield pg
    context.close()
    assert outside == [], f"the page asked other servers: {outside}"
    assert errors == [], f"script errors: {errors}"


def _table(pg, selector: str) -> list[list[tuple[str, str | None]]]:
    """(text, data-value) of every cell of every row."""
    return pg.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => [c.textContent.trim(), c.dataset.value ?? null]))")


def _loaded(pg) -> None:
    pg.wait_for_selector("#quant-table tbody tr")
    pg.wait_for_selector("#speed svg circle")
    pg.wait_for_function("() => !document.querySelector('#plan-title').classList.contains('busy')")


def test_the_quant_table_shows_what_plan_json_prints(page, server_url, cli):
    page.goto(f"{server_url}/?model=llama3.1-8b&gpu=rtx4090&ctx=4096")
    _loaded(page)
    expected = json.loads(cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "--ctx", "4096", "--json").out)
    rows = _table(page, "#quant-table")
    assert [r[0][0] for r in rows] == [e["quant"] for e in expected]
    for row, e in zip(rows, expected):
        m, p = e["memory"], e["performance"]
        raw = [m["weights_bytes"], m["device_weights_bytes"], m["kv_cache_bytes"], m["overhead_bytes"],
               m["total_bytes"], m["device_bytes"], m["fits"], m["headroom_bytes"], p["decode_tok_s"], p["ttft_s"],
               p["e2e_s"]]
        shown = [gib(x) for x in raw[:6]] + ["yes" if m["fits"] else "NO", gib(raw[7]), num(raw[8]),
                                            seconds(raw[9]), seconds(raw[10])]
        assert [c[0] for c in row[1:]] == shown  # the command line's own formatting
        assert [json.loads(c[1]) for c in row[1:]] == raw  # and the exact values behind it


def test_a_picked_quant_shows_what_plan_json_prints_for_it(page, server_url, cli):
    page.goto(f"{server_url}/?model=llama3.1-8b&gpu=rtx4090&ctx=4096")
    _loaded(page)
    page.click("#quant-table tr[data-quant='q4_k_m']")
    page.wait_for_function("() => document.querySelector('#mem-sub').textContent.startsWith('q4_k_m')")
    page.wait_for_selector("#quant-table tr.selected[data-quant='q4_k_m']")
    command = page.text_content("#cli")
    assert command == ("plan --model llama3.1-8b --gpu rtx4090 --engine llama.cpp --quant q4_k_m --ctx 4096 "
                       "--prompt 512 --gen 256")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server_url)
    page.click("#copy")
    page.wait_for_selector("#copy:has-text('Copied')")
    assert page.evaluate("() => navigator.clipboard.readText()") == command
    printed = cli(*shlex.split(command)[1:], "--json", typer_app=_plan_app())
    e = json.loads(printed.out)
    kpis = page.eval_on_selector_all("#kpis .v", "vs => vs.map(v => [v.textContent, v.dataset.value])")
    assert kpis == [["yes", "true"], [num(e["performance"]["decode_tok_s"]), str(e["performance"]["decode_tok_s"])],
                    [seconds(e["performance"]["ttft_s"]), str(e["performance"]["ttft_s"])],
                    [seconds(e["performance"]["e2e_s"]), str(e["performance"]["e2e_s"])],
                    [num(e["performance"]["aggregate_tok_s"]), str(e["performance"]["aggregate_tok_s"])]]
    memory = page.eval_on_selector_all("#memlist span[data-value]", "s => s.map(x => Number(x.dataset.value))")
    m = e["memory"]
    assert memory == [m["device_weights_bytes"], m["kv_cache_bytes"], *m["overhead"].values(), m["total_bytes"],
                      m["device_bytes"], *([m["host_bytes"]] if m["host_bytes"] else [])]
    # the speed chart's point at 4096 tokens is `plan` with the context full
    page.wait_for_function("() => document.querySelector('#speed-sub').textContent.startsWith('q4_k_m')")
    point = float(page.get_attribute("#speed circle[data-ctx='4096']", "data-tok-s"))
    full = json.loads(cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "-q", "q4_k_m", "--ctx", "4096",
                          "--prompt", "4095", "--gen", "1", "--json").out)
    assert point == full["performance"]["decode_tok_s_first"]


def _plan_app():
    from planner.cli.plan import plan_app

    return plan_app


def test_bad_input_shows_the_command_lines_error(page, server_url, cli):
    page.goto(f"{server_url}/?model=llama3.1-8b&gpu=rtx4090")
    _loaded(page)
    page.fill("#ctx", "0")
    page.wait_for_selector("#error.show")
    printed = cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "--ctx", "0")
    assert "error: " + page.text_content("#error") == printed.err_lines[0]
    page.fill("#ctx", "4096")
    page.wait_for_selector("#error", state="hidden")
    page.fill("#model", "llama3.1-8x")
    page.press("#model", "Escape")
    page.locator("#model").blur()
    page.wait_for_selector("#error.show")
    assert page.text_content("#error") == ("unknown model 'llama3.1-8x'; did you mean: llama3.1-8b, llama3-8b, "
                                           "llama3.1-70b?")


def test_a_shared_link_restores_the_inputs(page, server_url):
    link = (f"{server_url}/?model=qwen2.5-7b&gpu=a100-80gb-sxm&ctx=16384&prompt=2048&gen=512&engine=vllm"
            "&num_gpus=2&kv_dtype=fp8&batch=4")
    page.goto(link)
    _loaded(page)
    values = {f: page.input_value(f"#{f}") for f in
              ("model", "gpu", "ctx", "prompt", "gen", "engine", "num_gpus", "kv_dtype", "batch")}
    assert values == {"model": "qwen2.5-7b", "gpu": "a100-80gb-sxm", "ctx": "16384", "prompt": "2048", "gen": "512",
                      "engine": "vllm", "num_gpus": "2", "kv_dtype": "fp8", "batch": "4"}
    assert "qwen2.5-7b on 2 × a100-80gb-sxm" in page.text_content("#plan-title")
    # changing a field rewrites the link, and the rewritten link restores that change
    page.fill("#ctx", "32768")
    page.wait_for_function("() => location.search.includes('ctx=32768')")
    page.goto(page.url)
    page.wait_for_selector("#quant-table tbody tr")
    assert page.input_value("#ctx") == "32768"


def test_the_model_picker_searches_ids_and_aliases(page, server_url):
    page.goto(f"{server_url}/")
    _loaded(page)
    page.fill("#gpu", "4090")
    options = page.eval_on_selector_all(".picker li[data-i]", "lis => lis.map(l => l.textContent)")
    assert options and options[0].startswith("rtx4090")
    page.press("#gpu", "Enter")
    assert page.input_value("#gpu") == "rtx4090"


def test_the_recommend_and_compare_tabs_show_what_the_commands_print(page, server_url, cli):
    page.goto(f"{server_url}/?tab=recommend&model=llama3.1-8b&gpu=rtx4090&ctx=8192&min_tok_s=40")
    page.wait_for_selector("#rec-table tbody tr td[data-value]")
    assert page.text_content("#cli") == ("planner recommend --model llama3.1-8b --gpu rtx4090 --engine llama.cpp "
                                         "--min-ctx 8192 --prompt 512 --gen 256 --min-tok-s 40")
    r = json.loads(cli("recommend", "-m", "llama3.1-8b", "-g", "rtx4090", "--min-ctx", "8192", "--min-tok-s", "40",
                       "--json").out)
    rows = _table(page, "#rec-table")
    assert [(row[1][0], row[2][0], json.loads(row[7][1])) for row in rows] == [
        (x["quant"], x["kv_dtype"], x["plan"]["performance"]["decode_tok_s"]) for x in r["recommendations"]]

    page.click("nav button[data-tab='compare']")
    page.fill("#gpus", "rtx4090,h100-sxm")
    page.wait_for_function("() => document.querySelectorAll('#cmp-table tbody tr').length === 2")
    c = json.loads(cli("compare", "-m", "llama3.1-8b", "--gpus", "rtx4090,h100-sxm", "--ctx", "8192",
                       "--min-tok-s", "40", "--json").out)
    rows = _table(page, "#cmp-table")
    assert [(row[0][0], row[3][0], json.loads(row[5][1])) for row in rows] == [
        (x["gpu"], x["best_quant"], x["decode_tok_s"]) for x in c["rows"]]
