"""Field selectors (`?fieldSelector=spec.nodeName=n1`) and selectable fields, pure.

`parse_field_selector` reads the string form; `object_fields` gives the
fields of an object that upstream lets a client select on, per kind, which
the API server matches and the watch cache indexes (`value_for`).
Label selectors live beside this in `labels.py`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class FieldSelectorError(ValueError):
    """A field selector that cannot be parsed."""


_OPS = ("==", "!=", "=")


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[tuple[str, str, str], ...] = ()  # (field, "=" | "!=", value)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        for field, op, value in self.requirements:
            if (fields.get(field, "") == value) != (op == "="):
                return False
        return True

    def value_for(self, field: str) -> str | None:
        """The value an `=` term requires of `field` (for index look-ups), else None."""
        for f, op, value in self.requirements:
            if f == field and op == "=":
                return value
        return None

    def __str__(self) -> str:
        return ",".join(f"{f}{op}{_escape(v)}" for f, op, v in self.requirements)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace("!", "\\!")


def _split_terms(text: str) -> list[str]:
    """Split on unescaped commas, keeping escapes for the term parser."""
    terms, cur, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if c == ",":
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    terms.append("".join(cur))
    return terms


def _unescape(raw: str, text: str) -> str:
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\":
            if i + 1 >= len(raw) or raw[i + 1] not in "\\,=!":
                raise FieldSelectorError(f"invalid escape sequence in field selector {text!r}")
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse `a=b,c==d,e!=f` (backslash escapes `\\,`, `\\=`, `\\!`, `\\\\` in values)."""
    text = (text or "").strip()
    if not text:
        return FieldSelector()
    reqs = []
    for term in _split_terms(text):
        for op in _OPS:
            idx = _find_unescaped(term, op)
            if idx >= 0:
                field, value = term[:idx].strip(), term[idx + len(op):]
                if not field:
                    raise FieldSelectorError(f"field selector term {term!r} has no field name")
                reqs.append((field, "!=" if op == "!=" else "=", _unescape(value.strip(), text)))
                break
        else:
            raise FieldSelectorError(f"invalid field selector term {term!r} in {text!r}: expected field=value, "
                                     "field==value or field!=value")
    return FieldSelector(tuple(reqs))


def _find_unescaped(term: str, op: str) -> int:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith(op, i):
            # '!=' must win over '=' for 'a!=b': skip the '=' of a '!='
            if op == "=" and i > 0 and term[i - 1] == "!":
                i += 1
                continue
            return i
        i += 1
    return -1


# ---- selectable fields per kind ------------------------------------------

def _get(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(part)
    return cur


def _s(path: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda o: "" if _get(o, path) is None else str(_get(o, path))


def _bool(path: str) -> Callable[[Mapping[str, Any]], str]:
    # upstream formats Go bools: zero value "false"
    return lambda o: "true" if _get(o, path) is True else "false"


def _int(path: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda o: str(int(_get(o, path) or 0))


def _pod_ip(o: Mapping[str, Any]) -> str:
    ips = _get(o, "status.podIPs") or []
    if ips and isinstance(ips[0], Mapping) and ips[0].get("ip"):
        return str(ips[0]["ip"])
    return _s("status.podIP")(o)


_Getter = Callable[[Mapping[str, Any]], str]

_KIND_FIELDS: dict[str, dict[str, _Getter]] = {
    "Pod": {
        "spec.nodeName": _s("spec.nodeName"),
        "spec.restartPolicy": _s("spec.restartPolicy"),
        "spec.schedulerName": _s("spec.schedulerName"),
        "spec.serviceAccountName": _s("spec.serviceAccountName"),
        "spec.hostNetwork": _bool("spec.hostNetwork"),
        "status.phase": _s("status.phase"),
        "status.podIP": _pod_ip,
        "status.nominatedNodeName": _s("status.nominatedNodeName"),
    },
    "Event": {
        **{f"involvedObject.{f}": _s(f"involvedObject.{f}")
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": _s("reason"),
        "reportingComponent": _s("reportingComponent"),
        "source": _s("source.component"),
        "type": _s("type"),
    },
    "Node": {"spec.unschedulable": _bool("spec.unschedulable")},
    "Namespace": {"status.phase": _s("status.phase")},
    "Secret": {"type": _s("type")},
    "ReplicaSet": {"status.replicas": _int("status.replicas")},
    "ReplicationController": {"status.replicas": _int("status.replicas")},
}

_ALIASES = {"pods": "Pod", "events": "Event", "nodes": "Node", "namespaces": "Namespace", "secrets": "Secret",
            "replicasets": "ReplicaSet", "replicationcontrollers": "ReplicationController"}


def _kind(kind: str) -> str:
    return _ALIASES.get(kind, kind)


def supported_fields(kind: str) -> list[str]:
    return ["metadata.name", "metadata.namespace", *_KIND_FIELDS.get(_kind(kind), {})]


def object_fields(kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of `obj` (a Kind like "Pod", or its plural); missing strings are ""."""
    meta = obj.get("metadata") or {}
    out = {"metadata.name": str(meta.get("name") or ""), "metadata.namespace": str(meta.get("namespace") or "")}
    for field, get in _KIND_FIELDS.get(_kind(kind), {}).items():
        out[field] = get(obj)
    return out


def unsupported_fields(kind: str, selector: FieldSelector) -> list[str]:
    """Fields the selector names that `kind` cannot be selected on (the API server answers 400)."""
    known = set(supported_fields(kind))
    seen: list[str] = []
    for field, _, _ in selector.requirements:
        if field not in known and field not in seen:
            seen.append(field)
    return seen
