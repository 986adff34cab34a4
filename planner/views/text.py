"""Turning results into text: tables (tabulate) and JSON. All number formatting lives here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from planner.errors import InputError
from planner.units import GIB, MIB


def gib(n: float | None) -> str:
    return "-" if n is None else f"{n / GIB:.2f}"


def mib(n: float | None) -> str:
    return "-" if n is None else f"{n / MIB:,.1f}"


def num(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}f}"


def seconds(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 1:
        return f"{x * 1000:.0f} ms"
    return f"{x:.2f} s"


def json_text(data: object) -> str:
    """Strict JSON (RFC 8259) for tools that parse it: never ``NaN`` or ``Infinity`` (JavaScript's
    ``JSON.parse`` and many others reject them). A non-finite number here means an input slipped past
    its bounds, so it is reported as bad input rather than printed."""
    try:
        return json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        raise InputError("a result is not a finite number (an input is out of range); nothing printed") from None


def to_json(obj: BaseModel | Sequence[BaseModel] | dict) -> str:
    if isinstance(obj, BaseModel):
        data = obj.model_dump(mode="json")
    elif isinstance(obj, dict):
        data = {k: _dump(v) for k, v in obj.items()}
    else:
        data = [_dump(o) for o in obj]
    return json_text(data)


def _dump(v):
    if isinstance(v, BaseModel):
        return v.model_dump(mode="json")
    if isinstance(v, list):
        return [_dump(x) for x in v]
    return v


def table(rows: Iterable[Sequence], headers: Sequence[str]) -> str:
    from tabulate import tabulate  # 30 ms of imports that JSON output never needs

    return tabulate(list(rows), headers=list(headers), tablefmt="simple", disable_numparse=True)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "NO"
