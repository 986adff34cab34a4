"""Generated command lines for every command: flag values at the edges of their types, names with
control characters or 10,000 characters, paths to devices, folders and FIFOs."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from _contract import ADVERSARIAL, WORK, contract

FIFO = WORK / "fifo"
os.mkfifo(FIFO)
FOLDER = WORK / "folder"
FOLDER.mkdir()

NUMBERS = st.sampled_from(["0", "-1", "1", "2", "3", "7", "64", "1000", "4096", "131072", "100000000",
                           "99999999999999999999", "1e308", "inf", "-inf", "nan", "0.5", "-0", "1e-308", ""])
NAMES = st.sampled_from([
    "llama3.1-8b", "qwen2.5-0.5b", "rtx4090", "h100", "m3-max", "q4_k_m", "fp8", "f16", "q8_0", "vllm",
    "llama.cpp", "torch", "auto", "none", "layer", "tp", "pp", "local", "ddr5-6000-2ch", "a" * 10_000,
    "a\x1b[31mred\x07", "x\ny", "../../etc/passwd", "/dev/zero", "/dev/null", str(FIFO), str(FOLDER),
    str(FOLDER) + "/", "model.gguf", "x.yaml", "-", "",
])
VALUES = st.one_of(NUMBERS, NAMES)

PLAN_FLAGS = ["--ctx", "--batch", "--quant", "--kv-dtype", "--engine", "--prompt", "--gen", "--num-gpus",
              "--parallel", "--nodes", "--offload", "--host", "--calibration"]
SEARCH_FLAGS = ["--min-ctx", "--min-tok-s", "--max-ttft", "--max-e2e", "--prompt", "--gen", "--concurrency",
                "--headroom", "--prefer", "--kv-dtype", "--num-gpus", "--top", "--engine", "--host"]
COMPARE_FLAGS = ["--ctx", "--kv-dtype", "--engine", "--prompt", "--gen", "--concurrency", "--min-tok-s",
                 "--max-ttft", "--max-e2e", "--headroom", "--prefer", "--sort"]


def _flags(names: list[str], max_size: int):
    return st.lists(st.tuples(st.sampled_from(names), VALUES), max_size=max_size,
                    unique_by=lambda kv: kv[0]).map(lambda kvs: [x for kv in kvs for x in kv])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=150)
@given(model=st.one_of(st.just("llama3.1-8b"), NAMES), gpu=st.one_of(st.just("rtx4090"), NAMES),
       flags=_flags(PLAN_FLAGS, 4), output=st.sampled_from([[], ["--json"], ["--markdown"]]))
def test_plan_flags_keep_the_contract(model, gpu, flags, output):
    contract(["plan", "-m", model, "-g", gpu, *flags, *output])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=30)
@given(flags=_flags(SEARCH_FLAGS, 3), model=st.sampled_from(["qwen2.5-0.5b", "llama3.1-8b", "a\x01b"]))
def test_recommend_flags_keep_the_contract(flags, model):
    contract(["recommend", "-m", model, "-g", "rtx4090", "-q", "q4_k_m", *flags, "--json"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=15)
@given(flags=_flags(COMPARE_FLAGS, 3), gpus=st.sampled_from(["rtx4090,h100", "rtx4090,,", "nope", "a" * 5000]))
def test_compare_flags_keep_the_contract(flags, gpus):
    contract(["compare", "-m", "qwen2.5-0.5b", "--gpus", gpus, "-q", "q4_k_m", *flags, "--json"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=15)
@given(command=st.sampled_from(["models", "gpus"]), extra=st.lists(VALUES, max_size=2),
       json_out=st.booleans())
def test_catalog_commands_keep_the_contract(command, extra, json_out):
    contract([command, *extra, *(["--json"] if json_out else [])])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=20)
@given(device=NAMES, model=st.one_of(st.none(), NAMES), out=st.one_of(st.none(), NAMES))
def test_calibrate_device_and_out_keep_the_contract(device, model, out):
    """Only refusals are exercised here: a valid --device would run the minutes-long benchmark."""
    if device in ("auto", "cpu", "") or (device == "cuda" and out is None and model is None):
        device = "cuda-or-not"
    args = ["calibrate", "--device", device, *(["--model", model] if model else []),
            *(["--out", out] if out else []), "--json"]
    contract(args)
    assert FIFO.is_fifo() and os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def test_ctrl_c_is_exit_130_without_a_traceback(monkeypatch):
    import planner.estimate

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(planner.estimate, "plan", interrupted)
    from planner.cli import app, run

    assert run(app, ["plan", "-m", "llama3.1-8b", "-g", "rtx4090"]) == 130
