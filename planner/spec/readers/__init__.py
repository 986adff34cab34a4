"""Model files as planner input: GGUF files, Hugging Face configs and safetensors checkpoints, offline.

``read_model_file(path)`` returns a :class:`ModelFile`: a :class:`~planner.spec.schema.ModelSpec` built from
the file's metadata, the exact :class:`~planner.spec.layout.WeightLayout` when the file headers give tensor
sizes, and the quant id the file determines. Every reader treats its input as untrusted: headers are
read with bounded reads and validated (docs/security.md), and every failure is an
:class:`~planner.errors.InputError` (usually a :class:`~planner.errors.SpecFileError`).
"""

from __future__ import annotations

from pathlib import Path

from planner.errors import InputError, SpecFileError
from planner.spec.readers._common import ModelFile

__all__ = ["ModelFile", "is_model_file", "read_model_file"]

_MAX_LISTED = 10_000


def _gguf_files(folder: Path) -> list[Path]:
    files = []
    for i, p in enumerate(folder.iterdir()):
        if i >= _MAX_LISTED:
            break
        if p.suffix.lower() == ".gguf" and p.is_file():
            files.append(p)
    return sorted(files)


def _is_hf_cache_repo(folder: Path) -> bool:
    return folder.name.startswith("models--") and (folder / "snapshots").is_dir()


def is_model_file(name: str) -> bool:
    """True for a path ending in .gguf, a config.json, or an existing folder with config.json or *.gguf."""
    if name.lower().endswith(".gguf") or Path(name).name == "config.json":
        return True
    folder = Path(name)
    try:
        if not folder.is_dir():
            return False
        return (folder / "config.json").is_file() or _is_hf_cache_repo(folder) or bool(_gguf_files(folder))
    except OSError:
        return False


def read_model_file(path: str | Path) -> ModelFile:
    """Read a GGUF file (split parts included), a config.json, or a model / HF cache folder."""
    from planner.spec.readers.gguf import SPLIT_RE, read_gguf
    from planner.spec.readers.hf import read_hf

    p = Path(path)
    try:
        if p.is_dir():
            if (p / "config.json").is_file() or _is_hf_cache_repo(p):
                return read_hf(p)
            ggufs = _gguf_files(p)
            firsts = [
                g for g in ggufs if not SPLIT_RE.match(g.name) or SPLIT_RE.match(g.name)["no"] == "00001"
            ]
            if len(firsts) == 1:
                return read_gguf(firsts[0])
            if firsts:
                raise InputError(
                    f"{p}: several GGUF models ({', '.join(g.name for g in firsts[:4])}); pass one file"
                )
            raise SpecFileError(str(p), "folder has neither config.json nor a .gguf file")
        if not p.is_file():
            raise SpecFileError(str(p), "not a regular file (device, FIFO or socket)" if p.exists() else "no such file")
        if p.suffix.lower() == ".gguf":
            return read_gguf(p)
        if p.suffix.lower() == ".json":
            return read_hf(p)
        if p.suffix.lower() == ".safetensors":
            raise SpecFileError(
                str(p), "a safetensors file has no architecture; pass the folder with config.json"
            )
        raise SpecFileError(str(p), "not a model file (expected .gguf, config.json or a model folder)")
    except OSError as exc:
        raise SpecFileError(str(p), f"cannot read: {exc.strerror or exc}") from None
