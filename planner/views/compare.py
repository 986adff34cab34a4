"""The text view of `compare`: one row per device."""

from __future__ import annotations

from planner.views.text import num, seconds, table, yes_no


def table_rows(rows) -> list[list]:
    return [[r.gpu, f"{r.memory_gib:.0f}", yes_no(r.fits), r.best_quant or "-", r.kv_dtype or "-",
             num(r.decode_tok_s), seconds(r.ttft_s), f"{r.max_ctx:,}" if r.max_ctx else "-",
             r.max_concurrency or "-", r.num_gpus_needed or "-",
             f"${r.price_per_tok_s:,.1f}" if r.price_per_tok_s is not None else "-",
             f"${r.usd_per_million_tokens:,.3f}" if r.usd_per_million_tokens is not None else "-",
             num(r.energy_kwh_per_million_tokens, 3),
             f"{r.constraint}: {r.reason}" if r.reason else ""] for r in rows]


HEADERS = ["device", "GiB", "fits", "best quant", "kv", "tok/s", "TTFT", "max ctx", "seqs at ctx", "GPUs",
           "USD per tok/s", "USD/Mtok", "kWh/Mtok", "why not"]


def quality_note(min_quality: str | None, quant: str | None) -> str:
    if quant:
        return f"format {quant} as given"
    floor = (min_quality or "q4_k_m").lower()
    return "any format" if floor == "any" else f"formats of quality class {floor} or better (--min-quality)"


def text(rows, model: str, ctx: int, engine: str, concurrency: int, min_quality: str | None = None,
         quant: str | None = None) -> str:
    head = (f"{model} with {engine}: ctx {ctx:,}, concurrency {concurrency}; up to 8 GPUs, no host offload; "
            f"{quality_note(min_quality, quant)}")
    foot = ("USD/Mtok and kWh/Mtok: cited on-demand price per GPU-hour and board power over the aggregate decode "
            "speed (docs/fleet.md)")
    return "\n".join([head, "", table(table_rows(rows), HEADERS), "", foot])
