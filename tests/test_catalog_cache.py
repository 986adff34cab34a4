"""The catalog index in the user cache: used when the folder is unchanged, rebuilt when anything differs,
never trusted blindly, never a reason for a command to fail (docs/performance.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import planner
from planner.errors import SpecFileError, UnknownNameError
from planner.spec import catalog, paths
from planner.spec.schema import ModelSpec


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty user cache for the test (PLANNER_CACHE_DIR)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(path))
    return path


@pytest.fixture
def specs(tmp_path, model_data, write_yaml) -> Path:
    """A user catalog folder with two tiny models."""
    write_yaml("specs/tiny-llama.yaml", model_data())
    write_yaml("specs/tiny-two.yaml", model_data(id="tiny-two", aliases=["Tiny Two"]))
    return tmp_path / "specs"


def fresh(folder: Path) -> catalog.Catalog:
    """A new Catalog object, as a new process would make it."""
    return catalog.Catalog(folder, ModelSpec, "model", derive=catalog.model_counts)


def from_files_only(monkeypatch) -> None:
    """Make any YAML read fail, so a test can tell the index was used."""
    def refuse(path, model):
        raise AssertionError(f"read {path} although the index is current")

    monkeypatch.setattr(catalog, "load_model_file", refuse)


def counting_reads(monkeypatch) -> list[Path]:
    """The YAML files read from now on."""
    reads: list[Path] = []
    real = catalog.load_model_file
    monkeypatch.setattr(catalog, "load_model_file",
                        lambda path, model: reads.append(path) or real(path, model))
    return reads


def bump(path: Path, text: str) -> None:
    """Rewrite a file and move its mtime forward (file systems with coarse timestamps)."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_an_unchanged_folder_is_served_from_the_index(cache, specs, monkeypatch):
    first = fresh(specs)
    assert first.ids() == ["tiny-llama", "tiny-two"]
    assert (cache / "catalog-model.json").is_file()
    from_files_only(monkeypatch)
    second = fresh(specs)
    assert second.items == first.items
    assert second.get("tiny two").id == "tiny-two"
    assert second.derived("tiny-llama") == first.derived("tiny-llama")


def test_a_changed_user_file_rebuilds_the_index(cache, specs, model_data):
    assert fresh(specs).get("tiny-two").architecture.max_context == 512
    import yaml

    changed = model_data(id="tiny-two", aliases=["Tiny Two"], architecture={"max_context": 1024})
    bump(specs / "tiny-two.yaml", yaml.safe_dump(changed))
    assert fresh(specs).get("tiny-two").architecture.max_context == 1024
    assert fresh(specs).items["tiny-two"].architecture.max_context == 1024


def test_an_edit_that_keeps_the_size_still_rebuilds_the_index(cache, specs):
    fresh(specs).ids()
    path = specs / "tiny-two.yaml"
    text = path.read_text(encoding="utf-8")
    assert "max_context: 512" in text
    bump(path, text.replace("max_context: 512", "max_context: 513"))
    assert fresh(specs).items["tiny-two"].architecture.max_context == 513


def test_an_added_user_file_rebuilds_the_index(cache, specs, model_data, write_yaml):
    assert fresh(specs).ids() == ["tiny-llama", "tiny-two"]
    write_yaml("specs/tiny-three.yaml", model_data(id="tiny-three", aliases=[]))
    assert fresh(specs).ids() == ["tiny-llama", "tiny-three", "tiny-two"]


def test_a_removed_user_file_rebuilds_the_index(cache, specs):
    assert fresh(specs).ids() == ["tiny-llama", "tiny-two"]
    (specs / "tiny-two.yaml").unlink()
    cat = fresh(specs)
    assert cat.ids() == ["tiny-llama"]
    with pytest.raises(UnknownNameError, match="unknown model 'tiny two'"):
        cat.get("tiny two")


def test_a_broken_user_file_is_reported_even_with_an_index(cache, specs):
    fresh(specs).ids()
    bump(specs / "tiny-two.yaml", "id: [unclosed\n")
    with pytest.raises(SpecFileError, match="tiny-two.yaml"):
        fresh(specs).ids()


def test_a_new_planner_version_rebuilds_the_index(cache, specs, monkeypatch):
    fresh(specs).ids()
    monkeypatch.setattr(planner, "__version__", planner.__version__ + ".post1")
    reads = counting_reads(monkeypatch)
    assert fresh(specs).ids() == ["tiny-llama", "tiny-two"]
    assert len(reads) == 2


def _index(cache: Path) -> dict:
    return json.loads((cache / "catalog-model.json").read_text(encoding="utf-8"))


def _write_index(cache: Path, data: dict | str) -> None:
    text = data if isinstance(data, str) else json.dumps(data)
    (cache / "catalog-model.json").write_text(text, encoding="utf-8")


