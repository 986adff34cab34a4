"""Traffic for the serving simulator: token-length distributions, arrival processes and traces.

Every random draw comes from one ``numpy.random.Generator`` seeded by the caller, so a run is
reproducible for a given seed. Traces are read with a byte bound and a row bound.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

import numpy as np

from planner.errors import InputError, SpecFileError
from planner.spec.safeio import read_text

MAX_TOKENS = 10_000_000
MAX_TRACE_BYTES = 256 * 1024 * 1024
MAX_TRACE_ROWS = 5_000_000
MAX_REQUESTS = 20_000_000


@dataclass(frozen=True)
class LengthDist:
    """A token-length distribution: fixed, lognormal (mean of the lengths, sigma of the log),
    uniform on [a, b] or exponential with a mean. Draws are rounded and clipped to [lo, MAX_TOKENS]."""

    kind: str
    a: float
    b: float = 0.0

    @property
    def mean(self) -> float:
        return {"fixed": self.a, "lognormal": self.a, "uniform": (self.a + self.b) / 2, "exp": self.a}[self.kind]

    def sample(self, rng: np.random.Generator, n: int, lo: int = 0) -> np.ndarray:
        if self.kind == "fixed":
            x = np.full(n, self.a)
        elif self.kind == "lognormal":
            # E[X] = exp(mu + sigma^2 / 2) = mean  =>  mu = ln(mean) - sigma^2 / 2
            mu = math.log(self.a) - self.b**2 / 2
            x = rng.lognormal(mu, self.b, n)
        elif self.kind == "uniform":
            x = rng.uniform(self.a, self.b + 1, n)
            x = np.floor(x)
        else:
            x = rng.exponential(self.a, n)
        return np.clip(np.rint(x), lo, MAX_TOKENS).astype(np.int64)

    def describe(self) -> str:
        return {"fixed": f"{int(self.a)}", "lognormal": f"lognormal:mean={self.a:g},sigma={self.b:g}",
                "uniform": f"uniform:{int(self.a)},{int(self.b)}", "exp": f"exp:{self.a:g}"}[self.kind]


def _number(text: str, what: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise InputError(f"{what}: '{text}' is not a number") from None
    if not math.isfinite(v) or v < 0 or v > MAX_TOKENS:
        raise InputError(f"{what}: {text} is out of range (0 … {MAX_TOKENS:,})")
    return v


def parse_length(text: str | int, what: str = "--prompt") -> LengthDist:
    """'1000', 'lognormal:mean=1000,sigma=0.8', 'uniform:200,2000' or 'exp:300' (also 'exp:mean=300')."""
    s = str(text).strip().lower()
    if ":" not in s:
        return LengthDist("fixed", _number(s, what))
    kind, _, args = s.partition(":")
    parts = [p.strip() for p in args.split(",") if p.strip()]
    named = dict(p.split("=", 1) for p in parts if "=" in p)
    plain = [p for p in parts if "=" not in p]
    if kind == "lognormal":
        if set(named) != {"mean", "sigma"} or plain:
            raise InputError(f"{what}: write lognormal:mean=M,sigma=S")
        mean, sigma = _number(named["mean"], what), _number(named["sigma"], what)
        if mean <= 0 or sigma > 5:
            raise InputError(f"{what}: lognormal needs mean > 0 and sigma <= 5")
        return LengthDist("lognormal", mean, sigma)
    if kind == "uniform":
        if len(plain) != 2 or named:
            raise InputError(f"{what}: write uniform:a,b")
        a, b = _number(plain[0], what), _number(plain[1], what)
        if b < a:
            raise InputError(f"{what}: uniform:a,b needs a <= b")
        return LengthDist("uniform", a, b)
    if kind in ("exp", "exponential"):
        vals = plain or [named.get("mean", "")]
        if len(vals) != 1:
            raise InputError(f"{what}: write exp:MEAN")
        m = _number(vals[0], what)
        if m <= 0:
            raise InputError(f"{what}: exp needs a mean > 0")
        return LengthDist("exp", m)
    raise InputError(f"{what}: unknown distribution '{kind}'; use a number, lognormal:, uniform: or exp:")


def poisson_or_gamma_arrivals(rng: np.random.Generator, rps: float, duration_s: float,
                              burstiness: float = 1.0) -> np.ndarray:
    """Arrival times in [0, duration): inter-arrival gaps ~ Gamma(shape=burstiness, mean=1/rps); shape 1
    is a Poisson process, shape < 1 burstier (coefficient of variation 1/sqrt(shape)), as in vLLM's
    benchmark_serving --burstiness."""
    if rps <= 0 or not math.isfinite(rps):
        raise InputError("--rps must be a positive number")
    if not (0.01 <= burstiness <= 1000):
        raise InputError("--burstiness must be between 0.01 and 1000 (1 = Poisson)")
    expected = rps * duration_s
    if expected > MAX_REQUESTS:
        raise InputError(f"--rps x --duration asks for {expected:,.0f} requests; at most {MAX_REQUESTS:,}")
    n = int(expected + 10 * math.sqrt(expected / burstiness) + 16)
    gaps = rng.gamma(burstiness, 1.0 / (rps * burstiness), n)
    t = np.cumsum(gaps)
    while t[-1] < duration_s:  # astronomically rare: extend instead of truncating the process
        t = np.concatenate([t, t[-1] + np.cumsum(rng.gamma(burstiness, 1.0 / (rps * burstiness), n))])
    return t[t < duration_s]


@dataclass(frozen=True)
class Requests:
    """Open-loop requests sorted by arrival: times (s), prompt and output tokens."""

    arrival_s: np.ndarray
    prompt: np.ndarray
    gen: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival_s)


def synthetic(rng: np.random.Generator, rps: float, duration_s: float, prompt: LengthDist, gen: LengthDist,
              burstiness: float = 1.0) -> Requests:
    t = poisson_or_gamma_arrivals(rng, rps, duration_s, burstiness)
    return Requests(t, prompt.sample(rng, len(t), 0), gen.sample(rng, len(t), 1))


_TIME_COLS = ("timestamp", "arrival_time", "arrival_s", "time", "arrival")
_PROMPT_COLS = ("contexttokens", "prompt_tokens", "prompt", "input_tokens", "input_len")
_GEN_COLS = ("generatedtokens", "output_tokens", "gen_tokens", "gen", "output_len", "completion_tokens")


def _pick(row: dict, names: tuple[str, ...], path: str, line: int):
    for k in names:
        if k in row and row[k] not in (None, ""):
            return row[k]
    raise SpecFileError(path, f"line {line}: needs one of the columns {', '.join(names)}")


def _timestamp(value, path: str, line: int) -> float:
    """Seconds, or an ISO date-time as in the Azure LLM inference traces ('2023-11-16 18:15:46.6805900')."""
    try:
        return float(value)
    except (TypeError, ValueError):
        pass
    from datetime import datetime

    text = str(value).strip()
    if "." in text:  # Python parses at most 6 fractional digits; the Azure traces carry 7
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise SpecFileError(path, f"line {line}: '{value}' is neither seconds nor a date-time") from None


def _tokens(value, path: str, line: int, lo: int) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecFileError(path, f"line {line}: '{value}' is not a token count") from None
    if not math.isfinite(v) or v < lo or v > MAX_TOKENS:
        raise SpecFileError(path, f"line {line}: token count {value} out of range ({lo} … {MAX_TOKENS:,})")
    return int(v)


def _rows(path: str, text: str):
    stripped = text.lstrip()
    if stripped.startswith("{"):
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SpecFileError(path, f"line {i}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise SpecFileError(path, f"line {i}: each JSONL line must be an object")
            yield i, {str(k).lower(): v for k, v in obj.items()}
    else:
        reader = csv.DictReader(io.StringIO(text))
        for i, row in enumerate(reader, 2):
            yield i, {str(k).strip().lower(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()}


def read_trace(path: str, duration_s: float | None = None) -> Requests:
    """A trace file (CSV with a header, or JSONL): arrival time, prompt tokens, output tokens per row.
    Times are shifted to start at 0; rows past ``duration_s`` are dropped. Bounded: 256 MiB, 5 M rows."""
    text = read_text(path, MAX_TRACE_BYTES)
    t, p, g = [], [], []
    for line, row in _rows(path, text):
        if len(t) >= MAX_TRACE_ROWS:
            raise SpecFileError(path, f"more than {MAX_TRACE_ROWS:,} requests")
        t.append(_timestamp(_pick(row, _TIME_COLS, path, line), path, line))
        p.append(_tokens(_pick(row, _PROMPT_COLS, path, line), path, line, 0))
        g.append(_tokens(_pick(row, _GEN_COLS, path, line), path, line, 0))
    if not t:
        raise SpecFileError(path, "no requests in the trace")
    ts = np.asarray(t, dtype=float)
    order = np.argsort(ts, kind="stable")
    ts = ts[order] - ts[order][0]
    keep = ts < duration_s if duration_s else np.ones(len(ts), bool)
    gen = np.maximum(np.asarray(g, dtype=np.int64)[order], 1)  # a request always yields one token
    return Requests(ts[keep], np.asarray(p, dtype=np.int64)[order][keep], gen[keep])
