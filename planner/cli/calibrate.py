"""`planner calibrate` and `planner detect`: measure the local device, or fit to measurements users bring."""

from __future__ import annotations

import sys

import typer

from planner.cli.base import guarded


def _progress():
    """A one-line progress display on stderr (a counter and the current benchmark step)."""
    state = {"n": 0}
    tty = sys.stderr.isatty()

    def note(message: str) -> None:
        state["n"] += 1
        bar = "#" * min(state["n"], 30)
        if tty:
            print(f"\r[{bar:<30}] {message[:60]:<60}", end="", file=sys.stderr, flush=True)
        else:
            print(f"[{state['n']:>3}] {message}", file=sys.stderr, flush=True)

    return note


def _heldout_split(obs: list) -> tuple[list, list]:
    if len(obs) < 3:
        return obs, []
    held = obs[2::3]
    return [o for o in obs if o not in held], held


MIN_MEASUREMENTS = 2  # llama-bench's default run: one pp and one tg test
MAX_FIT_ERROR_PCT = 25.0


def _fit_measurements(obs: list, key: str, engine: str, device_name: str, source: str):
    import numpy as np

    from planner.calibrate.store import Calibration
    from planner.physics.efficiency import default_efficiency
    from planner.errors import InputError
    from planner.calibrate.fit import error_band, fit, prediction_errors

    if len(obs) < MIN_MEASUREMENTS:
        raise InputError(f"{device_name} ({engine}): {len(obs)} measurement(s) in {source}; calibrating needs "
                         f"at least {MIN_MEASUREMENTS} (e.g. llama-bench's pp and tg tests)")
    train, held = _heldout_split(obs)
    base = default_efficiency(obs[0].deployment.engine, obs[0].deployment.hardware)
    result = fit(train, base, source)
    if result.median_abs_pct_error > MAX_FIT_ERROR_PCT:
        raise InputError(f"{device_name} ({engine}): the measurements in {source} do not fit the latency model "
                         f"(median error {result.median_abs_pct_error:.0f}% after fitting); check that they name "
                         "the right device, model and quant")
    held_dec, held_pre = prediction_errors(held, result.efficiency) if held else ([], [])
    held_errs = [abs(e) for e in held_dec + held_pre]
    band = error_band(held_dec or result.decode_errors_pct)
    return Calibration(
        device_key=key, device_name=device_name, engine=engine,
        efficiency=result.efficiency.model_copy(update={"error_band": band}),
        fit_median_abs_pct_error=result.median_abs_pct_error,
        heldout_median_abs_pct_error=float(np.median(held_errs)) if held_errs else None,
        n_fit=len(train), n_heldout=len(held), source=source,
        measurements=[{"label": o.label, "model": o.deployment.model.id, "quant": o.deployment.quant.id,
                       "decode_step_s": o.decode_step_s, "prefill_s": o.prefill_s} for o in obs],
    )


def _from_llama_bench(path: str, model: str | None, gpu: str | None) -> list:
    """One calibration fitted to a llama-bench output file (one device, engine llama.cpp)."""
    from planner.calibrate.llama_bench import observations_from_llama_bench, read_llama_bench

    obs = observations_from_llama_bench(read_llama_bench(path), model, gpu)
    hw = obs[0].deployment.hardware
    return [_fit_measurements(obs, hw.id, "llama.cpp", hw.name, f"llama-bench results in {path}")]


def _from_csv(path: str, out: str | None) -> list:
    """One calibration per device/engine pair in a measurements CSV; --out can hold only one."""
    from planner.errors import InputError
    from planner.calibrate.validate import observation, read_measurements

    groups: dict[tuple[str, str], list] = {}
    for m in read_measurements(path):
        o = observation(m)
        groups.setdefault((o.deployment.hardware.id, o.deployment.engine.value), []).append(o)
    if not groups:
        raise InputError(f"{path}: no measurements in the file")
    if out and len(groups) > 1:
        raise InputError(f"--out names one file but the measurements cover {len(groups)} device/engine pairs")
    return [_fit_measurements(obs, key, engine, obs[0].deployment.hardware.name, f"measurements in {path}")
            for (key, engine), obs in sorted(groups.items())]


def _from_benchmark(device: str, quick: bool, model: str | None, as_json: bool) -> list:
    """One calibration from this machine's built-in torch benchmark (progress on stderr unless --json)."""
    from planner.calibrate.bench import CalibrationRejected, calibrate_with_benchmark
    from planner.cli.base import EXIT_FAIL

    try:
        cal, _suite = calibrate_with_benchmark(device, quick, model, progress=None if as_json else _progress())
    except CalibrationRejected as exc:
        if not as_json and sys.stderr.isatty():
            print(file=sys.stderr)
        print(f"error: not saved: {exc}", file=sys.stderr)
        raise typer.Exit(EXIT_FAIL) from None
    if not as_json and sys.stderr.isatty():
        print(file=sys.stderr)  # end the progress line
    return [cal]


def _print_json(cals: list, paths: list) -> None:
    """The saved calibrations as JSON: one object, or a list when there are several."""
    from planner.views.text import json_text

    rows = [{**c.model_dump(mode="json", exclude={"measurements"}), "path": str(p)}
            for c, p in zip(cals, paths)]
    print(json_text(rows[0] if len(rows) == 1 else rows))


