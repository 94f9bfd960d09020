"""Kubernetes resource quantities (`250m`, `1Gi`, `1e3`), exact and pure.

Values are `fractions.Fraction` so that `0.1` CPU stays exact. The scheduler
sums requests, admission checks LimitRange and ResourceQuota, the agent turns
limits into cgroup values (`cpu_millicores`, `to_bytes`), and the API server
prints canonical forms (`format_quantity`).
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

QuantityLike = str | int | float | Fraction


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


_BINARY = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50, "Ei": 1 << 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_RE = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")


def parse_quantity(s: QuantityLike) -> Fraction:
    """The exact value of a quantity; raises QuantityError on anything else."""
    if isinstance(s, bool):
        raise QuantityError(f"quantities must be numbers or strings, not {s!r}")
    if isinstance(s, Fraction):
        return s
    if isinstance(s, int):
        return Fraction(s)
    if isinstance(s, float):
        if not math.isfinite(s):
            raise QuantityError(f"quantities must be finite, got {s!r}")
        return Fraction(repr(s))
    if not isinstance(s, str):
        raise QuantityError(f"quantities must be numbers or strings, not {type(s).__name__}")
    m = _RE.fullmatch(s.strip())
    if not m or not s.strip():
        raise QuantityError(f"quantities must match the regular expression "
                            f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$', got {s!r}")
    sign, number, suffix = m.group(1), m.group(2), m.group(3) or ""
    value = Fraction(number)
    if suffix in _BINARY:
        value *= _BINARY[suffix]
    elif suffix in _DECIMAL:
        value *= Fraction(10) ** _DECIMAL[suffix]
    else:
        value *= Fraction(10) ** int(suffix[1:])
    return -value if sign == "-" else value


def cpu_millicores(q: QuantityLike) -> int:
    """CPU in millicores, rounded up (`0.1` -> 100, `1n` -> 1)."""
    return math.ceil(parse_quantity(q) * 1000)


def to_bytes(q: QuantityLike) -> int:
    """A memory or storage quantity in whole bytes, rounded up."""
    return math.ceil(parse_quantity(q))


def format_quantity(value: QuantityLike, binary: bool = False) -> str:
    """The canonical string of a value: binary suffixes when asked and exact
    (`1536Mi`), else the largest decimal suffix that keeps an integer (`500m`,
    `2`, `1500`, `1k`). Values finer than 1n are rounded up to it, as upstream.
    """
    v = parse_quantity(value)
    sign = "-" if v < 0 else ""
    v = abs(v)
    nanos = math.ceil(v * 10 ** 9)
    if v == 0:
        return "0"
    if binary and v.denominator == 1 and v >= 1024:
        n = int(v)
        for suffix, size in reversed(_BINARY.items()):
            if n % size == 0:
                return f"{sign}{n // size}{suffix}"
    # decimal: pick the largest exponent (multiple of 3) that keeps an integer mantissa
    best_exp, mantissa = -9, nanos
    for suffix_exp in (-6, -3, 0, 3, 6, 9, 12, 15, 18):
        shift = 10 ** (suffix_exp + 9)
        if nanos % shift == 0:
            best_exp, mantissa = suffix_exp, nanos // shift
        else:
            break
    suffix = {e: s for s, e in _DECIMAL.items()}[best_exp]
    return f"{sign}{mantissa}{suffix}"
