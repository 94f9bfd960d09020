"""Resource quantities: parsing, cgroup conversions, canonical printing."""
from __future__ import annotations

from fractions import Fraction

import pytest

from apimachinery.quantity import (
    QuantityError,
    cpu_millicores,
    format_quantity,
    parse_quantity,
    to_bytes,
)


@pytest.mark.parametrize("text,value", [
    ("1", 1), ("250m", Fraction(1, 4)), ("0.5", Fraction(1, 2)), (".5", Fraction(1, 2)), ("1.", 1),
    ("100n", Fraction(1, 10_000_000)), ("3u", Fraction(3, 1_000_000)), ("2k", 2000), ("1M", 10**6),
    ("1G", 10**9), ("1T", 10**12), ("1P", 10**15), ("1E", 10**18), ("1Ki", 1024), ("1Mi", 2**20),
    ("1.5Gi", 3 * 2**29), ("1Ti", 2**40), ("1Pi", 2**50), ("1Ei", 2**60), ("1e3", 1000), ("1E3", 1000),
    ("12e-3", Fraction(12, 1000)), ("+2", 2), ("-1Gi", -(2**30)), (" 64Mi ", 64 * 2**20),
    (2, 2), (0.1, Fraction(1, 10)), (Fraction(3, 2), Fraction(3, 2)),
])
def test_parse(text: object, value: object) -> None:
    assert parse_quantity(text) == value  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "abc", "1Kb", "1kk", "1 Gi", "Gi", "1e", "1.2.3", "--1", "1K", "0x10",
                                 True, None, float("inf"), [1]])
def test_invalid(bad: object) -> None:
    with pytest.raises(QuantityError):
        parse_quantity(bad)  # type: ignore[arg-type]


def test_cpu_millicores_round_up() -> None:
    assert cpu_millicores("250m") == 250
    assert cpu_millicores("1") == 1000
    assert cpu_millicores(0.1) == 100
    assert cpu_millicores("1n") == 1
    assert cpu_millicores("1.0001") == 1001
    assert cpu_millicores("2500u") == 3


def test_to_bytes() -> None:
    assert to_bytes("128Mi") == 134217728
    assert to_bytes("1G") == 10**9
    assert to_bytes("1.5Ki") == 1536
    assert to_bytes("0.5") == 1
    assert to_bytes(4096) == 4096


@pytest.mark.parametrize("value,binary,text", [
    ("1536Mi", True, "1536Mi"), ("1.5Gi", True, "1536Mi"), ("2Gi", True, "2Gi"), ("1024", True, "1Ki"),
    ("1000", True, "1k"), (512, True, "512"), ("0.5", True, "500m"), ("500m", False, "500m"),
    ("2", False, "2"), ("1500", False, "1500"), ("1e3", False, "1k"), ("0.1", False, "100m"),
    ("1n", False, "1n"), ("0", False, "0"), ("-250m", False, "-250m"), ("12e6", False, "12M"),
    (Fraction(1, 3 * 10**9), False, "1n"), ("1Gi", False, "1073741824"),
])
def test_format(value: object, binary: bool, text: str) -> None:
    assert format_quantity(value, binary) == text  # type: ignore[arg-type]


def test_format_round_trips() -> None:
    for text in ("100m", "64Mi", "3", "7k", "5Gi"):
        assert parse_quantity(format_quantity(text, text.endswith("i"))) == parse_quantity(text)
