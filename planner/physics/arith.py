"""Elementwise helpers that serve scalar and vectorised callers with one formula.

`plan` evaluates one scenario with plain Python numbers and must not pay for importing numpy; the
search grid evaluates millions of candidates with numpy arrays. The physics functions are written once,
with these helpers where a builtin (``min``, ``max``, ``if``, indexing) would only accept scalars.
numpy is touched only when an argument already is an array, so scalar callers never import it.
"""

from __future__ import annotations

from collections.abc import Sequence


def _is_array(*values) -> bool:
    return any(hasattr(v, "__array_ufunc__") and not isinstance(v, (int, float)) for v in values)


def minimum(a, b):
    """min(a, b) elementwise."""
    if _is_array(a, b):
        import numpy as np

        return np.minimum(a, b)
    return min(a, b)


def maximum(a, b):
    """max(a, b) elementwise."""
    if _is_array(a, b):
        import numpy as np

        return np.maximum(a, b)
    return max(a, b)


def where(condition, if_true, if_false):
    """``if_true if condition else if_false`` elementwise."""
    if _is_array(condition, if_true, if_false):
        import numpy as np

        return np.where(condition, if_true, if_false)
    return if_true if condition else if_false


def divide_or_zero(numerator, denominator):
    """numerator / denominator, and 0 where the numerator is 0 (0/0 and 0/inf count as no time)."""
    if _is_array(numerator, denominator):
        import numpy as np

        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(numerator != 0, numerator / denominator, 0.0)
    return numerator / denominator if numerator else 0.0


def take(values: Sequence, index):
    """values[index] for an int index or an array of indices."""
    if _is_array(index):
        import numpy as np

        return np.asarray(values)[index]
    return values[index]


def prefix_sums(values: Sequence) -> tuple:
    """(0, v0, v0+v1, …): Σ values[lo:hi] = prefix[hi] − prefix[lo] for any span, scalar or array."""
    out, total = [0], 0
    for v in values:
        total += v
        out.append(total)
    return tuple(out)


def span_sum(prefix: Sequence, lo, hi):
    """Σ of the values in layers [lo, hi) from their prefix sums (lo and hi scalars or arrays)."""
    return take(prefix, hi) - take(prefix, lo)


def floor_int(value):
    """int(value) for a non-negative scalar, numpy.floor elementwise for an array."""
    if _is_array(value):
        import numpy as np

        return np.floor(value)
    return int(value)


def is_scalar(*values) -> bool:
    return not _is_array(*values)
