"""Structured logs: one event a line, with the object it is about as fields.

Every component logs through the standard `logging` module and passes the
object's identity with `extra=obj_fields(pod)` (or `pod_fields(...)`); the
formatter set up by `configure` prints those fields after the message, as
`key=value` pairs (`--log-format text`, the default) or as one JSON object a
line (`--log-format json`), so that

    grep 'uid=0f3c...' /var/log/coracle/*.log

tells one pod's whole story across master and agent.  Fields every line of a
process carries (the node's name in the agent) are given once to `configure`.
Values with spaces, quotes or `=` are quoted, so a line splits on spaces.
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

# the fields a record may carry, in the order they are printed
FIELDS = ("node", "component", "kind", "namespace", "pod", "object", "uid", "container")
# ("object", not "name": a LogRecord has a `name`, the logger's)
FORMATS = ("text", "json")


def pod_fields(namespace: str, name: str, uid: str = "", **more: str) -> dict[str, str]:
    """The `extra=` of a log line about one pod."""
    out = {"namespace": namespace, "pod": name}
    if uid:
        out["uid"] = uid
    out.update({k: v for k, v in more.items() if v})
    return out


def obj_fields(obj: Mapping[str, Any]) -> dict[str, str]:
    """The `extra=` of a log line about one API object (a JSON dict as on the wire)."""
    md = obj.get("metadata") or {}
    kind = obj.get("kind") or ""
    out = {"kind": kind} if kind and kind != "Pod" else {}
    if md.get("namespace"):
        out["namespace"] = md["namespace"]
    out["pod" if kind == "Pod" else "object"] = md.get("name") or ""
    if md.get("uid"):
        out["uid"] = md["uid"]
    return out


def _quote(v: object) -> str:
    s = str(v)
    if s == "" or any(c in s for c in ' "=\n\t'):
        return json.dumps(s, ensure_ascii=False)
    return s


class FieldsFormatter(logging.Formatter):
    """`2026-12-08T01:02:03.456Z INFO coracle.agent.pod started container pod=web uid=...`, or JSON."""

    def __init__(self, fmt: str = "text", static: Mapping[str, str] | None = None):
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"log format {fmt!r}: choose one of {', '.join(FORMATS)}")
        self.json = fmt == "json"
        self.static = {k: v for k, v in (static or {}).items() if v}

    def _fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.static)
        for k in FIELDS:
            v = record.__dict__.get(k)
            if v not in (None, ""):
                out[k] = v
        return out

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        msg = record.getMessage()
        if record.exc_info:
            msg += "\n" + self.formatException(record.exc_info)
        fields = self._fields(record)
        if self.json:
            doc = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name, "msg": msg}
            doc.update(fields)
            return json.dumps(doc, ensure_ascii=False, default=str)
        tail = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        return f"{self.formatTime(record)} {record.levelname} {record.name} {msg}" + (f" {tail}" if tail else "")


def configure(level: str = "info", fmt: str = "text", static: Mapping[str, str] | None = None) -> None:
    """Set the root logger's level and one handler on stderr with the fields formatter (idempotent:
    a second call replaces the handler)."""
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper()))
    for h in list(root.handlers):
        if getattr(h, "_coracle", False):
            root.removeHandler(h)
    handler = logging.StreamHandler()
    handler.setFormatter(FieldsFormatter(fmt, static))
    handler._coracle = True  # type: ignore[attr-defined]
    root.addHandler(handler)
