"""Hostile spec files (a copy of a shipped hardware or model YAML with one field replaced by a value at
the edge of its type) through plan, recommend and compare: the contract holds and bad values are
refused by the schema, never turned into an OverflowError or an impossible result."""

from __future__ import annotations

import copy

import yaml
from hypothesis import given
from hypothesis import strategies as st

from _contract import ADVERSARIAL, contract, fresh
from planner.spec.paths import HARDWARE_DIR, MODEL_SPECS_DIR

HW = yaml.safe_load((HARDWARE_DIR / "rtx4090.yaml").read_text())
MODEL = yaml.safe_load((MODEL_SPECS_DIR / "qwen2.5-0.5b.yaml").read_text())

EDGE = st.sampled_from([
    0, -1, 1, 2, 3, 7, 2**31, 2**53 + 1, 2**63, 2**64 + 1, 10**30, 10**400,
    1e308, 1.7976931348623157e308, float("inf"), float("-inf"), float("nan"), 1e-308, 5e-324, -0.0, 0.5,
    True, False, "24", "", "1e308", None, [], {}, [1, 2], "a\x1b[2Jb",
])


def _leaves(data, prefix=()):
    """Paths of every scalar leaf (sources and ids included: they are inputs too)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _leaves(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _leaves(value, (*prefix, i))
    else:
        yield prefix


def _with(data: dict, path: tuple, value) -> dict:
    out = copy.deepcopy(data)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def _write(data: dict, name: str):
    path = fresh(name)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=False))
    return path


HW_FIELDS = st.sampled_from(sorted(_leaves(HW), key=str))
MODEL_FIELDS = st.sampled_from(sorted(_leaves(MODEL), key=str))
EXTRA_MODEL_FIELDS = st.sampled_from([("architecture", k) for k in (
    "n_kv_heads", "head_dim", "sliding_window", "sliding_window_period", "max_context", "n_layers")])


@ADVERSARIAL
@given(field=HW_FIELDS, value=EDGE, json_out=st.booleans())
def test_plan_with_a_hostile_hardware_file_keeps_the_contract(field, value, json_out):
    gpu = _write(_with(HW, field, value), "gpu.yaml")
    contract(["plan", "-m", "qwen2.5-0.5b", "-g", gpu, "-q", "q4_k_m", *(["--json"] if json_out else [])])


@ADVERSARIAL
@given(field=st.one_of(MODEL_FIELDS, EXTRA_MODEL_FIELDS), value=EDGE)
def test_plan_with_a_hostile_model_file_keeps_the_contract(field, value):
    model = _write(_with(MODEL, field, value), "model.yaml")
    contract(["plan", "-m", model, "-g", "rtx4090", "--json"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=25)
@given(target=st.one_of(st.tuples(st.just("gpu"), HW_FIELDS), st.tuples(st.just("model"), EXTRA_MODEL_FIELDS)),
       value=EDGE)
def test_recommend_with_a_hostile_file_keeps_the_contract(target, value):
    kind, field = target
    if kind == "gpu":
        files = ["-m", "qwen2.5-0.5b", "-g", _write(_with(HW, field, value), "gpu.yaml")]
    else:
        files = ["-m", _write(_with(MODEL, field, value), "model.yaml"), "-g", "rtx4090"]
    contract(["recommend", *files, "-q", "q4_k_m", "--json"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=10)
@given(value=EDGE, field=EXTRA_MODEL_FIELDS)
def test_compare_with_a_hostile_model_file_keeps_the_contract(value, field):
    model = _write(_with(MODEL, field, value), "model.yaml")
    contract(["compare", "-m", model, "--gpus", "rtx4090,h100", "-q", "q4_k_m", "--json"])


def test_a_trained_context_of_10_to_the_8_costs_seconds_not_minutes():
    """A model claiming 10^8 tokens of context: the search grid is sized by memory (was 48 s, 3.3 GB)."""
    model = _write(_with(_with(MODEL, ("architecture", "max_context"), 100_000_000), ("id",), "qwen2.5-0.5b"),
                   "qwen2.5-0.5b.yaml")
    outcome = contract(["recommend", "-m", model, "-g", "rtx4090", "--json"])
    assert outcome.code == 0 and outcome.seconds < 15