def _spoil_spec(data: dict) -> None:
    data["entries"][1]["spec"]["architecture"]["n_layers"] = -1


def _spoil_id(data: dict) -> None:
    data["entries"][1]["spec"]["id"] = "tiny-llama"


def _spoil_counts(data: dict) -> None:
    data["entries"][1]["derived"]["params"] = "many"


def _drop_counts(data: dict) -> None:
    data["entries"][1]["derived"] = {}


def _change_first_count(data: dict) -> None:
    data["entries"][0]["derived"]["params"] += 1


def _spoil_files(data: dict) -> None:
    data["entries"].pop()


def _spoil_alias(data: dict) -> None:
    data["entries"][1]["spec"]["aliases"] = ["tiny/Tiny-Llama"]


@pytest.mark.parametrize("spoil", [_spoil_spec, _spoil_id, _spoil_counts, _drop_counts, _change_first_count,
                                   _spoil_files, _spoil_alias],
                         ids=["invalid-spec", "id-not-file-name", "count-not-int", "counts-missing",
                              "count-changed", "entry-missing", "alias-clash"])
def test_a_hostile_index_is_rebuilt_from_the_files(cache, specs, spoil):
    expected = fresh(specs)
    expected.ids()
    good = _index(cache)
    data = _index(cache)
    spoil(data)
    _write_index(cache, data)
    again = fresh(specs)
    assert again.items == expected.items
    for spec_id in ("tiny-llama", "tiny-two"):
        assert again.derived(spec_id) == expected.derived(spec_id)
    assert _index(cache) == good  # rewritten from the files


@pytest.mark.parametrize("garbage", ["", "{", '{"key": ', "[1, 2]", "null", "\x00\xff", "[" * 100_000],
                         ids=["empty", "open-brace", "truncated", "list", "null", "binary", "deep"])
def test_a_corrupt_or_truncated_index_is_rebuilt(cache, specs, garbage):
    expected = fresh(specs).items
    _write_index(cache, garbage)
    assert fresh(specs).items == expected
    assert [e["file"] for e in _index(cache)["entries"]] == ["tiny-llama.yaml", "tiny-two.yaml"]


def test_an_oversized_index_is_not_read(cache, specs, monkeypatch):
    expected = fresh(specs).items
    monkeypatch.setattr(catalog, "MAX_INDEX_BYTES", 10)
    reads = counting_reads(monkeypatch)
    assert fresh(specs).items == expected
    assert len(reads) == 2


def test_an_index_path_that_is_a_fifo_is_replaced(cache, specs):
    cache.mkdir(parents=True)
    os.mkfifo(cache / "catalog-model.json")
    assert fresh(specs).ids() == ["tiny-llama", "tiny-two"]  # no hang on open()
    assert (cache / "catalog-model.json").is_file()


def test_an_unwritable_cache_folder_costs_only_the_speed(tmp_path, specs, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(blocker / "cache"))
    assert fresh(specs).ids() == ["tiny-llama", "tiny-two"]
    assert fresh(specs).get("Tiny Two").id == "tiny-two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder", "specs"]  # no stray temp file


def test_cache_dir_order_of_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert paths.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("PLANNER_CACHE_DIR")
    assert paths.cache_dir() == tmp_path / "xdg" / "planner"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / ".cache" / "planner"


def test_the_shipped_catalog_is_the_same_from_the_index_and_from_the_files(cache, monkeypatch):
    for folder, model, kind in ((catalog.MODEL_SPECS_DIR, ModelSpec, "model"),
                                (catalog.HARDWARE_DIR, catalog.HardwareProfile, "GPU")):
        derive = catalog.model_counts if kind == "model" else None
        built = catalog.Catalog(folder, model, kind, derive)
        items = built.items
        with monkeypatch.context() as m:
            from_files_only(m)
            cached = catalog.Catalog(folder, model, kind, derive)
            assert cached.items == items
            assert [cached.derived(i) for i in items] == [built.derived(i) for i in items]
            assert cached._index == built._index


def _planner(args: list[str], cache_dir: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PLANNER_CACHE_DIR=str(cache_dir),
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                        os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_commands_print_the_same_with_a_cold_a_warm_and_no_cache(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("x", encoding="utf-8")
    plan = ["plan", "-m", "Llama-3.1-8B", "-g", "RTX 4090", "-q", "q4_k_m", "--json"]
    for args in (["models", "--json"], plan):
        cold = _planner(args, tmp_path / "cache")
        warm = _planner(args, tmp_path / "cache")
        none = _planner(args, blocked / "cache")
        assert cold.returncode == warm.returncode == none.returncode == 0, (cold.stderr, none.stderr)
        assert cold.stdout == warm.stdout == none.stdout
        assert cold.stderr == warm.stderr == none.stderr == ""
