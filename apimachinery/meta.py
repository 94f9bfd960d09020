"""Small pure readers and writers of object metadata and conditions.

Objects are JSON dicts exactly as on the wire; these helpers never copy more
than they must and never do I/O.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any

Obj = dict[str, Any]

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def now_rfc3339() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> _dt.datetime | None:
    if not value:
        return None
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def meta(obj: Obj) -> Obj:
    return obj.setdefault("metadata", {})


def name(obj: Obj) -> str:
    return obj.get("metadata", {}).get("name", "")


def namespace(obj: Obj) -> str:
    return obj.get("metadata", {}).get("namespace", "")


def uid(obj: Obj) -> str:
    return obj.get("metadata", {}).get("uid", "")


def labels(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def resource_version(obj: Obj) -> str:
    return obj.get("metadata", {}).get("resourceVersion", "")


def key(obj: Obj) -> str:
    """`namespace/name` (or `name` for cluster objects): the work-queue key."""
    ns = namespace(obj)
    return f"{ns}/{name(obj)}" if ns else name(obj)


def validate_dns1123_label(value: str) -> str | None:
    if not value:
        return "a lowercase RFC 1123 label must not be empty"
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not DNS1123_LABEL.match(value):
        return ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc')")
    return None


def validate_dns1123_subdomain(value: str) -> str | None:
    if not value:
        return "a lowercase RFC 1123 subdomain must not be empty"
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not DNS1123_SUBDOMAIN.match(value):
        return ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character (e.g. 'example.com')")
    return None


def get_condition(obj: Obj, ctype: str) -> Obj | None:
    for c in obj.get("status", {}).get("conditions") or []:
        if c.get("type") == ctype:
            return c
    return None


def set_condition(conditions: list[Obj], ctype: str, status: str, reason: str = "",
                  message: str = "", now: str | None = None) -> list[Obj]:
    """Return conditions with ctype set; lastTransitionTime moves only when status changes."""
    now = now or now_rfc3339()
    out = []
    found = False
    for c in conditions:
        if c.get("type") == ctype:
            found = True
            new: Obj = {"type": ctype, "status": status}
            if reason:
                new["reason"] = reason
            if message:
                new["message"] = message
            new["lastProbeTime"] = c.get("lastProbeTime")
            new["lastTransitionTime"] = c.get("lastTransitionTime") if c.get("status") == status else now
            out.append(new)
        else:
            out.append(c)
    if not found:
        new = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        out.append(new)
    return out
