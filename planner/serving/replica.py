"""One engine replica, simulated iteration by iteration (continuous batching).

Each iteration the scheduler gives every running sequence past its prompt one decode token, gives
prompt chunks to sequences still in prefill (in order) and admits waiting requests while there is room:
at most ``max_seqs`` sequences, at most ``max_tokens`` tokens per step (vLLM max_num_seqs and
max_num_batched_tokens with chunked prefill; llama-server -np slots and n_batch), and KV blocks of
``block_tokens`` from a pool of ``total_blocks``. When a step's new tokens need more blocks than are
free, the most recently admitted sequence is preempted and later recomputes its prompt and its output so
far (vLLM's recompute preemption); engines that reserve a slot per sequence never run out.

Speed: every decoding sequence gains one token per step, so a decoding sequence is stored as
``base`` with context ``base + T`` (T = steps so far) and a finishing step; a run of pure decode steps
between events (an admissible arrival, a completion, the KV pool running out) costs O(1): its step
times are linear in the step index (``StepModel``), so their sum and the step at which an arrival
lands follow in closed form. Sliding-window models sum min(c, window) per step with numpy instead.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from planner.serving.book import Book
from planner.serving.steps import StepModel

WINDOW_RUN_STEPS = 128  # sliding-window runs evaluate B × k contexts per run
NEVER = 1 << 62


@dataclass(frozen=True)
class Scheduler:
    """An engine's batching limits."""

    max_seqs: int
    max_tokens: int
    total_blocks: int | None  # None: a fixed slot per sequence (llama-server, Ollama)
    block_tokens: int = 16
    max_seq_tokens: int | None = None  # longest prompt + output one sequence may hold
    queue_limit: int | None = None  # requests queued beyond it are refused (Ollama OLLAMA_MAX_QUEUE)
    prefix_hit: float = 0.0  # share of each prompt found in the prefix cache


