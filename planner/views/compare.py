"""The text view of `compare`: one row per device."""

from __future__ import annotations

from planner.views.text import num, seconds, table, yes_no


def table_rows(rows) -> list[list]:
    return [[r.gpu, f"{r.memory_gib:.0f}", yes_no(r.fits), r.best_quant or "-", r.kv_dtype or "-",
             num(r.decode_tok_s), seconds(r.ttft_s), f"{r.max_ctx:,}" if r.max_ctx else "-",
             r.max_concurrency or "-", r.num_gpus_needed or "-",
             f"${r.price_per_tok_s:,.1f}" if r.price_per_tok_s is not None else "-",
             f"{r.constraint}: {r.reason}" if r.reason else ""] for r in rows]


HEADERS = ["device", "GiB", "fits", "best quant", "kv", "tok/s", "TTFT", "max ctx", "seqs at ctx", "GPUs",
           "USD per tok/s", "why not"]


def text(rows, model: str, ctx: int, engine: str, concurrency: int) -> str:
    head = f"{model} with {engine}: ctx {ctx:,}, concurrency {concurrency}; up to 8 GPUs, no host offload"
    return "\n".join([head, "", table(table_rows(rows), HEADERS)])
