"""Structured log lines: the object's identity as fields, text or JSON."""
from __future__ import annotations

import json
import logging

import pytest

from apimachinery import logs


def _record(msg: str, **extra: str) -> logging.LogRecord:
    r = logging.LogRecord("coracle.agent.pod", logging.INFO, __file__, 1, msg, (), None)
    r.__dict__.update(extra)
    return r


def test_text_line_carries_the_fields_in_a_fixed_order() -> None:
    f = logs.FieldsFormatter("text", {"node": "n1"})
    line = f.format(_record("started container main", **logs.pod_fields("default", "web", "u-1", container="main")))
    assert line.endswith(" INFO coracle.agent.pod started container main node=n1 namespace=default pod=web uid=u-1 "
                         "container=main")
    assert line[:4].isdigit() and "T" in line.split()[0] and line.split()[0].endswith("Z")


def test_values_with_spaces_or_equals_are_quoted_so_a_line_splits_on_spaces() -> None:
    line = logs.FieldsFormatter().format(_record("x", object="a b=c"))
    assert line.endswith(' object="a b=c"')


def test_json_lines_parse_and_keep_the_fields() -> None:
    f = logs.FieldsFormatter("json", {"node": "n1"})
    doc = json.loads(f.format(_record("bound %s", **logs.obj_fields(
        {"kind": "Pod", "metadata": {"namespace": "ns", "name": "p", "uid": "u"}}))))
    assert doc["msg"] == "bound %s" and doc["level"] == "INFO"
    assert (doc["node"], doc["namespace"], doc["pod"], doc["uid"]) == ("n1", "ns", "p", "u")


def test_obj_fields_names_the_kind_of_other_objects() -> None:
    assert logs.obj_fields({"kind": "ReplicaSet", "metadata": {"namespace": "a", "name": "rs", "uid": "1"}}) == \
        {"kind": "ReplicaSet", "namespace": "a", "object": "rs", "uid": "1"}


def test_lines_without_fields_stay_plain_and_exceptions_follow() -> None:
    f = logs.FieldsFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        r = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = f.format(r)
    assert text.splitlines()[0].endswith(" ERROR x failed") and "ValueError: boom" in text


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        logs.FieldsFormatter("xml")


def test_configure_replaces_its_own_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        logs.configure("warning", "text")
        logs.configure("info", "json")
        ours = [h for h in root.handlers if getattr(h, "_coracle", False)]
        assert len(ours) == 1 and isinstance(ours[0].formatter, logs.FieldsFormatter) and ours[0].formatter.json
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
