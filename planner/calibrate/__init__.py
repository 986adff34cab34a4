"""Meeting reality: the local decode benchmark, llama-bench ingestion, efficiency fits,
the calibration store, validation against published measurements and local device detection."""
