"""The analytic models: engine facts, quantization formats, weight, KV-cache and overhead memory,
and decode/prefill step times. Every formula is written once here and cited to docs/physics.md."""
