"""Plan from a Hugging Face model: ``config.json``, a model folder, or a cache snapshot, offline.

Accepted paths: ``.../config.json``; a folder holding ``config.json`` (and maybe weights); a
Hugging Face cache snapshot ``models--org--name/snapshots/<hash>/``; or the cache repo folder
``models--org--name`` itself (``refs/main`` picks the snapshot). Nothing is downloaded.

Weights: when ``model.safetensors.index.json`` lists shards that are all present, or ``*.safetensors``
files lie in the folder, only their headers are read (:mod:`planner.spec.readers.safetensors_header`) and
give exact bytes per tensor. Grouping (after stripping a ``model.`` / ``language_model.`` prefix):
``embed_tokens.*`` → token_embd, ``lm_head.*`` → output (absent = tied), ``layers.N.*`` → layer N,
names containing ``.experts.`` → that layer's expert bytes, anything else → other bytes.

Parameter counting from headers: elements as stored, except int32 ``*.qweight`` (AWQ/GPTQ pack
32/bits values per int32, ×8 for 4-bit), uint8 ``*_blocks`` (MXFP4, two values per byte, ×2), and
quantization metadata (``*.qzeros``, ``*.scales``, ``*.g_idx``, ``*_scales``, ``*_scale``,
``*_scale_inv``) which is not counted as parameters (its bytes are still counted).
Without weights: ``metadata.total_size`` of the index / bytes per parameter (unquantized only),
else the count computed from config.json (:mod:`planner.spec.readers._params`), marked in the source.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from pydantic import ValidationError

from planner.errors import InputError, SpecFileError
from planner.spec.layout import WeightLayout
from planner.spec.readers._common import ModelFile, grouped_layout, make_id, spec_error
from planner.spec.readers._params import count_params
from planner.spec.readers.hf_config import config_blocks, load_json, quant_from_config
from planner.spec.readers.safetensors_header import SafeTensor, read_safetensors_header
from planner.spec.schema import MLA, Architecture, ModelSpec, MoE, Published

INDEX_NAME = "model.safetensors.index.json"
MAX_INDEX_BYTES = 50_000_000
MAX_SHARDS = 10_000
_SHARD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}\.safetensors$")
_PREFIXES = ("model.language_model.", "language_model.model.", "language_model.", "model.")
_LAYER_RE = re.compile(r"^layers\.(\d{1,6})\.")
_METADATA_SUFFIXES = (".qzeros", ".scales", ".g_idx", "_scales", "_scale", "_scale_inv")
_DTYPE_QUANT = {"BF16": "bf16", "F16": "f16", "F32": "f32"}
_DTYPE_BYTES = {"bf16": 2, "f16": 2, "f32": 4}


def resolve_folder(path: Path) -> tuple[Path, Path]:
    """(model folder, config.json path) for any accepted path form."""
    if path.is_file():
        return path.parent, path
    if not path.is_dir():
        raise SpecFileError(str(path), "no such file or folder")
    if (path / "config.json").is_file():
        return path, path / "config.json"
    snapshots = path / "snapshots"
    if snapshots.is_dir():
        ref = path / "refs" / "main"
        if ref.is_file() and ref.stat().st_size <= 100:
            name = ref.read_text(encoding="ascii", errors="replace").strip()
            if re.fullmatch(r"[0-9a-f]{6,64}", name) and (snapshots / name / "config.json").is_file():
                return snapshots / name, snapshots / name / "config.json"
        found = [d for d in sorted(snapshots.iterdir())[:1000] if (d / "config.json").is_file()]
        if len(found) == 1:
            return found[0], found[0] / "config.json"
        if found:
            raise InputError(
                f"{path}: several snapshots ({', '.join(d.name[:12] for d in found[:4])}); "
                "pass one snapshots/<hash> folder"
            )
    raise SpecFileError(str(path), "folder has no config.json")


def model_name(folder: Path) -> str:
    """'org/name' for a Hugging Face cache path, else the folder name."""
    for part in reversed(folder.resolve().parts if folder.exists() else folder.parts):
        if part.startswith("models--"):
            return part[len("models--") :].replace("--", "/")
    return folder.resolve().name or "model"


def weight_files(folder: Path) -> tuple[list[Path], dict | None, Path | None]:
    """(safetensors files present, parsed index or None, index path or None); partial shard sets fail."""
    index_path = folder / INDEX_NAME
    if index_path.is_file():
        index = load_json(index_path, MAX_INDEX_BYTES)
        wmap = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(wmap, dict) or not all(isinstance(v, str) for v in wmap.values()):
            raise SpecFileError(str(index_path), "index has no 'weight_map' object of file names")
        shards = sorted(set(wmap.values()))
        if len(shards) > MAX_SHARDS or not all(_SHARD_RE.match(s) for s in shards):
            raise SpecFileError(
                str(index_path), "weight_map names a file that is not a plain *.safetensors name"
            )
        present = [s for s in shards if (folder / s).is_file()]
        if present and len(present) != len(shards):
            missing = sorted(set(shards) - set(present))
            raise SpecFileError(str(index_path), f"{len(missing)} shard(s) missing, e.g. {missing[0]}")
        return [folder / s for s in present], index, index_path
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())[: MAX_SHARDS + 1]
    if len(files) > MAX_SHARDS:
        raise InputError(f"{folder}: more than {MAX_SHARDS} safetensors files")
    if len(files) > 1:  # Mistral repos ship consolidated.safetensors next to the HF shards
        files = [p for p in files if not p.name.startswith("consolidated")] or files
    return files, None, None


def tensor_params(t: SafeTensor, bits: int) -> int:
    """Parameters a stored tensor represents (the rule in the module docstring)."""
    if t.name.endswith(".qweight") and t.dtype == "I32":
        return t.n_elements * (32 // bits if bits in (2, 3, 4, 8) else 8)
    if t.name.endswith(_METADATA_SUFFIXES):
        return 0
    if t.name.endswith("_blocks") and t.dtype == "U8":
        return t.n_elements * 2
    return t.n_elements


def build_layout(tensors: list[SafeTensor], n_layers: int, label: str, bits: int) -> WeightLayout:
    """Exact bytes per tensor group from the safetensors headers."""

    def classify(t: SafeTensor) -> tuple[str, int | None, bool, int]:
        name = t.name
        for prefix in _PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix) :]
                break
        if name.startswith("embed_tokens."):
            return "embd", None, False, t.n_bytes
        if name.startswith("lm_head."):
            return "output", None, False, t.n_bytes
        m = _LAYER_RE.match(name)
        if m:
            return "layer", int(m[1]), ".experts." in name, t.n_bytes
        return "other", None, False, t.n_bytes

    groups = [classify(t) for t in tensors]
    if not any(kind == "embd" for kind, *_ in groups):
        raise InputError(f"no embed_tokens tensor found in the safetensors headers ({label})")
    return grouped_layout(groups, n_layers, sum(tensor_params(t, bits) for t in tensors), label)


def read_hf(path: str | Path) -> ModelFile:
    """Read a Hugging Face config (and safetensors headers when present) into a ModelFile."""
    folder, config_path = resolve_folder(Path(path))
    cfg_p = str(config_path)
    top = load_json(config_path)
    if not isinstance(top, dict):
        raise SpecFileError(cfg_p, f"expected a JSON object at the top level, got {type(top).__name__}")
    arch, moe, mla = config_blocks(top, cfg_p)
    quant, label = quant_from_config(top)
    qc = top.get("quantization_config")
    bits = qc.get("bits", qc.get("w_bit", 4)) if isinstance(qc, dict) else 4
    bits = bits if isinstance(bits, int) and not isinstance(bits, bool) else 4
    files, index, index_path = weight_files(folder)
    tensors: list[SafeTensor] = []
    for f in files:
        tensors.extend(read_safetensors_header(f)[0])
    if index is not None and files:
        names = {t.name for t in tensors}
        lost = [n for n in index["weight_map"] if n not in names]
        if lost:
            raise SpecFileError(
                str(index_path), f"tensor '{lost[0][:100]}' is in the index but in no shard header"
            )
    if quant is None and label is None:
        by_dtype = Counter()
        for t in tensors:
            by_dtype[t.dtype] += t.n_bytes
        main = by_dtype.most_common(1)[0][0] if by_dtype else None
        quant = _DTYPE_QUANT.get(main) if main else arch["native_dtype"]
        label = f"{main} (safetensors)" if main else f"{arch['native_dtype'].upper()} (config.json)"
    name = model_name(folder)
    try:
        architecture = Architecture(**arch)
        moe_b, mla_b = (MoE(**moe) if moe else None), (MLA(**mla) if mla else None)
        draft = ModelSpec(
            id=make_id(name.split("/")[-1]),
            name=name[:200],
            architecture=architecture,
            moe=moe_b,
            mla=mla_b,
            published=Published(source="computed from config.json", total_params=1),
        )
        layout = build_layout(tensors, architecture.n_layers, label, bits) if tensors else None
        published = _published(draft, layout, index, index_path, cfg_p, quant)
        spec = draft.model_copy(update={"published": published})
    except ValidationError as exc:
        raise spec_error(cfg_p, exc) from None
    return ModelFile(spec=spec, layout=layout, quant=quant, label=label, path=str(folder))


def _published(
    spec: ModelSpec,
    layout: WeightLayout | None,
    index: dict | None,
    index_path: Path | None,
    cfg_p: str,
    quant: str | None,
) -> Published:
    if layout is not None and layout.n_params > 0:
        return Published(
            source=f"{spec.name}: counted from the safetensors headers",
            total_params=layout.n_params,
            note="packed int4/fp4 weights counted as unpacked values; quantization scales excluded",
        )
    meta = index.get("metadata") if isinstance(index, dict) else None
    total_size = meta.get("total_size") if isinstance(meta, dict) else None
    per = _DTYPE_BYTES.get(quant or "")
    usable = isinstance(total_size, int) and not isinstance(total_size, bool) and per and total_size > 0
    if usable and total_size % per == 0:
        return Published(
            source=f"{index_path} metadata.total_size {total_size} B / {per} B per {quant} parameter",
            total_params=total_size // per,
        )
    return Published(source=f"computed from config.json ({cfg_p})", total_params=max(1, count_params(spec)))
