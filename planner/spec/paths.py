"""Where the shipped data lives, in an installed package and in a source checkout alike.

A wheel carries the catalogs inside the package (``planner/data/models``, ``planner/data/hardware``,
mapped from the repository's ``model_specs/`` and ``hardware_profiles/`` at build time); a source
checkout (editable install, tests) reads the repository folders directly. Environment variables
override both for users who keep their own catalogs.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parent.parent / "data"
_CHECKOUT = PACKAGE_DATA.parent.parent


def _shipped(packaged: str, checkout: str, env: str) -> Path:
    if os.environ.get(env):
        return Path(os.environ[env])
    inside = PACKAGE_DATA / packaged
    return inside if inside.is_dir() else _CHECKOUT / checkout


MODEL_SPECS_DIR = _shipped("models", "model_specs", "PLANNER_MODEL_SPECS")
HARDWARE_DIR = _shipped("hardware", "hardware_profiles", "PLANNER_HARDWARE_PROFILES")
EFFICIENCY_FILE = PACKAGE_DATA / "efficiency.yaml"
MEASUREMENTS_FILE = PACKAGE_DATA / "measurements.csv"


def cache_dir() -> Path:
    """The user's cache folder (calibrations, the catalog index): $PLANNER_CACHE_DIR, else
    $XDG_CACHE_HOME/planner, else ~/.cache/planner. Read at each call, so tests and users can redirect it."""
    if os.environ.get("PLANNER_CACHE_DIR"):
        return Path(os.environ["PLANNER_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "planner"
