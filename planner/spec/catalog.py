"""The only place that reads spec files: find, parse (``yaml.safe_load``), validate, look up by id or alias.

Spec files are untrusted input (they arrive in pull requests), so parse errors carry ``file:line:col``
and validation errors are compressed to ``field.path: message`` on one line.

A whole folder is read once and kept as a JSON index in the user's cache folder
(``planner.spec.paths.cache_dir``), keyed on the folder's listing (names, sizes, mtimes) and the planner,
Python and pydantic versions. The index is untrusted too: it is read with a size cap, every entry is
validated again by the schema, and anything unexpected (corrupt, truncated, stale, hand-edited) makes the
folder be read afresh. A cache folder that cannot be written only costs the speed-up (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from planner.errors import SpecFileError, UnknownNameError
from planner.spec.safeio import check_nesting, read_text
from planner.spec.schema import HardwareProfile, ModelSpec

from planner.spec import paths
from planner.spec.paths import HARDWARE_DIR, MODEL_SPECS_DIR

# A spec file is a few kB; refusing big ones keeps a hostile file from costing memory or time.
MAX_SPEC_FILE_BYTES = 1_000_000
# The shipped index is ~100 kB; a cache file far larger than any real catalog is refused unread.
MAX_INDEX_BYTES = 50_000_000
INDEX_FORMAT = 1
MAX_ID_CHARS = 200  # longer than any id; a longer name is never looked up as a file name

T = TypeVar("T", bound=BaseModel)


@cache
def _unique_key_loader() -> type:
    """libyaml's safe loader when present (the same safe subset of YAML, ten times faster), refusing
    duplicate keys: in a deploy file the second `quant:` would silently win. Built on first use, so a
    command served from the catalog index never imports yaml."""
    import yaml

    class UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}'", key_node.start_mark)
                seen.add(key) if isinstance(key, (str, int, float, bool)) else None
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def parse_yaml(path: Path | str, text: str) -> object:
    """Parse YAML text from ``path`` safely; errors name the file and the line."""
    import yaml

    check_nesting(path, text)
    try:
        return yaml.load(text, Loader=_unique_key_loader())
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


def folder_listing(folder: Path) -> list[list]:
    """[name, size, mtime_ns] of every ``*.yaml`` in ``folder``, sorted: what the index is keyed on."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    out = []
    for entry in entries:
        if entry.name.endswith(".yaml"):
            try:
                info = entry.stat()
            except OSError:
                continue
            out.append([entry.name, info.st_size, info.st_mtime_ns])
    return sorted(out)


def index_key(folder: Path, kind: str, listing: list[list]) -> dict:
    """What an index must match to be used: format, folder, listing, and the planner, Python and
    pydantic versions (a new schema or validator may read the same files differently)."""
    import pydantic

    import planner

    return {"format": INDEX_FORMAT, "kind": kind, "folder": str(folder), "listing": listing,
            "planner": planner.__version__, "python": sys.version, "pydantic": pydantic.VERSION}


def _is_count_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and type(v) is int and v >= 0 for k, v in value.items())


