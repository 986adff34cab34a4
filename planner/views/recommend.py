"""The text view of a recommendation: targets, the ranked table, rejections, answers and launch commands."""

from __future__ import annotations

from planner.views.text import gib, num, seconds, table


def _targets(r) -> str:
    t = r.targets
    parts = [f"headroom {t.headroom_fraction:.0%}", f"ctx >= {max(t.min_ctx or 0, r.prompt_tokens + r.gen_tokens):,}"]
    if t.min_tok_s is not None:
        parts.append(f"decode >= {t.min_tok_s:g} tok/s")
    if t.max_ttft_s is not None:
        parts.append(f"TTFT <= {t.max_ttft_s:g} s")
    if t.max_e2e_s is not None:
        parts.append(f"e2e <= {t.max_e2e_s:g} s")
    return ", ".join(parts)


def text(r) -> str:
    lines = [(f"{r.model} on {r.gpu} with {r.engine}: concurrency {r.concurrency}, prompt {r.prompt_tokens:,}, "
              f"gen {r.gen_tokens:,}; prefer {r.prefer}"),
             f"targets: {_targets(r)}  ({r.candidates_evaluated:,} configurations evaluated)", ""]
    if r.recommendations:
        rows = [[i + 1, x.quant, x.kv_dtype, f"{x.ctx:,}", x.concurrency, x.num_gpus, x.offload_layers,
                 num(x.plan.performance.decode_tok_s), seconds(x.plan.performance.ttft_s),
                 seconds(x.plan.performance.e2e_s), gib(x.plan.memory.total_bytes), gib(x.plan.memory.headroom_bytes)]
                for i, x in enumerate(r.recommendations)]
        lines.append(table(rows, ["#", "quant", "kv", "ctx", "seqs", "GPUs", "host layers", "tok/s", "TTFT", "e2e",
                                  "GiB", "headroom GiB"]))
    else:
        lines.append(f"no configuration fits and meets the targets; binding constraint: {r.binding_constraint}")
        lines.append(f"  {r.binding_message}")
    if r.rejected:
        lines += ["", "rejected (closest configuration of each):"]
        lines.append(table([[x.quant, x.kv_dtype, f"{x.ctx:,}", x.num_gpus, x.offload_layers, x.constraint, x.message]
                            for x in r.rejected[:8]],
                           ["quant", "kv", "ctx", "GPUs", "host layers", "constraint", "why"]))
    lines += ["", *answers(r)]
    if r.recommendations:
        top = r.recommendations[0]
        lines += ["", f"settings for the top pick ({top.quant}, kv {top.kv_dtype}):"]
        for name, cmd in top.commands.items():
            if cmd is None:
                lines.append(f"  {name}: (cannot run this configuration)")
            else:
                lines.append(f"  {name}:")
                lines += [f"    {c}" for c in cmd.splitlines()]
    return "\n".join(lines)


def answers(r) -> list[str]:
    a = r.answers
    out = []
    if a.largest_ctx:
        c = a.largest_ctx
        out.append(f"largest context that fits: {c.ctx:,} tokens x {c.concurrency} ({c.quant}, kv {c.kv_dtype}, "
                   f"{c.num_gpus} GPU, {c.offload_layers} host layers)")
    if a.max_concurrency:
        c = a.max_concurrency
        more = "+" if a.max_concurrency_capped else ""
        out.append(f"most concurrent sequences at {a.max_concurrency_ctx:,} tokens: {c.concurrency}{more} "
                   f"({c.quant}, kv {c.kv_dtype}, {c.num_gpus} GPU, {c.offload_layers} host layers)")
    if a.max_gen_tokens is not None:
        note = f" ({a.max_gen_tokens_note})" if a.max_gen_tokens_note else ""
        out.append(f"most output tokens within {r.targets.max_e2e_s:g} s end-to-end (top pick): "
                   f"{a.max_gen_tokens:,}{note}")
    return out
