"""Weight bytes of a catalog model in a chosen format, grouped the way engines place them."""

from __future__ import annotations

from functools import lru_cache

from planner.spec.layout import WeightLayout
from planner.physics.quant import Engine, QuantFormat, tensor_bytes
from planner.spec.schema import ModelSpec
from planner.spec.tensors import Role, parameter_count, tensor_inventory


@lru_cache(maxsize=256)  # pure and frozen in, frozen out: `validate` and searches ask for the same layouts
def weight_layout(spec: ModelSpec, quant: QuantFormat, engine: Engine) -> WeightLayout:
    """Σ over tensors of n_elements × bits(type)/8, per tensor group (never params × nominal bits).

    Source: docs/physics.md §1 ("weight_bytes = Σ_tensors n_elem × bpw(type)/8").
    A tied head is stored once in files; engines that need it on the device twice are handled in
    ``planner.physics.engines``.
    """
    n = spec.architecture.n_layers
    layer = [0] * n
    experts = [0] * n
    token_embd = output = other = 0
    tied = spec.architecture.tie_word_embeddings
    for t in tensor_inventory(spec):
        b = tensor_bytes(spec, t, quant, engine)
        if t.role is Role.embedding:
            token_embd = b
            if tied:
                output = b
        elif t.role is Role.output:
            output = b
        elif t.layer is not None:
            layer[t.layer] += b
            if t.copies > 1:
                experts[t.layer] += b
        else:
            other += b
    return WeightLayout(
        token_embd_bytes=token_embd,
        output_bytes=output,
        tied_embeddings=tied,
        layer_bytes=tuple(layer),
        layer_expert_bytes=tuple(experts) if spec.moe else (),
        other_bytes=other,
        n_params=parameter_count(spec),
        label=quant.id,
    )
