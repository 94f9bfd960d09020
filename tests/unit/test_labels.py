"""Label selectors: string and structured forms, matching, canonical strings, validation."""
from __future__ import annotations

import pytest

from apimachinery.labels import (
    Selector,
    SelectorError,
    parse_selector,
    selector_from_label_selector,
    validate_labels,
)


@pytest.mark.parametrize("text,labels,expected", [
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a==b", {"a": "b"}, True),
    ("a!=b", {"a": "c"}, True),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {"a": "z"}, False),
    ("a in (x,y)", {}, False),
    ("a notin (x,y)", {"a": "z"}, True),
    ("a notin (x,y)", {}, True),
    ("a notin (x,y)", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("a", {"b": "1"}, False),
    ("!a", {"b": "1"}, True),
    ("!a", {"a": "1"}, False),
    ("a=b,c!=d,e", {"a": "b", "c": "x", "e": ""}, True),
    ("a=b,c!=d,e", {"a": "b", "c": "d", "e": ""}, False),
    ("  a = b ,  env  in  ( prod , dev ) ,! gone ", {"a": "b", "env": "dev"}, True),
    ("a=", {"a": ""}, True),
    ("a=", {"a": "x"}, False),
    ("example.com/tier=front", {"example.com/tier": "front"}, True),
    ("n>3", {"n": "4"}, True),
    ("n>3", {"n": "2"}, False),
    ("n<3", {"n": "x"}, False),
])
def test_string_selector_matching(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_empty_selector_matches_everything() -> None:
    sel = parse_selector("")
    assert sel.empty and sel.matches({}) and sel.matches({"a": "b"})
    assert parse_selector(None).empty
    assert not parse_selector("a").empty


def test_canonical_string_is_sorted_and_reparses() -> None:
    sel = parse_selector("z=1, a in (y, x), !m, k, b notin (q), c==d, e!=f")
    text = str(sel)
    assert text == "a in (x,y),b notin (q),c=d,e!=f,k,!m,z=1"
    assert parse_selector(text) == sel


@pytest.mark.parametrize("bad", [
    "a=b,", ",a", "a b", "a in x", "a in (x", "a in (x y)", "a=b=c", "=b", "!", "a!b",
    "a=b c", "-bad=1", "a=-bad", "k" * 64 + "=v", "a/b/c=1", "Upper.Case/x=1", "a (x)", "n>x",
])
def test_invalid_selectors_raise(bad: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(bad)


def test_selector_error_is_value_error_with_message() -> None:
    with pytest.raises(ValueError, match="operator"):
        parse_selector("a b")


def test_structured_selector() -> None:
    sel = selector_from_label_selector({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "track", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    })
    assert sel.matches({"app": "web", "tier": "edge", "track": "x"})
    assert not sel.matches({"app": "web", "tier": "edge", "track": "x", "env": "prod"})
    assert not sel.matches({"app": "web", "tier": "back", "track": "x"})
    assert not sel.matches({"app": "web", "tier": "edge"})
    assert not sel.matches({"app": "web", "tier": "edge", "track": "x", "legacy": "1"})
    assert not sel.matches({"app": "db", "tier": "edge", "track": "x"})
    assert str(sel) == "app=web,env notin (prod),!legacy,tier in (edge,front),track"


def test_structured_empty_and_nil() -> None:
    assert selector_from_label_selector({}).matches({"x": "y"})
    nothing = selector_from_label_selector(None)
    assert not nothing.matches({}) and not nothing.empty


@pytest.mark.parametrize("bad", [
    {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
    {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
    {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
    {"matchExpressions": [{"key": "a", "operator": "DoesNotExist", "values": ["x"]}]},
    {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
    {"matchExpressions": [{"operator": "Exists"}]},
    {"matchLabels": {"bad key": "v"}},
    {"matchLabels": {"k": "bad value"}},
])
def test_structured_invalid(bad: dict) -> None:
    with pytest.raises(SelectorError):
        selector_from_label_selector(bad)


def test_from_map() -> None:
    sel = Selector.from_map({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"}) and not sel.matches({"a": "1"})


def test_validate_labels() -> None:
    assert validate_labels({"app": "web", "example.com/tier": "", "a.b_c-d": "X.y_z-1"}) == []
    assert validate_labels(None) == []
    errs = validate_labels({
        "-a": "ok", "ok": "-bad", "x" * 64: "v", "v": "y" * 64, "Bad_Prefix/x": "v", "/x": "v", "p/": "v",
        "ok2": 5,
    })
    assert len(errs) == 8, errs
    assert any("63" in e for e in errs) and any("prefix" in e for e in errs)
    assert validate_labels({"a" * 254 + "/x": "v"})
    assert validate_labels({"a" * 253 + "/x": "v"}) == []
