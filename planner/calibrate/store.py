"""Calibrations: measured efficiencies for one device and engine, stored in the user's cache.

A calibration replaces the default efficiencies (planner/data/efficiency.yaml) when planning for the
device it was measured on; `plan` then reports ``efficiency_source: calibrated``. Files are JSON,
written atomically, and read back as untrusted input (size cap, schema validation).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from planner.physics.efficiency import Efficiency
from planner.errors import FieldError, InputError, SpecFileError, clean_name
from planner.spec import paths
from planner.spec.safeio import check_nesting, parse_json, read_text
from planner.spec.schema import HardwareProfile

MAX_CALIBRATION_BYTES = 5_000_000
LOCAL = "local"
MAX_MEASUREMENTS = 100_000


class Calibration(BaseModel):
    # defer_build: most `plan` calls find no calibration, so its validator is built only when one is read
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)

    schema_version: int = Field(default=1, ge=1, le=1, strict=True)
    device_key: str = Field(max_length=100, description="the hardware id this calibration applies to")
    device_name: str = Field(max_length=200)
    engine: str = Field(max_length=50)
    hardware: HardwareProfile | None = Field(
        default=None, description="the measured device itself, for devices not in the catalog (local CPU)")
    torch_version: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    dtype: str | None = None
    shapes: list[dict] = Field(default_factory=list)
    efficiency: Efficiency
    fit_median_abs_pct_error: float = Field(ge=0, le=1e6)
    heldout_median_abs_pct_error: float | None = Field(default=None, ge=0, le=1e6)
    n_fit: int = Field(ge=0, le=MAX_MEASUREMENTS, strict=True)
    n_heldout: int = Field(default=0, ge=0, le=MAX_MEASUREMENTS, strict=True)
    measurements: list[dict] = Field(default_factory=list, max_length=MAX_MEASUREMENTS)
    roofs: dict[str, float] = Field(
        default_factory=dict, description="device roofs the benchmark measured (bytes/s, vector ops/s, FLOP/s)")
    noise: dict = Field(default_factory=dict, description="spread of the interleaved repeats, points retried")
    source: str = Field(max_length=2000)
    created_utc: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


def cache_dir() -> Path:
    """$PLANNER_CACHE_DIR, else $XDG_CACHE_HOME/planner, else ~/.cache/planner (planner.spec.paths)."""
    return paths.cache_dir()


def default_path(device_key: str, engine: str) -> Path:
    return cache_dir() / "calibrations" / f"{device_key}--{engine}.json"


def save(cal: Calibration, path: Path | str | None = None) -> Path:
    """Write through the one safe writer (regular files only, temporary file then rename)."""
    from planner.spec.safeio import write_text_atomic

    return write_text_atomic(path or default_path(cal.device_key, cal.engine), cal.model_dump_json(indent=2),
                             make_parents=True)


def load(path: Path | str) -> Calibration:
    path = Path(path)
    text = read_text(path, MAX_CALIBRATION_BYTES)
    check_nesting(path, text)
    data = parse_json(path, text)
    try:
        return Calibration.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SpecFileError(str(path), f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None


def _hardware_key(gpu: str) -> str:
    from planner.spec import catalog

    if gpu == LOCAL:
        return LOCAL
    try:
        return catalog.load_hardware(gpu).id
    except InputError:
        return gpu


def _same_engine(measured: str, wanted) -> bool:
    """Ollama runs llama.cpp, so a llama.cpp calibration is Ollama's too (and the other way round)."""
    from planner.physics.engines import get_engine
    from planner.physics.quant import Engine

    gguf = (Engine.llama_cpp, Engine.ollama)
    got = get_engine(measured)
    return got is wanted or (got in gguf and wanted in gguf)


def _device_of(cal: Calibration) -> HardwareProfile:
    from planner.spec import catalog

    return cal.hardware if cal.hardware is not None else catalog.load_hardware(cal.device_key)


def efficiency_for(gpu: str, engine: str, path: str | None) -> Efficiency | None:
    """The efficiencies ``engine`` runs at on this device: a calibration fitted for this engine (a
    llama-bench calibration is the most specific source for llama.cpp), else the device roofs of a
    torch-benchmark calibration carried over to the engine (planner.calibrate.carry), else None."""
    from planner.calibrate.carry import carried_efficiency, has_roofs
    from planner.physics.engines import get_engine

    eng = get_engine(engine)
    if path:
        cal = load(path)
        key = _hardware_key(gpu)
        if key != LOCAL and cal.device_key != key:
            raise InputError(f"calibration {path} was measured on {clean_name(cal.device_key)}, not {key}; "
                             "a calibration applies only to the device it was measured on")
        if _same_engine(cal.engine, eng):
            return cal.efficiency
        if has_roofs(cal):
            return carried_efficiency(cal, eng, _device_of(cal))
        raise InputError(f"calibration {path} was fitted for engine {cal.engine} and measured no device roofs, "
                         f"so it says nothing about {eng.value}; run `planner calibrate` for the device roofs")
    key = _hardware_key(gpu)
    for name in dict.fromkeys([eng.value, "llama.cpp" if eng.value == "ollama" else eng.value]):
        candidate = default_path(key, name)
        if candidate.is_file():
            return load(candidate).efficiency
    measured = default_path(key, "torch")
    if measured.is_file():
        cal = load(measured)
        if has_roofs(cal):
            return carried_efficiency(cal, eng, _device_of(cal))
    return None


def local_hardware() -> HardwareProfile:
    """The device of the newest cached local calibration (``--gpu local``)."""
    folder = cache_dir() / "calibrations"
    found = sorted(folder.glob(f"{LOCAL}--*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    for path in reversed(found):
        cal = load(path)
        if cal.hardware is not None:
            return cal.hardware
    raise FieldError("no local calibration found; run `planner calibrate` first (or name a {gpu})", "gpu")


def local_device(calibration: str | None = None) -> HardwareProfile:
    """What ``--gpu local`` means: the device a given calibration file was measured on, else the detected
    NVIDIA GPU's catalog profile, else the device of the newest local calibration."""
    from planner.calibrate.detect import detect_gpus, match_profile
    from planner.spec import catalog

    if calibration:
        cal = load(calibration)
        return cal.hardware if cal.hardware is not None else catalog.load_hardware(cal.device_key)
    detected = detect_gpus()
    if detected.gpus:
        known = {h.id: list(h.aliases) + [h.name] for h in catalog.hardware().items.values()}
        matched = match_profile(detected.gpus[0].name, known)
        if matched is None:
            raise InputError(f"detected '{detected.gpus[0].name}' is not in the hardware catalog; pass a YAML profile")
        return catalog.load_hardware(matched)
    return local_hardware()


def is_local(gpu: str) -> bool:
    return gpu.strip().lower() == LOCAL
