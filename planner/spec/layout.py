"""Where the weight bytes of one model in one format sit, tensor group by tensor group.

This is the meeting point of two roads: the catalog road (architecture → tensor inventory →
quantization rules → bytes) and the file road (a GGUF or safetensors header → exact bytes).
The memory and latency models only ever see a ``WeightLayout``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class WeightLayout(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    token_embd_bytes: int = Field(ge=0, description="input embedding table")
    output_bytes: int = Field(
        ge=0, description="lm_head; for tied embeddings the bytes of the shared table used as output"
    )
    tied_embeddings: bool = False
    layer_bytes: tuple[int, ...] = Field(description="all weights of each decoder layer, experts included")
    layer_expert_bytes: tuple[int, ...] = Field(
        default=(), description="routed-expert weights of each layer (0 for dense layers); empty if dense"
    )
    other_bytes: int = Field(default=0, ge=0, description="final norm and other small tensors")
    n_params: int = Field(ge=0, description="parameters counted once (tied tables once)")
    label: str = Field(description="format name, e.g. q4_k_m or 'Q4_K_M (from file)'")

    @model_validator(mode="after")
    def _check(self) -> WeightLayout:
        if self.layer_expert_bytes and len(self.layer_expert_bytes) != len(self.layer_bytes):
            raise ValueError(
                f"layer_expert_bytes has {len(self.layer_expert_bytes)} entries for {len(self.layer_bytes)} layers"
            )
        for i, (total, experts) in enumerate(zip(self.layer_bytes, self.layer_expert_bytes)):
            if experts > total:
                raise ValueError(f"layer {i}: expert bytes {experts} exceed the layer's {total}")
        return self

    @property
    def n_layers(self) -> int:
        return len(self.layer_bytes)

    @property
    def file_bytes(self) -> int:
        """All weights in this format once, as in the model file (tied tables stored once)."""
        output = 0 if self.tied_embeddings else self.output_bytes
        return self.token_embd_bytes + output + sum(self.layer_bytes) + self.other_bytes

    @property
    def expert_bytes(self) -> int:
        return sum(self.layer_expert_bytes)
