"""PyTorch micro-benchmarks and a real decode loop. torch is imported lazily inside each module's functions."""
