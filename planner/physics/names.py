"""The names users choose between: engines and their KV-cache dtypes, parallel modes. Light on purpose
(no pydantic, no catalog), so the command line can build its choices and help from them at start-up."""

from __future__ import annotations

from enum import Enum
from typing import Literal, get_args

from planner.errors import UnknownNameError


class Engine(str, Enum):
    llama_cpp = "llama.cpp"
    ollama = "ollama"
    vllm = "vllm"
    torch = "torch"  # compiled PyTorch decode loops (gpt-fast style: torch.compile, CUDA graphs)
    transformers = "transformers"  # Hugging Face transformers generate(), eager

    @property
    def reads_gguf(self) -> bool:
        return self in (Engine.llama_cpp, Engine.ollama)


ENGINE_KV_DTYPES: dict[Engine, tuple[str, ...]] = {
    Engine.llama_cpp: ("f16", "bf16", "f32", "q8_0", "q4_0"),
    Engine.ollama: ("f16", "q8_0", "q4_0"),  # OLLAMA_KV_CACHE_TYPE
    Engine.vllm: ("f16", "bf16", "fp8"),
    Engine.torch: ("f16", "bf16", "f32"),
    Engine.transformers: ("f16", "bf16", "f32"),
}


def get_engine(name: str) -> Engine:
    try:
        return Engine(name.lower())
    except ValueError:
        aliases = {"llamacpp": Engine.llama_cpp, "llama-cpp": Engine.llama_cpp, "pytorch": Engine.torch, "hf": Engine.transformers}
        if name.lower() in aliases:
            return aliases[name.lower()]
        raise UnknownNameError("engine", name, [e.value for e in Engine]) from None


Parallel = Literal["layer", "tp", "pp"]
PARALLEL_MODES: tuple[str, ...] = get_args(Parallel)
Prefer = Literal["quality", "speed"]  # how recommend and compare pick among configurations that fit
Sort = Literal["tok_s", "price", "memory", "cost"]  # compare's row orders


def all_kv_dtypes() -> list[str]:
    """Every KV dtype some engine takes, in a stable order."""
    return list(dict.fromkeys(k for kvs in ENGINE_KV_DTYPES.values() for k in kvs))
