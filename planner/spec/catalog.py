"""The only place that reads spec files: find, parse (``yaml.safe_load``), validate, look up by id or alias.

Spec files are untrusted input (they arrive in pull requests), so parse errors carry ``file:line:col``
and validation errors are compressed to ``field.path: message`` on one line.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from planner.errors import SpecFileError, UnknownNameError
from planner.spec.safeio import check_nesting, read_text
from planner.spec.schema import HardwareProfile, ModelSpec

from planner.spec.paths import HARDWARE_DIR, MODEL_SPECS_DIR

# A spec file is a few kB; refusing big ones keeps a hostile file from costing memory or time.
MAX_SPEC_FILE_BYTES = 1_000_000
MAX_ID_CHARS = 200  # longer than any id; a longer name is never looked up as a file name

T = TypeVar("T", bound=BaseModel)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """libyaml's safe loader when present (the same safe subset of YAML, ten times faster), refusing
    duplicate keys: in a deploy file the second `quant:` would silently win."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark)
            seen.add(key) if isinstance(key, (str, int, float, bool)) else None
        return super().construct_mapping(node, deep=deep)


def parse_yaml(path: Path | str, text: str) -> object:
    """Parse YAML text from ``path`` safely; errors name the file and the line."""
    check_nesting(path, text)
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        raise SpecFileError(str(path), f"invalid YAML: {problem}", line, col) from None
    except yaml.YAMLError as exc:
        raise SpecFileError(str(path), f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SpecFileError(str(path), "invalid YAML: nested too deeply") from None


def read_yaml(path: Path | str) -> object:
    """Read (regular file, size cap) and parse one YAML file safely."""
    return parse_yaml(path, read_text(path, MAX_SPEC_FILE_BYTES))


def _line_of(text_lines: list[str], loc: tuple) -> int | None:
    """Line of a validation error's location: follow the key path block by block (a key is searched only
    below its parent and deeper-indented than it); a missing last key points at its parent."""
    keys = [str(k) for k in loc if isinstance(k, str)]
    start, parent_indent, found = 0, -1, None
    for key in keys:
        hit = None
        for i in range(start, len(text_lines)):
            raw = text_lines[i]
            stripped = raw.lstrip(" -")
            indent = len(raw) - len(raw.lstrip(" "))
            if raw.strip() and indent <= parent_indent and i > start:
                break  # left the parent's block
            if stripped.startswith(f"{key}:"):
                hit = (i, indent)
                break
        if hit is None:
            break
        found, start, parent_indent = hit[0] + 1, hit[0] + 1, hit[1]
    return found


def format_validation_error(path: Path | str, exc: ValidationError, text: str | None = None) -> SpecFileError:
    """Compress pydantic's multi-line report to one line: ``file:line: field.path: message``."""
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    line = _line_of(text.splitlines(), first["loc"]) if text else None
    return SpecFileError(str(path), f"{loc}: {msg}{suffix}", line)


def load_model_file(path: Path | str, model: type[T]) -> T:
    path = Path(path)
    text = read_text(path, MAX_SPEC_FILE_BYTES)
    data = parse_yaml(path, text)
    if not isinstance(data, dict):
        raise SpecFileError(str(path), f"expected a mapping at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(path, exc, text) from None


def _key(name: str) -> str:
    """Lookup key: case-insensitive, '_' and ' ' treated as '-'."""
    return name.strip().lower().replace("_", "-").replace(" ", "-")


class Catalog:
    """All specs of one kind in one folder, indexed by id and alias (loaded on first need)."""

    def __init__(self, folder: Path, model: type[T], kind: str):
        self.folder = folder
        self.kind = kind
        self.model = model
        self._items: dict[str, T] | None = None
        self._index: dict[str, str] = {}

    @property
    def items(self) -> dict[str, T]:
        if self._items is None:
            self._load_all()
        return self._items

    def _load_all(self) -> None:
        self._items = {}
        folder, model, kind = self.folder, self.model, self.kind
        for path in sorted(folder.glob("*.yaml")):
            spec = load_model_file(path, model)
            if spec.id in self._items:
                raise SpecFileError(str(path), f"duplicate {kind} id '{spec.id}'")
            if path.stem != spec.id:
                raise SpecFileError(str(path), f"file name must be '{spec.id}.yaml' to match its id")
            self._items[spec.id] = spec
            for name in (spec.id, *spec.aliases):
                key = _key(name)
                owner = self._index.get(key)
                if owner is not None and owner != spec.id:
                    raise SpecFileError(str(path), f"alias '{name}' is already used by '{owner}'")
                self._index[key] = spec.id

    def ids(self) -> list[str]:
        return sorted(self.items)

    def get(self, name: str) -> T:
        # Fast path for `plan`: an exact id names its own file, so one small file is read, not the folder.
        if self._items is None and 0 < len(_key(name)) <= MAX_ID_CHARS and "/" not in name:
            path = self.folder / f"{_key(name)}.yaml"
            if path.is_file():
                spec = load_model_file(path, self.model)
                if spec.id == path.stem:
                    return spec
        items = self.items
        spec_id = self._index.get(_key(name))
        if spec_id is None:
            raise UnknownNameError(self.kind, name, self.suggest(name))
        return items[spec_id]

    def suggest(self, name: str) -> list[str]:
        """Ids of the entries whose id or alias is closest to ``name`` (each id once, best first)."""
        import difflib

        close = difflib.get_close_matches(_key(name), list(self._index), n=8, cutoff=0.5)
        ids: list[str] = []
        for key in close:
            if self._index[key] not in ids:
                ids.append(self._index[key])
        return ids[:3]


@cache
def models() -> Catalog:
    return Catalog(MODEL_SPECS_DIR, ModelSpec, "model")


@cache
def hardware() -> Catalog:
    return Catalog(HARDWARE_DIR, HardwareProfile, "GPU")


def _looks_like_path(name: str) -> bool:
    return name.lower().endswith((".yaml", ".yml"))


def load_model(name: str) -> ModelSpec:
    """A catalog id or alias, or the path to a YAML file in the model_specs schema."""
    if _looks_like_path(name):
        return load_model_file(name, ModelSpec)
    return models().get(name)


def load_hardware(name: str) -> HardwareProfile:
    """A catalog id or alias, or the path to a YAML file in the hardware_profiles schema."""
    if _looks_like_path(name):
        return load_model_file(name, HardwareProfile)
    return hardware().get(name)
