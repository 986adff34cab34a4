"""What is being planned: the spec schema, the catalog of models and devices, tensor inventories,
and the bounded readers for model files (GGUF, safetensors, Hugging Face configs)."""
