"""Markdown reports (GitHub-flavoured tables) for pull-request comments: plan, recommend, compare, check."""

from __future__ import annotations

from tabulate import tabulate

from planner.views.text import gib, num, seconds


def _table(rows, headers) -> str:
    return tabulate(list(rows), headers=list(headers), tablefmt="github", disable_numparse=True)


def _mark(ok: bool) -> str:
    return "✅" if ok else "❌"


def plan(estimates) -> str:
    e0 = estimates[0]
    gpus = f"{e0.num_gpus} × {e0.gpu}" if e0.num_gpus > 1 else e0.gpu
    rows = [[e.quant, e.kv_dtype, _mark(e.memory.fits), gib(e.memory.total_bytes), gib(e.memory.device_bytes),
             gib(e.memory.headroom_bytes), num(e.performance.decode_tok_s), seconds(e.performance.ttft_s),
             seconds(e.performance.e2e_s)] for e in estimates]
    out = [f"### `{e0.model}` on {gpus} ({e0.engine})", "",
           f"ctx {e0.ctx:,} × {e0.batch} sequences, prompt {e0.prompt_tokens:,}, gen {e0.gen_tokens:,}", "",
           _table(rows, ["quant", "kv", "fits", "needs GiB", "usable GiB", "headroom GiB", "decode tok/s", "TTFT",
                         "e2e"])]
    warnings = sorted({w for e in estimates for w in e.warnings})
    out += [""] + [f"> ⚠️ {w}" for w in warnings] if warnings else []
    return "\n".join(out)


def recommend(r) -> str:
    out = [f"### Recommended settings: `{r.model}` on {r.gpu} ({r.engine}, prefer {r.prefer})", ""]
    if r.recommendations:
        rows = [[i + 1, x.quant, x.kv_dtype, f"{x.ctx:,}", x.concurrency, x.num_gpus, x.offload_layers,
                 num(x.plan.performance.decode_tok_s), seconds(x.plan.performance.ttft_s),
                 seconds(x.plan.performance.e2e_s), gib(x.plan.memory.headroom_bytes)]
                for i, x in enumerate(r.recommendations)]
        out.append(_table(rows, ["#", "quant", "kv", "ctx", "seqs", "GPUs", "host layers", "tok/s", "TTFT", "e2e",
                                 "headroom GiB"]))
    else:
        out.append(f"**No configuration fits and meets the targets.** Binding constraint: "
                   f"`{r.binding_constraint}` ({r.binding_message})")
    if r.rejected:
        out += ["", "<details><summary>Rejected</summary>", "",
                _table([[x.quant, x.kv_dtype, x.constraint, x.message] for x in r.rejected],
                       ["quant", "kv", "constraint", "why"]), "", "</details>"]
    from planner.views.recommend import answers

    out += [""] + [f"- {a}" for a in answers(r)]
    if r.recommendations:
        for name, cmd in r.recommendations[0].commands.items():
            if cmd:
                out += ["", f"**{name}**", "", "```sh", cmd, "```"]
    return "\n".join(out)


def compare(rows, model: str, ctx: int, engine: str) -> str:
    from planner.views.compare import HEADERS, table_rows

    body = table_rows(rows)
    for row, r in zip(body, rows):
        row[2] = _mark(r.fits)
    return "\n".join([f"### `{model}` across devices (ctx {ctx:,}, {engine})", "", _table(body, HEADERS)])


def check(result) -> str:
    """Names come from files in pull requests: every one goes through markdown_cell (one line, `|`, HTML
    and @mentions escaped), so a name cannot add a row or ping anyone."""
    from planner.check.report import markdown_cell as cell

    failed = sum(not d.passed for d in result.deployments)
    head = (f"### planner check: {'✅ all deployments pass' if not failed else f'❌ {failed} failing'} "
            f"(`{cell(result.file).replace('`', '')}`)")
    rows = []
    for d in result.deployments:
        e = d.plan
        rows.append([_mark(d.passed), cell(d.name), cell(f"{e.model} {e.quant}"), cell(f"{e.num_gpus} × {e.gpu}"),
                     cell(e.engine), f"{e.ctx:,} × {e.batch}", gib(e.memory.total_bytes),
                     num(e.performance.decode_tok_s), seconds(e.performance.ttft_s), seconds(e.performance.e2e_s)])
    out = [head, "", _table(rows, ["", "deployment", "model", "GPUs", "engine", "ctx", "GiB", "tok/s", "TTFT",
                                   "e2e"])]
    fails = [f"- **{cell(d.name)}**: {cell(c.message)}" for d in result.deployments for c in d.failures]
    if fails:
        out += ["", "Failures:", *fails]
    return "\n".join(out)
