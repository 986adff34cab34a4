"""The `--json` documents of plan, recommend, compare, models and gpus, as plain data.

One place builds them so that the command line (``--json``) and the web API (planner.web) answer with
the same keys and values; ``text.to_json`` turns any of them into the text both print.
"""

from __future__ import annotations

from collections.abc import Sequence


def plan_document(estimates: Sequence, quant_given: bool) -> dict | list:
    """`plan --json`: one estimate object when a quant was named, else a list with one per quant."""
    if quant_given:
        return estimates[0].model_dump(mode="json")
    return [e.model_dump(mode="json") for e in estimates]


def recommend_document(result) -> dict:
    """`recommend --json`: the whole RecommendResult."""
    return result.model_dump(mode="json")


def compare_document(rows: Sequence) -> dict:
    """`compare --json`: ``{"rows": [...]}``, one row per device in the requested order."""
    return {"rows": [r.model_dump(mode="json") for r in rows]}


def model_rows() -> list[dict]:
    """`models --json`: one row per catalog model with its parameter counts and trained context."""
    from planner.spec import catalog

    rows = []
    models = catalog.models()
    for spec in models.items.values():
        counts = models.derived(spec.id)  # from the catalog index: counting walks every tensor
        rows.append({"id": spec.id, "name": spec.name, "aliases": list(spec.aliases), "params": counts["params"],
                     "active_params": counts["active_params"], "max_context": spec.architecture.max_context,
                     "family": spec.architecture.family.value})
    return rows


def gpu_rows() -> list[dict]:
    """`gpus --json`: one row per hardware profile (GPUs, unified-memory devices, host memory)."""
    from planner.spec import catalog

    return [{"id": hw.id, "name": hw.name, "aliases": list(hw.aliases), "vendor": hw.vendor.value,
             "kind": hw.kind.value, "memory_bytes": hw.memory_bytes,
             "bandwidth_bytes_per_s": hw.bandwidth_bytes_per_s,
             "launch_usd": hw.price.launch_usd if hw.price else None}
            for hw in catalog.hardware().items.values()]