def _print_summary(cals: list, paths: list) -> None:
    """Fit quality, fitted efficiencies and file for each saved calibration."""
    for c, p in zip(cals, paths):
        e = c.efficiency
        held = "-" if c.heldout_median_abs_pct_error is None else f"{c.heldout_median_abs_pct_error:.1f}%"
        print(f"{c.device_name} ({c.device_key}), engine {c.engine}: fit on {c.n_fit} runs, "
              f"median |error| {c.fit_median_abs_pct_error:.1f}%; held-out {c.n_heldout} runs: {held}")
        bw = ", ".join(f"{k} {v:.2f}" for k, v in e.weight_bandwidth.items())
        print(f"  weight bandwidth efficiency: {bw}; KV {e.kv_bandwidth:.2f}; step overhead "
              f"{e.step_overhead_s * 1e3:.2f} ms + {e.layer_overhead_s * 1e6:.1f} us/layer")
        if c.roofs:
            r = c.roofs
            simd = "".join(f", {k} SIMD {r[f'{k}_vector_ops_per_s_per_thread'] / 1e9:.2f} G ops/s per thread"
                           for k in ("int", "float") if f"{k}_vector_ops_per_s_per_thread" in r)
            noise = c.noise or {}
            print(f"  device roofs: read {r['read_bytes_per_s'] / 1e9:.1f} GB/s{simd}; "
                  f"{len(noise.get('noisy', []))} of {len(noise.get('spreads', {}))} points noisy after "
                  f"{len(noise.get('retried', []))} retries")
        print(f"  saved to {p}")


def calibrate_command(
    device: str = typer.Option("auto", "--device", help="auto, cuda, mps or cpu"),
    quick: bool = typer.Option(False, "--quick", help="a short run (under 2 minutes on a 2-core CPU)"),
    model: str | None = typer.Option(None, "--model", help="catalog model whose layer shape to benchmark"),
    out: str | None = typer.Option(None, "--out", help="calibration file to write (default: the user cache)"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    from_llama_bench: str | None = typer.Option(None, "--from-llama-bench", help="llama-bench -o json/jsonl output"),
    from_csv: str | None = typer.Option(None, "--from-csv", help="measurements CSV in the `validate` format"),
    gpu: str | None = typer.Option(None, "--gpu", help="device of the measurements (default: from the file)"),
) -> None:
    """Measure this device with the built-in torch decode benchmark (or fit to llama-bench / CSV
    measurements) and save the fitted efficiencies; `plan` then uses them for this device."""
    from planner.calibrate import store as cal_mod
    from planner.errors import InputError

    if from_llama_bench and from_csv:
        raise InputError("give --from-llama-bench or --from-csv, not both")
    if out:
        from planner.spec.safeio import writable_target

        writable_target(out, make_parents=True)  # refuse a folder or device before measuring for minutes
    if from_llama_bench:
        cals = _from_llama_bench(from_llama_bench, model, gpu)
    elif from_csv:
        cals = _from_csv(from_csv, out)
    else:
        cals = _from_benchmark(device, quick, model, as_json)
    if out and len(cals) > 1:
        raise InputError(f"--out names one file but the measurements cover {len(cals)} device/engine pairs")
    paths = [cal_mod.save(c, out) for c in cals]
    if as_json:
        _print_json(cals, paths)
    else:
        _print_summary(cals, paths)


def detect_command(as_json: bool = typer.Option(False, "--json", help="machine-readable output")) -> None:
    """What GPU this machine has (NVML), matched to the hardware catalog; else what torch sees."""
    from planner.views.text import json_text

    from planner.spec import catalog

    from planner.views import text as render
    from planner.calibrate.detect import detect_gpus, match_profile, torch_device_summary

    result = detect_gpus()
    known = {h.id: list(h.aliases) + [h.name] for h in catalog.hardware().items.values()}
    gpus = [{**g.model_dump(mode="json"), "catalog_id": match_profile(g.name, known)} for g in result.gpus]
    fallback = None if gpus else torch_device_summary()
    if as_json:
        print(json_text({"gpus": gpus, "message": result.message,
                          "fallback": fallback.model_dump(mode="json") if fallback else None}))
        return
    if not gpus:
        print(result.message or "no NVIDIA GPU detected")
        if fallback is not None:
            print(f"torch sees: {fallback.backend} ({fallback.name}), memory {render.gib(fallback.memory_total_bytes)} GiB")
        return
    print(render.table(
        [[g["index"], g["name"], g["catalog_id"] or "-", render.gib(g["memory_total_bytes"]),
          render.gib(g["memory_free_bytes"]), g["driver_version"] or "-", g["cuda_version"] or "-",
          f"gen {g['pcie_gen']} x{g['pcie_width']}" if g["pcie_gen"] else "-"] for g in gpus],
        ["#", "name", "catalog id", "memory GiB", "free GiB", "driver", "CUDA", "PCIe"]))


def register(app: typer.Typer) -> None:
    app.command("calibrate")(guarded(calibrate_command))
    app.command("detect")(guarded(detect_command))