class Replica:
    def __init__(self, steps: StepModel, sched: Scheduler, book: Book,
                 on_finish: Callable[[int, float], None] | None = None):
        self.m, self.s, self.book, self.on_finish = steps, sched, book, on_finish
        cap = sched.max_seqs
        # decoding sequences at slots 0 … nd−1: request id, context − T (numpy, for block and window sums),
        # finishing step, admission order; ``pos`` maps a request to its slot, ``fins`` is a heap of
        # (finishing step, request) with stale entries of preempted requests skipped lazily.
        self.drid: list[int] = [0] * cap
        self.dbase = np.zeros(cap, dtype=np.int64)
        self.dfin: list[int] = [0] * cap
        self.dseq: list[int] = [0] * cap
        self.pos: dict[int, int] = {}
        self.fins: list[tuple[int, int]] = []
        self.nd = 0
        self.sum_base = 0
        self.pre: list[list[int]] = []  # in prefill: [rid, ctx, target, tokens out so far, admission order]
        self.T = 0
        self.admitted = 0
        self.pending: deque[int] = deque()
        self.waiting: deque[int] = deque()
        self.resumed: dict[int, int] = {}
        self.now = 0.0
        self.busy_s = self.seq_seconds = self.in_system_seconds = self.kv_token_seconds = 0.0
        self.preemptions = 0
        self.outstanding = 0

    # -- arrivals ----------------------------------------------------------------------------

    def submit(self, rid: int) -> None:
        """Queue a request (in arrival order); one that can never fit is refused."""
        b, s = self.book, self.s
        size = int(b.prompt[rid] + b.gen[rid])
        if (s.max_seq_tokens is not None and size > s.max_seq_tokens) or (
                s.total_blocks is not None and -(-size // s.block_tokens) > s.total_blocks):
            b.rejected[rid] = True
            return
        self.pending.append(rid)
        self.outstanding += 1

    def next_arrival(self) -> float:
        return float(self.book.arrival[self.pending[0]]) if self.pending else math.inf

    def _arrive(self) -> None:
        arrival, pending, waiting, ql = self.book.arrival, self.pending, self.waiting, self.s.queue_limit
        while pending and arrival[pending[0]] <= self.now:
            rid = pending.popleft()
            if ql is not None and len(waiting) >= ql:
                self.book.rejected[rid] = True
                self.outstanding -= 1
                continue
            waiting.append(rid)
            self.in_system_seconds += self.now - arrival[rid]

    # -- KV blocks ---------------------------------------------------------------------------

    def _ctx_sum(self) -> int:
        return self.sum_base + self.nd * self.T

    def _prefill_blocks(self) -> int:
        bt = self.s.block_tokens
        return sum(-(-p[1] // bt) for p in self.pre)

    def _decode_blocks(self, steps_ahead: int = 0, exact: bool = False) -> int:
        """Blocks the decoding sequences hold after ``steps_ahead`` more steps: an upper bound from
        the context sum (each sequence wastes under one block) unless ``exact``."""
        bt, nd = self.s.block_tokens, self.nd
        if not exact:
            return (self._ctx_sum() + nd * steps_ahead + nd * (bt - 1)) // bt
        return int((-(-(self.dbase[:nd] + (self.T + steps_ahead)) // bt)).sum())

    def _fits(self, steps_ahead: int, extra: int) -> bool:
        total = self.s.total_blocks
        if total is None:
            return True
        pre = self._prefill_blocks() if self.pre else 0
        nd, bt = self.nd, self.s.block_tokens
        if (self.sum_base + nd * (self.T + steps_ahead + bt - 1)) // bt + pre + extra <= total:
            return True
        return self._decode_blocks(steps_ahead, exact=True) + pre + extra <= total

    # -- membership --------------------------------------------------------------------------

    @property
    def fin_min(self) -> int:
        """The earliest finishing step of a decoding sequence (NEVER when none)."""
        fins, pos, dfin = self.fins, self.pos, self.dfin
        while fins:
            f, rid = fins[0]
            i = pos.get(rid)
            if i is not None and dfin[i] == f:
                return f
            heapq.heappop(fins)
        return NEVER

    def _add_decoding(self, rid: int, ctx: int, out_so_far: int, order: int) -> None:
        want = int(self.book.gen[rid])
        if out_so_far >= want:
            self._finish([rid])
            return
        i = self.nd
        base = ctx - self.T
        fin = self.T + want - out_so_far
        self.drid[i], self.dfin[i], self.dseq[i] = rid, fin, order
        self.dbase[i] = base
        self.pos[rid] = i
        heapq.heappush(self.fins, (fin, rid))
        self.nd += 1
        self.sum_base += base

    def _remove_decoding(self, i: int) -> None:
        """Drop slot i: the last sequence moves into the hole (admission order lives in dseq)."""
        last = self.nd - 1
        rid = self.drid[i]
        self.sum_base -= int(self.dbase[i])
        del self.pos[rid]
        if i != last:
            moved = self.drid[last]
            self.drid[i], self.dfin[i], self.dseq[i] = moved, self.dfin[last], self.dseq[last]
            self.dbase[i] = self.dbase[last]
            self.pos[moved] = i
        self.nd = last

    def _finish(self, rids: list[int]) -> None:
        for rid in rids:
            self.book.finish[rid] = self.now
        self.outstanding -= len(rids)
        if self.on_finish is not None:
            for rid in rids:
                self.on_finish(rid, self.now)

    def _finish_due(self) -> None:
        T, fins = self.T, self.fins
        done = []
        while self.fin_min <= T:
            _, rid = heapq.heappop(fins)
            self._remove_decoding(self.pos[rid])
            done.append(rid)
        if done:
            self._finish(done)

    def _preempt_newest(self) -> None:
        """vLLM: the lowest-priority running request (the newest) loses its blocks and goes back to the
        front of the queue; it recomputes its prompt and output so far when readmitted."""
        last_pre = self.pre[-1][4] if self.pre else -1
        j = max(range(self.nd), key=self.dseq.__getitem__) if self.nd else -1
        if j >= 0 and self.dseq[j] > last_pre:
            rid = self.drid[j]
            self.resumed[rid] = int(self.book.gen[rid]) - (self.dfin[j] - self.T)
            self._remove_decoding(j)
        else:
            rid, _, _, out, _ = self.pre.pop()
            self.resumed[rid] = out
        self.book.preempted[rid] += 1
        self.preemptions += 1
        self.waiting.appendleft(rid)

    def _admit(self, budget: int, reserved_blocks: int = 0) -> list[list[int]]:
        s, b = self.s, self.book
        new = []
        while self.waiting and self.nd + len(self.pre) < s.max_seqs and budget > 0:
            rid = self.waiting[0]
            out = self.resumed.get(rid, 0)
            target = int(b.prompt[rid]) + out
            start = 0
            if s.prefix_hit and not out:
                start = min(int(s.prefix_hit * target) // s.block_tokens * s.block_tokens, max(target - 1, 0))
            chunk = min(target - start, budget)
            if s.total_blocks is not None and not self._fits(
                    1, reserved_blocks - (-(start + chunk) // s.block_tokens)):
                break
            self.waiting.popleft()
            self.admitted += 1
            entry = [rid, start, target, out, self.admitted]
            self.pre.append(entry)
            new.append(entry)
            budget -= chunk
        return new

    def _can_admit(self) -> bool:
        if not self.waiting or self.nd + len(self.pre) >= self.s.max_seqs:
            return False
        rid = self.waiting[0]
        first = min(int(self.book.prompt[rid]) + self.resumed.get(rid, 0), self.s.max_tokens)
        return self.s.total_blocks is None or self._fits(1, -(-first // self.s.block_tokens))

    # -- steps -------------------------------------------------------------------------------

    def _chunks(self, budget: int) -> list[tuple[list[int], int]]:
        out = []
        for p in self.pre:
            if budget <= 0:
                break
            c = min(p[2] - p[1], budget)
            out.append((p, c))
            budget -= c
        return out

    def _chunk_blocks(self, chunks) -> int:
        bt = self.s.block_tokens
        return sum(-(-(p[1] + c) // bt) - -(-p[1] // bt) for p, c in chunks)

    def _general_step(self) -> None:
        s = self.s
        budget = s.max_tokens - self.nd
        chunks = self._chunks(budget)
        preempted = False
        while s.total_blocks is not None and (self.nd or self.pre) and not self._fits(1, self._chunk_blocks(chunks)):
            self._preempt_newest()
            preempted = True
            chunks = self._chunks(s.max_tokens - self.nd)
        if not preempted:
            left = s.max_tokens - self.nd - sum(c for _, c in chunks)
            chunks += list(self._admitted_chunks(left, self._chunk_blocks(chunks)))
        nd = self.nd
        if nd == 0 and not chunks:
            return
        m = self.m
        ctx_sum = self._ctx_sum() + nd
        capped = m.capped(self.dbase[:nd] + (self.T + 1)) if m.window is not None else 0
        decode_s = m.decode_seconds(nd, ctx_sum, capped) if nd else 0.0
        prefill_s = m.prefill_seconds([(p[1], p[1] + c) for p, c in chunks])
        dt = m.step_seconds(decode_s, prefill_s)
        self._account(dt, nd + len(chunks), ctx_sum + sum(p[1] + c for p, c in chunks))
        self.T += 1
        first = self.book.first
        done = []
        for p, c in chunks:
            p[1] += c
            if p[1] >= p[2]:
                done.append(p)
                rid = p[0]
                if math.isnan(first[rid]):
                    first[rid] = self.now
        for p in done:
            self.pre.remove(p)
            self._add_decoding(p[0], p[1], p[3] + 1, p[4])
        self._finish_due()

    def _admitted_chunks(self, budget: int, reserved_blocks: int):
        for entry in self._admit(budget, reserved_blocks):
            c = min(entry[2] - entry[1], budget)
            budget -= c
            yield entry, c

    def _account(self, dt: float, running: int, kv_tokens: float) -> None:
        self.now += dt
        self.busy_s += dt
        self.seq_seconds += running * dt
        self.in_system_seconds += (running + len(self.waiting)) * dt
        self.kv_token_seconds += kv_tokens * dt

    def _run_length(self, k: int) -> int:
        """Most decode steps (≤ k) whose new blocks fit in the pool."""
        if self._fits(k, 0):
            return k
        lo, hi = 0, k
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._fits(mid, 0):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def _decode_run(self, t_limit: float = math.inf) -> bool:
        """Advance a run of pure decode steps, stopping at the step in progress at the next admissible
        arrival or at ``t_limit`` (a balancer may route a request here then); False when the pool has no
        block for even one step."""
        nd, m = self.nd, self.m
        k = self.fin_min - self.T
        if m.window is not None:
            k = min(k, WINDOW_RUN_STEPS)
        if self.s.total_blocks is not None:
            k = self._run_length(k)
            if k == 0:
                return False
        x = min(self.next_arrival() if self.nd < self.s.max_seqs else math.inf, t_limit) - self.now
        S0 = self._ctx_sum()
        if m.window is None:
            # t_j = a + b·j (context sum S0 + nd·j at step j); E(j) = j·a + b·j(j+1)/2
            a = m.decode_seconds(nd, S0, 0)
            b = m.decode_seconds(nd, S0 + nd, 0) - a
            if x < math.inf:
                k = min(k, 1 + _steps_before(a, b, x))
            dt = k * a + b * k * (k + 1) / 2
        else:
            j = np.arange(1, k + 1)
            capped = np.minimum(self.dbase[:nd, None] + (self.T + j)[None, :], m.window).sum(axis=0)
            ends = np.cumsum(m.decode_seconds(nd, S0 + nd * j, capped))
            if x < math.inf:
                k = min(k, int(np.searchsorted(ends, x, side="left")) + 1)
            dt = float(ends[k - 1])
        self._account(dt, nd, S0 + nd * (k + 1) / 2)
        self.T += k
        self._finish_due()
        return True

    # -- driver ------------------------------------------------------------------------------

    def advance_until(self, t_limit: float) -> None:
        """Run the steps that start before ``t_limit``; an idle replica jumps to its next arrival."""
        pending, arrival = self.pending, self.book.arrival
        while True:
            if pending and arrival[pending[0]] <= self.now:
                self._arrive()
            if self.nd == 0 and not self.pre and not self.waiting:
                na = self.next_arrival()
                if na >= t_limit:
                    return
                self.now = max(self.now, na)
                continue
            if self.now >= t_limit:
                return
            if not self.pre and self.nd and not self._can_admit() and self._decode_run(t_limit):
                continue
            self._general_step()


def _steps_before(a: float, b: float, x: float) -> int:
    """Largest j ≥ 0 with E(j) = j·a + b·j(j+1)/2 < x (steps that end before x)."""
    if x <= 0:
        return 0
    if b <= 0:
        j = int(x / a) if a > 0 else NEVER
    else:
        # b/2·j² + (a + b/2)·j − x = 0
        h = a + b / 2
        j = int((-h + math.sqrt(h * h + 2 * b * x)) / b)
    while j > 0 and j * a + b * j * (j + 1) / 2 >= x:
        j -= 1
    while (j + 1) * a + b * (j + 1) * (j + 2) / 2 < x:
        j += 1
    return j
