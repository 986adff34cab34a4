"""The spec schema: typos fail, derived fields are derived only when absent, and errors name numbers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from planner.spec.schema import HardwareProfile, ModelSpec


def test_tiny_model_factory_validates(make_model, tiny_model_params):
    spec = make_model()
    assert spec.id == "tiny-llama"
    assert spec.published.total_params == tiny_model_params


@pytest.mark.parametrize(
    "where",
    [(), ("architecture",), ("published",)],
    ids=["top-level", "architecture", "published"],
)
def test_unknown_model_key_is_rejected(model_data, where):
    data = model_data()
    block = data
    for key in where:
        block = block[key]
    block["n_layer"] = 3  # a typo of n_layers
    with pytest.raises(ValidationError) as info:
        ModelSpec.model_validate(data)
    (err,) = info.value.errors()
    assert err["type"] == "extra_forbidden"
    assert err["loc"] == (*where, "n_layer")


def test_unknown_hardware_key_is_rejected(hw_data):
    data = hw_data(memory={"capacity_gb": 8})  # capacity_gib is the field
    with pytest.raises(ValidationError) as info:
        HardwareProfile.model_validate(data)
    assert ("memory", "capacity_gb") in [e["loc"] for e in info.value.errors()]


def test_head_dim_is_hidden_size_over_n_heads_when_absent(make_model):
    assert make_model().architecture.head_dim == 64 // 4


def test_declared_head_dim_is_kept_not_overwritten(make_model):
    # Gemma-style: head_dim × n_heads != hidden_size; the declared value wins.
    spec = make_model(architecture={"head_dim": 32})
    assert spec.architecture.head_dim == 32


def test_n_kv_heads_defaults_to_n_heads_multi_head_attention(model_data):
    data = model_data()
    del data["architecture"]["n_kv_heads"]
    spec = ModelSpec.model_validate(data)
    assert spec.architecture.n_kv_heads == spec.architecture.n_heads == 4


def test_head_dim_underivable_error_names_the_numbers(make_model):
    with pytest.raises(ValidationError, match=r"hidden_size 66 is not divisible by n_heads 4; set head_dim"):
        make_model(architecture={"hidden_size": 66})


def test_n_heads_not_divisible_by_n_kv_heads_error_names_both_numbers(make_model):
    with pytest.raises(ValidationError, match=r"n_heads 4 is not divisible by n_kv_heads 3"):
        make_model(architecture={"n_kv_heads": 3})


@pytest.mark.parametrize("block", ["architecture", "published"])
def test_model_block_without_source_is_rejected(model_data, block):
    data = model_data()
    del data[block]["source"]
    with pytest.raises(ValidationError) as info:
        ModelSpec.model_validate(data)
    assert (block, "source") in [e["loc"] for e in info.value.errors()]


@pytest.mark.parametrize("block", ["memory", "compute"])
def test_hardware_block_without_source_is_rejected(hw_data, block):
    data = hw_data()
    del data[block]["source"]
    with pytest.raises(ValidationError) as info:
        HardwareProfile.model_validate(data)
    assert (block, "source") in [e["loc"] for e in info.value.errors()]


def test_moe_block_without_source_is_rejected(model_data):
    data = model_data(moe={"n_experts": 8, "n_active_experts": 2, "expert_intermediate_size": 128})
    with pytest.raises(ValidationError) as info:
        ModelSpec.model_validate(data)
    assert ("moe", "source") in [e["loc"] for e in info.value.errors()]


def test_empty_source_is_rejected(model_data):
    with pytest.raises(ValidationError):
        ModelSpec.model_validate(model_data(architecture={"source": ""}))


def test_more_active_experts_than_experts_error_names_the_numbers(model_data):
    data = model_data(moe={"source": "test", "n_experts": 8, "n_active_experts": 9, "expert_intermediate_size": 16})
    with pytest.raises(ValidationError, match=r"n_active_experts 9 exceeds n_experts 8"):
        ModelSpec.model_validate(data)


def test_unified_device_without_unified_memory_block_is_rejected(hw_data):
    data = hw_data(vendor="apple", kind="unified")
    with pytest.raises(ValidationError, match=r"unified_memory"):
        HardwareProfile.model_validate(data)


def test_unified_device_with_unified_memory_block_loads(make_hw):
    hw = make_hw(vendor="apple", kind="unified", unified_memory={"source": "test", "gpu_fraction": 0.75})
    assert hw.unified_memory.gpu_fraction == 0.75


def test_memory_bytes_prefers_driver_reported_mib(make_hw):
    assert make_hw().memory_bytes == 8 * 2**30
    assert make_hw(memory={"usable_mib": 8000}).memory_bytes == 8000 * 2**20


def test_bandwidth_is_decimal_gb_per_s(make_hw):
    assert make_hw().bandwidth_bytes_per_s == 100e9


def test_specs_are_frozen(make_model):
    spec = make_model()
    with pytest.raises(ValidationError):
        spec.id = "other"
