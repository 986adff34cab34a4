"""Files of measurements and results: llama-bench JSON/JSONL, validate-format CSVs, calibration files
and deployment files (through `planner check`'s public CLI), with values at the edges of their types;
and the files planner writes (--plot, --out) pointed at folders, devices and FIFOs."""

from __future__ import annotations

import copy
import json
import os

import yaml
from hypothesis import given
from hypothesis import strategies as st

from _contract import ADVERSARIAL, WORK, contract, fresh

# The example of ggml-org/llama.cpp tools/llama-bench/README.md ("Output formats"), trimmed to the
# fields planner reads: Qwen2.5-7B-Instruct Q4_K_M on an RTX 4080, pp512 and tg128.
BENCH_ROW = {"model_type": "qwen2 7B Q4_K - Medium", "model_n_params": 7615616512,
             "gpu_info": "NVIDIA GeForce RTX 4080", "n_gpu_layers": 99, "type_k": "f16", "n_depth": 0}
BENCH = [{**BENCH_ROW, "n_prompt": 512, "n_gen": 0, "avg_ts": 7100.0},
         {**BENCH_ROW, "n_prompt": 0, "n_gen": 128, "avg_ts": 118.9}]
EDGE = st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30, 1e308, 5e-324, 0.5, True, False, None, "512", "",
                        [], {}, "a\x01b", "x" * 3000])
RAW_CONSTANTS = st.sampled_from([None, "NaN", "Infinity", "-Infinity"])


def _bench_text(rows, jsonl: bool, constant: str | None) -> str:
    text = "\n".join(json.dumps(r) for r in rows) if jsonl else json.dumps(rows)
    return text.replace("7100.0", constant) if constant else text


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=40)
@given(changes=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(sorted(BENCH[0]) + ["n_gen"]), EDGE),
                        max_size=3),
       jsonl=st.booleans(), constant=RAW_CONSTANTS, repeat=st.sampled_from([1, 2, 50]))
def test_llama_bench_files_keep_the_contract(changes, jsonl, constant, repeat):
    rows = copy.deepcopy(BENCH)
    for i, key, value in changes:
        rows[i][key] = value
    path = fresh("bench.json")
    path.write_text(_bench_text(rows * repeat, jsonl, constant))
    contract(["calibrate", "--from-llama-bench", path, "--out", path.with_name("cal.json"), "--json"])


def test_llama_bench_rows_with_zero_tokens_are_refused_with_their_line():
    path = fresh("bench.jsonl")
    path.write_text(_bench_text([BENCH[0], {**BENCH_ROW, "n_prompt": 0, "n_gen": 0, "avg_ts": 5.0}], True, None))
    outcome = contract(["calibrate", "--from-llama-bench", path, "--json"])
    assert outcome.code == 2 and f"{path}:2: " in outcome.err and "no tokens" in outcome.err


CSV_HEADER = "engine,model,quant,gpu,num_gpus,batch,prompt_tokens,gen_tokens,decode_tok_s,prefill_tok_s,source"
CSV_ROWS = ["llama.cpp,llama3-8b,q4_k_m,rtx3070,1,1,0,512,72.79,,s",
            "llama.cpp,llama3-8b,q4_k_m,rtx3070,1,1,512,0,,2402.51,s",
            "llama.cpp,llama3-8b,q4_k_m,rtx3070,1,1,0,4096,67.01,,s"]
CELLS = st.sampled_from(["0", "-1", "1", "3", "1e308", "inf", "nan", "99999999999999999999", "", "1.5", "true",
                         "vllm", "torch", "fp8", "h100", "x" * 3000, '"a\nb"', "\x00", "a,b"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=40)
@given(changes=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10), CELLS), max_size=3),
       command=st.sampled_from(["validate", "calibrate"]), repeat=st.sampled_from([1, 3, 100]))
def test_measurement_csvs_keep_the_contract(changes, command, repeat):
    rows = [r.split(",") for r in CSV_ROWS]
    for i, column, value in changes:
        rows[i][column] = value
    path = fresh("m.csv")
    path.write_text("\n".join([CSV_HEADER, *(",".join(r) for r in rows * repeat)]) + "\n")
    if command == "validate":
        contract(["validate", "--data", path, "--json"])
    else:
        contract(["calibrate", "--from-csv", path, "--out", path.with_name("cal.json"), "--json"])


