"""A built wheel is the whole product: catalogs, calibration defaults, measurements and the benchmark
kernels ship inside the package, and an installed planner plans from any folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(out), str(ROOT)], check=True, capture_output=True)
    (found,) = out.glob("planner-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    return target


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def test_wheel_carries_every_catalog_file_and_the_kernels(wheel):
    names = _names(wheel)
    for f in (ROOT / "model_specs").glob("*.yaml"):
        assert f"planner/data/models/{f.name}" in names
    for f in (ROOT / "hardware_profiles").glob("*.yaml"):
        assert f"planner/data/hardware/{f.name}" in names
    for f in (ROOT / "kernels").glob("*.py"):
        assert f"planner/kernels/{f.name}" in names
    assert {"planner/data/efficiency.yaml", "planner/data/measurements.csv"} <= names


def test_wheel_does_not_provide_a_top_level_kernels_package(wheel):
    assert not any(n.startswith("kernels/") for n in _names(wheel))


def _run_installed(installed: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(installed), "PLANNER_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("PLANNER_MODEL_SPECS", None)
    env.pop("PLANNER_HARDWARE_PROFILES", None)
    code = "import sys; from planner.cli import main; sys.argv = ['planner', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True)


def test_installed_catalog_has_every_model_and_device(installed, tmp_path):
    models = _run_installed(installed, tmp_path, "models", "--json")
    gpus = _run_installed(installed, tmp_path, "gpus", "--json")
    assert models.returncode == 0 and gpus.returncode == 0, models.stderr + gpus.stderr
    assert {m["id"] for m in json.loads(models.stdout)} == {f.stem for f in (ROOT / "model_specs").glob("*.yaml")}
    assert {g["id"] for g in json.loads(gpus.stdout)} == {f.stem for f in (ROOT / "hardware_profiles").glob("*.yaml")}


def test_installed_package_plans_from_outside_the_checkout(installed, tmp_path):
    result = _run_installed(installed, tmp_path, "plan", "--model", "llama3.1-8b", "--gpu", "rtx4090",
                            "--quant", "q4_k_m", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["model"], out["gpu"], out["memory"]["fits"]) == ("llama3.1-8b", "rtx4090", True)
    probe = subprocess.run([sys.executable, "-c", "import planner; print(planner.__file__)"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(installed)}, capture_output=True, text=True)
    assert probe.stdout.strip().startswith(str(installed))
