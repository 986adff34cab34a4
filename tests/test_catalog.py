"""Catalog lookup and spec-file errors: names resolve, typos suggest neighbours, bad files say where."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from planner.spec import catalog
from planner.errors import InputError, SpecFileError, UnknownNameError
from planner.spec.schema import HardwareProfile, ModelSpec

# --------------------------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------------------------


def test_model_lookup_by_id():
    assert catalog.load_model("llama3.1-8b").id == "llama3.1-8b"


def test_model_lookup_by_alias():
    assert catalog.load_model("llama-3.1-8b").id == "llama3.1-8b"


@pytest.mark.parametrize(
    "name", ["meta-llama/Llama-3.1-8B-Instruct", "META-LLAMA/llama-3.1-8b-instruct", "meta-llama/llama-3.1-8b"]
)
def test_model_lookup_by_hugging_face_repo_id_is_case_insensitive(name):
    assert catalog.load_model(name).id == "llama3.1-8b"


@pytest.mark.parametrize("name", ["rtx4090", "RTX4090", "NVIDIA GeForce RTX 4090", "rtx_4090", " rtx-4090 "])
def test_gpu_lookup_by_id_alias_and_nvml_name(name):
    assert catalog.load_hardware(name).id == "rtx4090"


def test_unknown_gpu_message_suggests_the_nearest_ids():
    with pytest.raises(UnknownNameError) as info:
        catalog.load_hardware("rtx4009")
    message = str(info.value)
    assert re.match(r"^unknown GPU 'rtx4009'; did you mean: rtx4090(, [a-z0-9.-]+)*\?$", message), message
    assert info.value.suggestions[0] == "rtx4090"
    assert info.value.kind == "GPU" and info.value.name == "rtx4009"


def test_unknown_model_message_suggests_the_nearest_ids():
    with pytest.raises(UnknownNameError) as info:
        catalog.load_model("llama3.1-8c")
    assert re.match(r"^unknown model 'llama3\.1-8c'; did you mean: llama3\.1-8b(, [a-z0-9.-]+)*\?$", str(info.value))


def test_unknown_name_without_neighbours_has_no_suggestion():
    with pytest.raises(UnknownNameError, match=r"^unknown GPU 'zzzzzzzzzzzz'$"):
        catalog.load_hardware("zzzzzzzzzzzz")


def test_unknown_name_error_is_an_input_error():
    assert issubclass(UnknownNameError, InputError) and issubclass(SpecFileError, InputError)


def test_unknown_gpu_in_capitals_still_suggests_rtx4090():
    with pytest.raises(UnknownNameError) as info:
        catalog.load_hardware("RTX4009")
    assert info.value.suggestions[0] == "rtx4090"


# --------------------------------------------------------------------------------------------
# Bad files
# --------------------------------------------------------------------------------------------


def test_malformed_yaml_names_file_line_and_column(write_yaml):
    path = write_yaml("bad.yaml", "id: tiny\narchitecture: [1, 2\nname: x\n")
    with pytest.raises(SpecFileError) as info:
        catalog.load_model(str(path))
    message = str(info.value)
    assert re.match(rf"^{re.escape(str(path))}:\d+:\d+: invalid YAML: ", message), message
    assert info.value.line is not None and info.value.column is not None
    assert "\n" not in message


def test_malformed_yaml_position_is_the_offending_line(write_yaml):
    path = write_yaml("bad.yaml", "id: tiny\nname: x\n  aliases: [a\n")
    with pytest.raises(SpecFileError) as info:
        catalog.load_model(str(path))
    assert info.value.line == 3


def test_schema_error_is_one_line_naming_the_field_and_its_line(model_data, write_yaml):
    data = model_data(architecture={"n_layers": "many"})
    path = write_yaml("tiny.yaml", data)
    with pytest.raises(SpecFileError) as info:
        catalog.load_model(str(path))
    message = str(info.value)
    assert "\n" not in message
    line = path.read_text().splitlines().index("  n_layers: many") + 1
    assert message.startswith(f"{path}:{line}: architecture.n_layers: ")


def test_unknown_key_in_a_file_is_reported_as_unknown_key(model_data, write_yaml):
    data = model_data()
    data["architecture"]["n_layer"] = 2
    path = write_yaml("tiny.yaml", data)
    with pytest.raises(SpecFileError, match=r"architecture\.n_layer: unknown key$"):
        catalog.load_model(str(path))


def test_several_schema_errors_are_counted_on_the_same_line(model_data, write_yaml):
    data = model_data(architecture={"n_layers": "many", "hidden_size": "wide"})
    path = write_yaml("tiny.yaml", data)
    with pytest.raises(SpecFileError, match=r"\(and 1 more problem\)$"):
        catalog.load_model(str(path))


def test_missing_field_is_not_reported_at_another_blocks_line(model_data, write_yaml):
    data = model_data()
    del data["architecture"]["source"]
    path = write_yaml("tiny.yaml", data)
    with pytest.raises(SpecFileError) as info:
        catalog.load_model(str(path))
    lines = path.read_text().splitlines()
    assert info.value.line in (None, lines.index("architecture:") + 1)


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "list"), ("just text\n", "str"), ("", "NoneType")])
def test_non_mapping_top_level_is_rejected(write_yaml, text, kind):
    path = write_yaml("list.yaml", text)
    with pytest.raises(SpecFileError, match=rf"expected a mapping at the top level, got {kind}$"):
        catalog.load_model(str(path))


def test_file_over_the_size_cap_is_refused_before_parsing(write_yaml):
    path = write_yaml("huge.yaml", "#" * (catalog.MAX_SPEC_FILE_BYTES + 1))
    with pytest.raises(SpecFileError, match=r"file is larger than 1,000,000 bytes$"):
        catalog.load_model(str(path))


def test_a_device_or_fifo_is_refused_without_reading_it(tmp_path):
    import os

    fifo = tmp_path / "model.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SpecFileError, match=r"not a regular file$"):
        catalog.load_model(str(fifo))
    with pytest.raises(SpecFileError, match=r"not a regular file$"):
        catalog.load_model("/dev/zero.yaml") if os.path.exists("/dev/zero.yaml") else catalog.read_yaml("/dev/zero")


@pytest.mark.parametrize("text", ["[" * 50_000 + "]" * 50_000, "".join(f"{' ' * 2 * i}- \n" for i in range(300))])
def test_deeply_nested_yaml_is_refused_before_the_parser_recurses(write_yaml, text):
    path = write_yaml("deep.yaml", text)
    with pytest.raises(SpecFileError, match=r"nesting deeper than 64 levels"):
        catalog.load_model(str(path))


def test_duplicate_keys_are_refused_with_their_line(write_yaml):
    path = write_yaml("dup.yaml", "id: a\nname: x\nid: b\n")
    with pytest.raises(SpecFileError, match=r"dup\.yaml:3:1: invalid YAML: duplicate key 'id'$"):
        catalog.load_model(str(path))


def test_missing_file_is_a_spec_file_error(tmp_path):
    with pytest.raises(SpecFileError, match=r"cannot read file"):
        catalog.load_hardware(str(tmp_path / "nope.yaml"))


def test_non_utf8_file_is_a_spec_file_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"id: caf\xe9\n")
    with pytest.raises(SpecFileError, match=r"not UTF-8"):
        catalog.load_model(str(path))


def test_yaml_tags_are_not_executed(write_yaml):
    path = write_yaml("evil.yaml", "id: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(SpecFileError, match=r"invalid YAML"):
        catalog.load_model(str(path))


# --------------------------------------------------------------------------------------------
# Catalog folders
# --------------------------------------------------------------------------------------------


def test_catalog_rejects_a_file_name_that_differs_from_the_id(tmp_path, model_data, write_yaml):
    write_yaml("specs/wrong-name.yaml", model_data())
    with pytest.raises(SpecFileError, match=r"file name must be 'tiny-llama\.yaml'"):
        catalog.Catalog(tmp_path / "specs", ModelSpec, "model").ids()


def test_catalog_rejects_an_alias_used_by_two_specs(tmp_path, model_data, write_yaml):
    write_yaml("specs/tiny-llama.yaml", model_data())
    write_yaml("specs/tiny-two.yaml", model_data(id="tiny-two"))  # same alias tiny/Tiny-Llama
    with pytest.raises(SpecFileError, match=r"alias 'tiny/Tiny-Llama' is already used by 'tiny-llama'"):
        catalog.Catalog(tmp_path / "specs", ModelSpec, "model").ids()


def test_catalog_indexes_ids_and_aliases(tmp_path, hw_data, write_yaml):
    write_yaml("hw/tiny-gpu.yaml", hw_data())
    cat = catalog.Catalog(tmp_path / "hw", HardwareProfile, "GPU")
    assert cat.ids() == ["tiny-gpu"]
    assert cat.get("TINY GPU").id == "tiny-gpu"


# --------------------------------------------------------------------------------------------
# Custom files in `plan`
# --------------------------------------------------------------------------------------------


def test_plan_accepts_a_custom_model_yaml_and_a_custom_gpu_yaml(cli, write_yaml):
    model = yaml.safe_load((catalog.MODEL_SPECS_DIR / "llama3.1-8b.yaml").read_text())
    model.update(id="my-llama", aliases=[])
    gpu = yaml.safe_load((catalog.HARDWARE_DIR / "rtx4090.yaml").read_text())
    gpu.update(id="my-gpu", aliases=[])
    gpu["memory"].update(capacity_gib=8)
    del gpu["memory"]["usable_mib"]
    model_path = write_yaml("my-llama.yaml", model)
    gpu_path = write_yaml("my-gpu.yaml", gpu)

    result = cli("plan", "--model", model_path, "--gpu", gpu_path, "--quant", "q4_k_m", "--json")

    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert (data["model"], data["gpu"]) == ("my-llama", "my-gpu")
    assert data["memory"]["device_bytes"] == 8 * 2**30
    # The same architecture as the catalog entry gives the same weights.
    reference = json.loads(cli("plan", "-m", "llama3.1-8b", "-g", "rtx4090", "-q", "q4_k_m", "--json").out)
    assert data["memory"]["weights_bytes"] == reference["memory"]["weights_bytes"]
