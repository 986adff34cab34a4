"""The request ledger every replica writes to: arrival, sizes and the times each request reached."""

from __future__ import annotations

import numpy as np


class Book:
    """Per-request arrays, growable for closed-loop runs (amortised doubling)."""

    def __init__(self, capacity: int = 1024):
        cap = max(16, capacity)
        self.n = 0
        self.arrival = np.empty(cap)
        self.prompt = np.empty(cap, dtype=np.int64)
        self.gen = np.empty(cap, dtype=np.int64)
        self.first = np.empty(cap)
        self.finish = np.empty(cap)
        self.preempted = np.zeros(cap, dtype=np.int64)
        self.rejected = np.zeros(cap, dtype=bool)

    def _grow(self, need: int) -> None:
        cap = len(self.arrival)
        if need <= cap:
            return
        new = max(need, 2 * cap)
        for name in ("arrival", "prompt", "gen", "first", "finish", "preempted", "rejected"):
            old = getattr(self, name)
            arr = np.zeros(new, dtype=old.dtype) if name in ("preempted", "rejected") else np.empty(new, dtype=old.dtype)
            arr[:cap] = old
            setattr(self, name, arr)

    def add_many(self, arrival: np.ndarray, prompt: np.ndarray, gen: np.ndarray) -> np.ndarray:
        k = len(arrival)
        self._grow(self.n + k)
        s = slice(self.n, self.n + k)
        self.arrival[s], self.prompt[s], self.gen[s] = arrival, prompt, gen
        self.first[s] = np.nan
        self.finish[s] = np.nan
        ids = np.arange(self.n, self.n + k)
        self.n += k
        return ids

    def add(self, arrival: float, prompt: int, gen: int) -> int:
        self._grow(self.n + 1)
        i = self.n
        self.arrival[i], self.prompt[i], self.gen[i] = arrival, prompt, gen
        self.first[i] = self.finish[i] = np.nan
        self.n += 1
        return i
