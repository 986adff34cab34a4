"""Each engine's scheduler limits, from the same engine facts and memory model `plan` uses.

* vLLM: max_num_seqs and max_num_batched_tokens (EngineArgs defaults, physics.engines), a paged pool of
  16-token blocks holding ``MemoryBreakdown.kv_cache_tokens`` tokens, recompute preemption, sequences up
  to the model's trained context (max_model_len).
* llama-server: ``-np`` slots sharing ``-c`` tokens (each slot -c/-np), prompt batches of n_batch = 2048
  (tools/server defaults), no preemption: a slot's cells are reserved up front.
* Ollama: OLLAMA_NUM_PARALLEL slots (default 1) and OLLAMA_MAX_QUEUE = 512 queued requests; beyond that it
  answers 503 (ollama envconfig).
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.errors import InputError
from planner.physics import engines as eng
from planner.physics.memory import memory_breakdown
from planner.physics.quant import Engine
from planner.physics.workload import Deployment
from planner.serving.replica import Scheduler

LLAMA_SERVER_N_BATCH = 2048  # llama-server -b default (common/common.h n_batch)
OLLAMA_MAX_QUEUE = 512  # envconfig.MaxQueue default
OLLAMA_NUM_PARALLEL = 1  # envconfig.NumParallel default when unset in current releases


@dataclass(frozen=True)
class EngineKnobs:
    """What a user may set: slots for llama-server/Ollama, limits and prefix-cache hits for vLLM."""

    slots: int | None = None
    slot_ctx: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    prefix_hit: float = 0.0


def scheduler_for(d: Deployment, knobs: EngineKnobs = EngineKnobs()) -> tuple[Scheduler, bool]:
    """The replica's scheduler and whether the deployment fits in device memory."""
    if not 0.0 <= knobs.prefix_hit < 1.0:
        raise InputError("--prefix-hit must be in [0, 1)")
    if d.engine is Engine.vllm:
        mem = memory_breakdown(d)
        tokens, seqs = eng.vllm_batch_defaults(d.hardware)
        pool = (mem.kv_cache_tokens or 0) // eng.VLLM_BLOCK_TOKENS
        fits = mem.fits and pool > 0
        return Scheduler(max_seqs=knobs.max_num_seqs or seqs, max_tokens=knobs.max_num_batched_tokens or tokens,
                         total_blocks=max(pool, 1), block_tokens=eng.VLLM_BLOCK_TOKENS,
                         max_seq_tokens=d.model.architecture.max_context, prefix_hit=knobs.prefix_hit), fits
    if d.engine.reads_gguf:
        ollama = d.engine is Engine.ollama
        slots = knobs.slots or (OLLAMA_NUM_PARALLEL if ollama else d.workload.batch)
        slot_ctx = knobs.slot_ctx or d.workload.ctx
        fits = memory_breakdown(d).fits
        return Scheduler(max_seqs=slots, max_tokens=LLAMA_SERVER_N_BATCH, total_blocks=None, max_seq_tokens=slot_ctx,
                         queue_limit=OLLAMA_MAX_QUEUE if ollama else None), fits
    raise InputError(f"the serving simulator models vllm, llama.cpp (llama-server) and ollama, not {d.engine.value}")
