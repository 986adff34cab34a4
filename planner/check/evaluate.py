"""Evaluate deployments for the CI gate, at a cost bounded by what is distinct in the input.

``Evaluator`` plans each deployment with ``planner.estimate.plan`` for one quant, and keeps every resolved
name, every model file read (a GGUF is read once per run however many deployments name it) and every
estimate for the run (weight layouts are cached by ``estimate`` itself): a file of 1,000 deployments of one model costs one estimate per distinct
configuration, not 1,000 reads of the same files.

Paths in deployment files are confined to a root folder (``confine``): by default the git work tree the file
belongs to, else its folder. A path outside is refused before anything looks at it, with the same message
whether or not a file is there, so a pull request cannot probe the CI machine's file system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from planner.errors import InputError
from planner.physics.workload import Parallel, Workload

MODEL_FILE_SUFFIXES = (".gguf", ".yaml", ".yml", ".json")
HARDWARE_FILE_SUFFIXES = (".yaml", ".yml")


def default_root(file: Path | str) -> Path:
    """The git work tree holding ``file`` (the nearest folder upwards with a ``.git``), else its folder."""
    folder = Path(file).resolve().parent
    for candidate in (folder, *folder.parents):
        try:
            if (candidate / ".git").exists():
                return candidate
        except OSError:
            break
    return folder


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def looks_like_path(value: str, suffixes: tuple[str, ...]) -> bool:
    return value.startswith(("/", "./", "../", "~")) or "\\" in value or value.lower().endswith(suffixes) \
        or "/../" in value or value == ".."


def confine(value: str, folder: Path, root: Path | None, suffixes: tuple[str, ...], what: str,
            model_folders: bool = False) -> str:
    """A file path in a deployment file, resolved against ``folder`` and kept inside ``root`` (no limit when
    ``root`` is None); catalog names (``llama3.1-8b``, ``meta-llama/Llama-3.1-8B``) pass through unchanged."""
    from planner.spec.readers import is_model_file

    p = Path(value)
    candidate = p if p.is_absolute() else folder / p
    if root is not None and looks_like_path(value, suffixes) and not _inside(candidate, root):
        raise InputError(f"{what} path '{value[:200]}' is outside the repository root {root} "
                         "(pass --root or --allow-outside to read it)")
    if p.is_absolute():
        return value
    if value.lower().endswith(suffixes):
        return str(candidate)
    if model_folders and "/" in value and (root is None or _inside(candidate, root)) and is_model_file(str(candidate)):
        return str(candidate)
    return value


@dataclass(frozen=True)
class Job:
    """One deployment to estimate: the fields of a planner deployment plus the layout a foreign config fixes."""

    model: str
    gpu: str
    engine: str = "llama.cpp"
    quant: str | None = None
    kv_dtype: str = "f16"
    workload: Workload = Workload()
    num_gpus: int = 1
    nodes: int = 1
    parallel: Parallel | None = None
    ngl: int | None = None  # llama.cpp -ngl: GPU layers + 1 for the output layer


def _cached(store: dict, key, compute):
    """``compute()`` once per key for the run; a bad input is remembered and raised again, not recomputed."""
    if key not in store:
        try:
            store[key] = compute()
        except InputError as exc:
            store[key] = exc
    got = store[key]
    if isinstance(got, InputError):
        raise got
    return got


@dataclass
class Evaluator:
    """Caches for one run of ``planner check`` (never shared between runs: files may change)."""

    models: dict = field(default_factory=dict)
    gpus: dict = field(default_factory=dict)
    estimates: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)

    def path(self, value: str, folder: Path, root: Path | None, suffixes: tuple[str, ...], what: str,
             model_folders: bool) -> str:
        """``confine``, once per distinct name and folder in a run."""
        key = (value, folder, root, suffixes, what, model_folders)
        return _cached(self.paths, key, lambda: confine(value, folder, root, suffixes, what, model_folders))

    def model(self, name: str):
        from planner.estimate import resolve_model

        return _cached(self.models, name, lambda: resolve_model(name))

    def gpu(self, name: str):
        from planner.calibrate.store import is_local, local_device
        from planner.estimate import resolve_hardware

        # `local`: the device `planner calibrate` measured
        return _cached(self.gpus, name, lambda: local_device() if is_local(name) else resolve_hardware(name))

    def estimate(self, job: Job):
        """The estimate ``plan(resolve(job.model, job.gpu, quant=job.quant, ...))`` would give, cached per job."""
        return _cached(self.estimates, job, lambda: self._estimate(job))

    def _estimate(self, job: Job):
        from planner.calibrate.store import efficiency_for, is_local
        from planner.estimate import plan, resolve
        from planner.physics.engines import get_engine
        from planner.spec.schema import DeviceKind

        resolved, hw = self.model(job.model), self.gpu(job.gpu)
        n = resolved.spec.architecture.n_layers
        host_layers = 0  # llama.cpp's -ngl counts the GPU layers plus the output layer
        if job.ngl is not None and get_engine(job.engine).reads_gguf and hw.kind is not DeviceKind.cpu:
            host_layers = max(0, min(n, n + 1 - job.ngl))
        efficiency = None
        if is_local(job.gpu):  # a calibrated device serves each engine through its measured roofs
            efficiency = efficiency_for(hw.id, job.engine, None)
        s = resolve(resolved, hw, quant=job.quant, engine=job.engine, kv_dtype=job.kv_dtype, workload=job.workload,
                    num_gpus=job.num_gpus, nodes=job.nodes, parallel=job.parallel, offload=host_layers or "none",
                    efficiency=efficiency)
        if s.quant is None:
            raise InputError("give a quant (the model is not a file that fixes one)")
        return plan(s)[0]

    def trained_context(self, model: str) -> int:
        return self.model(model).spec.architecture.max_context
