"""Vectorised evaluation of many candidate configurations at once (numpy).

``plan()`` answers one scenario; ``recommend`` and ``compare`` ask thousands (quant × KV dtype × host
layers × context × concurrency). The physics functions are written once for scalars and arrays alike
(``planner.physics.arith``), so a ``Group`` fixes one (model, device, engine, quant, GPU count, prompt,
gen) and calls the same memory and time functions ``plan`` uses, with numpy arrays shaped
(1, host layers, ctx, batch) for each KV dtype. ``tests/test_recommend.py`` checks the results against
``planner.estimate.plan`` on sampled points: ``fits`` exactly, speeds to 1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.physics import latency

from planner.physics import prefill
from planner.physics.efficiency import Efficiency, communication, default_efficiency
from planner.physics.kvcache import KVDType, KVDTypes
from planner.physics.memory import memory_fits, memory_parts, usable_device_bytes
from planner.physics.performance import host_efficiency
from planner.physics.workload import Deployment

I64 = np.int64


@dataclass
class Grid:
    """Results over the broadcast shape (kv, h, ctx, batch); speeds have ctx length 1."""

    fits: np.ndarray  # device and host parts both fit (what ``MemoryBreakdown.fits`` says)
    device_fits: np.ndarray  # the device part fits (total and most loaded GPU)
    host_fits: np.ndarray  # the layers kept in host memory fit the host (True without offload)
    total_bytes: np.ndarray
    per_gpu_bytes: np.ndarray
    device_bytes: int
    weights_bytes: np.ndarray
    kv_cache_bytes: np.ndarray
    overhead_bytes: np.ndarray
    host_bytes: np.ndarray
    decode_tok_s: np.ndarray
    ttft_s: np.ndarray
    e2e_s: np.ndarray

    def headroom_ok(self, fraction: float) -> np.ndarray:
        """headroom_bytes ≥ fraction × device_bytes, as ``MemoryBreakdown`` would give them."""
        return (self.device_bytes - self.total_bytes) >= fraction * self.device_bytes

    @property
    def size(self) -> int:
        return int(self.fits.size)


class Group:
    """One (model, device, engine, quant, GPU count, prompt, gen), evaluated for every KV dtype,
    host-layer count, context and concurrency."""

    def __init__(self, d: Deployment, efficiency: Efficiency | None = None):
        self.d = d
        self.n_layers = d.model.architecture.n_layers
        self.G = d.num_gpus
        self.P, self.N = d.workload.prompt_tokens, d.workload.gen_tokens
        self.eff = efficiency or default_efficiency(d.engine, d.hardware)
        self.host_eff = host_efficiency(d)
        self.comm = communication()
        self.usable = usable_device_bytes(d.hardware, d.engine)

    def evaluate(self, kvs: list[KVDType], h, ctx, batch) -> Grid:
        """Every combination of KV dtype × host layers × context × concurrency; arrays are shaped
        (kv, h, ctx, batch), speeds (kv, h, 1, batch)."""
        d, P, N = self.d, self.P, self.N
        kv = KVDTypes(tuple(kvs))
        h = np.asarray(h, dtype=I64)[None, :, None, None]
        C = np.asarray(ctx, dtype=I64)[None, None, :, None]
        B = np.asarray(batch, dtype=I64)[None, None, None, :]
        parts = memory_parts(d, kv, h, C, B)
        fits = memory_fits(parts, self.usable, self.G)
        k = latency.decode_coefficients(d, self.eff, self.host_eff, self.comm, batch=B, host_layers=h, kv=kv)
        if P > 0:
            ttft, _ = prefill.prefill_coefficients(d, self.eff, self.host_eff, self.comm, batch=B,
                                                   host_layers=h).seconds(P)
        else:  # an empty prompt: the first token is a decode step from an empty context
            ttft = k.step_seconds(0)
        decode = N / latency.decode_seconds_total(k, P, N)
        e2e = ttft + latency.decode_seconds_total(k, P + 1, N - 1)
        shape = (len(kvs), h.shape[1], C.shape[2], B.shape[3])
        speed = np.broadcast_shapes(np.shape(decode), np.shape(ttft), np.shape(e2e))

        def full(x):
            return np.broadcast_to(x, shape)

        fits = full(fits)
        if d.engine.reads_gguf:  # llama.cpp's extra condition is the host RAM of offloaded layers
            host_fits = full(parts.extra_ok)
            device_fits = full((parts.total <= self.usable * self.G) & (parts.per_gpu <= self.usable))
        else:  # the others' is on the device (vLLM's CUDA context outside its memory share)
            host_fits, device_fits = np.ones(shape, dtype=bool), fits
        return Grid(
            fits=fits, device_fits=device_fits, host_fits=host_fits, total_bytes=full(parts.total),
            per_gpu_bytes=full(parts.per_gpu), device_bytes=self.usable * self.G,
            weights_bytes=full(parts.device_weights), kv_cache_bytes=full(parts.kv_cache),
            overhead_bytes=full(parts.overhead_total), host_bytes=full(parts.host_weights + parts.host_kv_cache),
            decode_tok_s=np.broadcast_to(decode, speed), ttft_s=np.broadcast_to(ttft, speed),
            e2e_s=np.broadcast_to(e2e, speed),
        )
