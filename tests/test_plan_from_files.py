"""A plan from a model file equals the plan from the equivalent catalog entry (issue 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from gguf import GGUFWriter
from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from planner.spec import catalog
from planner.estimate import plan, resolve
from planner.physics.quant import QUANTS, Engine, gguf_tensor_type
from planner.spec.tensors import Role, tensor_inventory
from planner.physics.workload import Workload

TINY = {
    "id": "tiny-file-model",
    "name": "Tiny model written to files",
    "architecture": {
        "source": "test fixture", "family": "llama", "n_layers": 8, "hidden_size": 256, "n_heads": 4,
        "n_kv_heads": 2, "head_dim": 64, "intermediate_size": 512, "vocab_size": 512, "max_context": 4096,
    },
    "published": {"source": "test fixture", "total_params": 1},
}


def _gguf_name(tensor_name: str) -> str:
    """planner's tensor names are GGUF names without the '.weight' suffix of matrices and norms."""
    return tensor_name if tensor_name.endswith(".bias") else f"{tensor_name}.weight"


def write_gguf_like_llama_cpp(spec, quant: str, path: Path) -> None:
    """A GGUF whose tensors have the types llama.cpp's quantizer gives them (planner.physics.quant's rules)."""
    a = spec.architecture
    w = GGUFWriter(str(path), "llama")
    w.add_block_count(a.n_layers)
    w.add_context_length(a.max_context)
    w.add_embedding_length(a.hidden_size)
    w.add_feed_forward_length(a.intermediate_size)
    w.add_head_count(a.n_heads)
    w.add_head_count_kv(a.n_kv_heads)
    w.add_file_type(LlamaFileType.MOSTLY_Q4_K_M)
    w.add_token_list([f"t{i}" for i in range(a.vocab_size)])
    for t in tensor_inventory(spec):
        qtype = GGMLQuantizationType[gguf_tensor_type(spec, t, quant).name]
        block, size = GGML_QUANT_SIZES[qtype]
        rows = (t.rows,) if t.role is not Role.small else ()
        w.add_tensor(_gguf_name(t.name), np.zeros((*rows, t.row_length // block * size), np.uint8), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def memory(estimate) -> dict:
    return estimate.memory.model_dump()


def test_plan_from_a_gguf_file_equals_the_plan_from_its_spec(tmp_path):
    spec_path = tmp_path / "tiny-file-model.yaml"
    spec_path.write_text(yaml.safe_dump(TINY))
    spec = catalog.load_model(str(spec_path))
    gguf_path = tmp_path / "tiny-Q4_K_M.gguf"
    write_gguf_like_llama_cpp(spec, "q4_k_m", gguf_path)
    workload = Workload(ctx=2048, prompt_tokens=256, gen_tokens=64)

    from_spec = plan(resolve(str(spec_path), "rtx4090", quant="q4_k_m", workload=workload))[0]
    from_file = plan(resolve(str(gguf_path), "rtx4090", workload=workload))[0]

    assert from_file.quant == "q4_k_m"  # the file fixes the format
    assert memory(from_file) == memory(from_spec)
    assert from_file.performance.decode_tok_s == pytest.approx(from_spec.performance.decode_tok_s, rel=1e-9)


def test_a_conflicting_quant_for_a_gguf_file_is_an_input_error(tmp_path, cli):
    spec_path = tmp_path / "tiny-file-model.yaml"
    spec_path.write_text(yaml.safe_dump(TINY))
    gguf_path = tmp_path / "tiny-Q4_K_M.gguf"
    write_gguf_like_llama_cpp(catalog.load_model(str(spec_path)), "q4_k_m", gguf_path)
    result = cli("plan", "--model", str(gguf_path), "--gpu", "rtx4090", "--quant", "q8_0")
    assert result.code == 2
    assert result.err_lines == ["error: the model file is q4_k_m; --quant q8_0 contradicts it (leave --quant out)"]


def test_plan_from_a_hugging_face_config_equals_the_catalog_plan(tmp_path):
    """Llama-3.1-8B's config.json values (the catalog entry's source) give the same plan."""
    a = catalog.load_model("llama3.1-8b").architecture
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_hidden_layers": a.n_layers,
        "hidden_size": a.hidden_size, "num_attention_heads": a.n_heads, "num_key_value_heads": a.n_kv_heads,
        "head_dim": a.head_dim, "intermediate_size": a.intermediate_size, "vocab_size": a.vocab_size,
        "max_position_embeddings": a.max_context, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
    }
    folder = tmp_path / "Llama-3.1-8B"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    for engine, quant in (("llama.cpp", "q4_k_m"), ("vllm", "bf16"), ("torch", "bf16")):
        workload = Workload(ctx=8192, batch=2)
        from_catalog = plan(resolve("llama3.1-8b", "rtx4090", quant=quant, engine=engine, workload=workload))[0]
        from_config = plan(resolve(str(folder / "config.json"), "rtx4090", quant=quant, engine=engine, workload=workload))[0]
        assert memory(from_config) == memory(from_catalog), engine


def test_gguf_weights_match_the_quantizer_rules_byte_for_byte(tmp_path):
    spec_path = tmp_path / "tiny-file-model.yaml"
    spec_path.write_text(yaml.safe_dump(TINY))
    spec = catalog.load_model(str(spec_path))
    gguf_path = tmp_path / "tiny.gguf"
    write_gguf_like_llama_cpp(spec, "q4_k_m", gguf_path)
    from planner.spec.readers import read_model_file
    from planner.physics.weights import weight_layout

    assert read_model_file(gguf_path).layout.file_bytes == weight_layout(
        spec, QUANTS["q4_k_m"], Engine.llama_cpp).file_bytes