class Catalog:
    """All specs of one kind in one folder, indexed by id and alias (loaded on first need)."""

    def __init__(self, folder: Path, model: type[T], kind: str,
                 derive: Callable[[T], dict[str, int]] | None = None):
        self.folder = folder
        self.kind = kind
        self.model = model
        self.derive = derive  # counts worth keeping in the index (parameters: a walk over every tensor)
        self._items: dict[str, T] | None = None
        self._index: dict[str, str] = {}
        self._got: dict[str, T] = {}  # names already resolved by ``get``: a deploy file repeats them
        self._derived: dict[str, dict[str, int]] = {}

    @property
    def items(self) -> dict[str, T]:
        if self._items is None:
            self._load_all()
        return self._items

    @property
    def index_path(self) -> Path:
        return paths.cache_dir() / f"catalog-{_key(self.kind)}.json"

    def _load_all(self) -> None:
        listing = folder_listing(self.folder)  # before reading: a file changed meanwhile is re-read next time
        key = index_key(self.folder, self.kind, listing)
        cached = self._read_index(key, listing)
        if cached is not None:
            try:
                self._fill(cached[0])
                self._derived = cached[1]
                return
            except SpecFileError:
                pass  # an index that breaks a catalog rule is not trusted; the files decide
        files = sorted(self.folder.glob("*.yaml"))
        specs = [(path.name, load_model_file(path, self.model)) for path in files]
        self._fill(specs)
        self._derived = {spec.id: self.derive(spec) for _, spec in specs} if self.derive else {}
        self._write_index(key, specs)

    def derived(self, spec_id: str) -> dict[str, int]:
        """The ``derive`` counts of a catalog entry, from the index when it has them."""
        found = self._derived.get(spec_id)
        if found is None:
            found = self._derived[spec_id] = self.derive(self.items[spec_id]) if self.derive else {}
        return found

    def _fill(self, specs: list[tuple[str, T]]) -> None:
        """Index ``(file name, spec)`` pairs by id and alias, enforcing the catalog's rules."""
        items: dict[str, T] = {}
        index: dict[str, str] = {}
        for name, spec in specs:
            path = self.folder / name
            if spec.id in items:
                raise SpecFileError(str(path), f"duplicate {self.kind} id '{spec.id}'")
            if path.stem != spec.id:
                raise SpecFileError(str(path), f"file name must be '{spec.id}.yaml' to match its id")
            items[spec.id] = spec
            for alias in (spec.id, *spec.aliases):
                k = _key(alias)
                owner = index.get(k)
                if owner is not None and owner != spec.id:
                    raise SpecFileError(str(path), f"alias '{alias}' is already used by '{owner}'")
                index[k] = spec.id
        self._items, self._index = items, index

    def _read_index(self, key: dict, listing: list[list]) -> tuple[list[tuple[str, T]], dict] | None:
        """The specs (each validated again) and derived counts of a cached index that matches ``key``;
        None otherwise."""
        try:
            data = json.loads(read_text(self.index_path, MAX_INDEX_BYTES))
        except (SpecFileError, ValueError, RecursionError):
            return None
        if not isinstance(data, dict) or data.get("key") != key or not isinstance(data.get("entries"), list):
            return None
        entries = data["entries"]
        if [e.get("file") if isinstance(e, dict) else None for e in entries] != [row[0] for row in listing]:
            return None
        try:
            specs = [(e["file"], self.model.model_validate(e["spec"])) for e in entries]
        except (KeyError, ValidationError, TypeError, ValueError):
            return None
        if not self.derive or not specs:
            return specs, {}
        derived = {spec.id: e.get("derived") for (_, spec), e in zip(specs, entries)}
        # Counts cannot be validated by a schema: the first one is recomputed (one spec, a few ms) and
        # every entry must have the same keys, so a hand-edited or foreign index is caught.
        first_id = specs[0][1].id
        expected = self.derive(specs[0][1])
        if derived[first_id] != expected or not all(
                _is_count_map(d) and d.keys() == expected.keys() for d in derived.values()):
            return None
        return specs, derived

    def _write_index(self, key: dict, specs: list[tuple[str, T]]) -> None:
        """Write the index atomically (temporary file, then os.replace); never fail the command."""
        import tempfile

        text = json.dumps({"key": key, "entries": [
            {"file": name, "spec": spec.model_dump(mode="json"), "derived": self._derived.get(spec.id, {})}
            for name, spec in specs]})
        tmp = None
        try:
            folder = self.index_path.parent
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".catalog-", suffix=".json", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, self.index_path)
            tmp = None
        except OSError:
            pass  # a read-only or full cache folder: the next call reads the files again
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass

    def ids(self) -> list[str]:
        return sorted(self.items)

    def get(self, name: str) -> T:
        found = self._got.get(name)
        if found is None:
            found = self._got[name] = self._find(name)
        return found

    def _find(self, name: str) -> T:
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

        self.items  # noqa: B018 - the alias index is filled with the items
        close = difflib.get_close_matches(_key(name), list(self._index), n=8, cutoff=0.5)
        ids: list[str] = []
        for key in close:
            if self._index[key] not in ids:
                ids.append(self._index[key])
        return ids[:3]


@cache
def models() -> Catalog:
    return Catalog(MODEL_SPECS_DIR, ModelSpec, "model", derive=model_counts)


def model_counts(spec: ModelSpec) -> dict[str, int]:
    """Total and active (per token) parameters, counted tensor by tensor (planner.spec.tensors)."""
    from planner.spec.tensors import active_parameter_count, parameter_count

    params = parameter_count(spec)
    return {"params": params, "active_params": active_parameter_count(spec) if spec.moe else params}


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