def _calibration(tmp) -> dict:
    path = tmp.with_name("base.json")
    bench = tmp.with_name("bench.json")
    bench.write_text(json.dumps(BENCH))
    outcome = contract(["calibrate", "--from-llama-bench", bench, "--out", path, "--json"])
    assert outcome.code == 0, outcome.err
    return json.loads(path.read_text())


CALIBRATION = None
CAL_FIELDS = ["fit_median_abs_pct_error", "n_fit", "schema_version", "device_key", "engine",
              ("efficiency", "kv_bandwidth"), ("efficiency", "step_overhead_s"), ("efficiency", "error_band"),
              ("efficiency", "weight_bandwidth"), ("efficiency", "compute")]


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=30)
@given(field=st.sampled_from(CAL_FIELDS),
       value=st.one_of(EDGE, st.sampled_from([[2.0, 0.5], [0.5, 2.0], {"float": -1.0}, {"float": 2.0}, {},
                                              "m3-max", "rtx4090"])),
       gpu=st.sampled_from(["rtx4080", "rtx4090"]))
def test_calibration_files_keep_the_contract(field, value, gpu):
    global CALIBRATION
    path = fresh("cal.json")
    CALIBRATION = CALIBRATION or _calibration(path)
    data = copy.deepcopy(CALIBRATION)
    node, key = (data, field) if isinstance(field, str) else (data[field[0]], field[1])
    node[key] = value
    path.write_text(json.dumps(data))
    outcome = contract(["plan", "-m", "qwen2.5-7b", "-g", gpu, "-q", "q4_k_m", "--calibration", path, "--json"])
    if gpu != data["device_key"] and outcome.code != 2:
        raise AssertionError("a calibration for another device was applied without a word")


DEPLOY = {"name": "chat", "model": "llama3.1-8b", "gpu": "rtx4090", "engine": "llama.cpp", "quant": "q4_k_m",
          "ctx": 8192, "concurrency": 1, "slo": {"prompt_tokens": 1024, "gen_tokens": 512, "min_decode_tok_s": 10}}
DEPLOY_FIELDS = st.sampled_from(["name", "model", "gpu", "engine", "quant", "ctx", "concurrency", "num_gpus",
                                 ("slo", "prompt_tokens"), ("slo", "gen_tokens"), ("slo", "min_decode_tok_s"),
                                 ("slo", "max_ttft_s")])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=25)
@given(changes=st.lists(st.tuples(DEPLOY_FIELDS, st.one_of(EDGE, st.sampled_from(
           [float("inf"), float("nan"), "x |\n| ok | forged", "<a>&\"'", 64, 3, "vllm", "fp8"]))), max_size=2),
       count=st.sampled_from([1, 3]), output=st.sampled_from([["--json"], ["--markdown"], []]))
def test_deployment_files_through_check_keep_the_contract(changes, count, output):
    deployment = copy.deepcopy(DEPLOY)
    for field, value in changes:
        node, key = (deployment, field) if isinstance(field, str) else (deployment[field[0]], field[1])
        node[key] = value
    path = fresh("deploy.yaml")
    path.write_text(yaml.safe_dump({"deployments": [{**deployment, "name": f"{deployment['name']}{i}"}
                                                    if isinstance(deployment["name"], str) else deployment
                                                    for i in range(count)]}))
    contract(["check", path, *output])


FIFO = WORK / "out-fifo"
os.mkfifo(FIFO)
TARGETS = st.sampled_from(["/dev/null", str(FIFO), str(WORK), str(WORK) + "/", str(WORK / "missing" / "x.png"),
                           "", "plot", "plot.svg", "plot.bogus"])


@ADVERSARIAL.__class__(ADVERSARIAL, max_examples=12)
@given(target=TARGETS, command=st.sampled_from(["plan", "compare", "calibrate"]))
def test_output_files_are_written_only_as_regular_files(target, command):
    if target in ("plot", "plot.svg", "plot.bogus"):
        target = str(fresh(target))
    if command == "plan":
        args = ["plan", "-m", "qwen2.5-0.5b", "-g", "rtx4090", "-q", "q4_k_m", "--plot", target]
    elif command == "compare":
        args = ["compare", "-m", "qwen2.5-0.5b", "--gpus", "rtx4090", "-q", "q4_k_m", "--plot", target]
    else:
        bench = fresh("bench.json")
        bench.write_text(json.dumps(BENCH))
        args = ["calibrate", "--from-llama-bench", bench, "--out", target, "--json"]
    contract(args)
    assert FIFO.is_fifo() and WORK.is_dir()
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert not os.path.exists(str(WORK) + ".png") and not os.path.exists("/dev/null.png")
