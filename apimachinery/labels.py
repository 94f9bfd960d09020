"""Kubernetes label selectors and label validation, pure.

Parses the string form (`?labelSelector=` on list and watch, `kubectl -l`) and
the structured form (`spec.selector` of Deployments, ReplicaSets, Services
use plain maps via `Selector.from_map`). The API server, the informer cache,
the controllers and the scheduler all match objects with `Selector.matches`.
Field selectors live beside this in `fields.py`.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SelectorError(ValueError):
    """A label selector that cannot be parsed or is semantically invalid."""


class Op(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GT = "gt"
    LT = "lt"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op is Op.EQUALS:
            return has and value == self.values[0]
        if self.op is Op.IN:
            return has and value in self.values
        if self.op is Op.NOT_EQUALS:
            return not has or value != self.values[0]
        if self.op is Op.NOT_IN:
            return not has or value not in self.values
        if self.op is Op.EXISTS:
            return has
        if self.op is Op.DOES_NOT_EXIST:
            return not has
        if not has:
            return False
        try:
            left, right = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return left > right if self.op is Op.GT else left < right

    def __str__(self) -> str:
        if self.op is Op.EXISTS:
            return self.key
        if self.op is Op.DOES_NOT_EXIST:
            return "!" + self.key
        if self.op in (Op.IN, Op.NOT_IN):
            return f"{self.key} {self.op.value} ({','.join(self.values)})"
        sym = {Op.EQUALS: "=", Op.NOT_EQUALS: "!=", Op.GT: ">", Op.LT: "<"}[self.op]
        return f"{self.key}{sym}{self.values[0]}"


@dataclass(frozen=True, slots=True)
class Selector:
    """A conjunction of requirements; no requirements matches everything.

    `nothing` is the selector of a nil structured selector: it matches no
    object (as upstream's `labels.Nothing()`).
    """
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    @classmethod
    def from_map(cls, labels: Mapping[str, str] | None) -> Selector:
        """The selector `k1=v1,k2=v2` of a plain map (Service, RC selectors)."""
        return _make([Requirement(k, Op.EQUALS, (v,)) for k, v in (labels or {}).items()])


EVERYTHING = Selector()
NOTHING = Selector(nothing=True)


def _make(reqs: list[Requirement]) -> Selector:
    for r in reqs:
        errs = _key_errors(r.key) + [e for v in r.values for e in _value_errors(r.key, v)]
        if r.op in (Op.GT, Op.LT):
            errs = _key_errors(r.key)
            if not re.fullmatch(r"-?\d+", r.values[0]):
                errs.append(f"for 'gt', 'lt' operators, the value must be an integer, got {r.values[0]!r}")
        if errs:
            raise SelectorError("; ".join(errs))
    return Selector(tuple(sorted(reqs, key=lambda r: r.key)))


# ---- the string form ------------------------------------------------------

_SYMBOLS = frozenset({"!=", "==", "=", "!", ",", "(", ")", ">", "<"})
_TOKEN = re.compile(r"\s*(?:(!=|==|=|!|,|\(|\)|>|<)|([^\s!=,()<>]+))")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:  # pragma: no cover - the pattern accepts every character
            raise SelectorError(f"unexpected character at {pos} in {text!r}")
        out.append(m.group(1) or m.group(2))
        pos = m.end()
    return out


def parse_selector(text: str | None) -> Selector:
    """Parse `a=b,c!=d,e in (x,y),f notin (z),g,!h` into a Selector.

    The empty string selects everything. Raises SelectorError on bad syntax.
    """
    toks = _tokens(text or "")
    reqs: list[Requirement] = []
    i = 0

    def peek(k: int = 0) -> str | None:
        return toks[i + k] if i + k < len(toks) else None

    def word(what: str) -> str:
        nonlocal i
        t = peek()
        if t is None or t in _SYMBOLS:
            raise SelectorError(f"expected {what} but found {t or 'end of string'!r} in {text!r}")
        i += 1
        return t

    while i < len(toks):
        if peek() == "!":
            i += 1
            reqs.append(Requirement(word("a label key after '!'"), Op.DOES_NOT_EXIST))
        else:
            key = word("a label key")
            t = peek()
            if t is None or t == ",":
                reqs.append(Requirement(key, Op.EXISTS))
            elif t in ("=", "==", "!="):
                i += 1
                v = peek()
                value = "" if v is None or v == "," else word("a value")
                reqs.append(Requirement(key, Op.NOT_EQUALS if t == "!=" else Op.EQUALS, (value,)))
            elif t in (">", "<"):
                i += 1
                reqs.append(Requirement(key, Op.GT if t == ">" else Op.LT, (word("an integer"),)))
            elif t in ("in", "notin"):
                i += 1
                if peek() != "(":
                    raise SelectorError(f"expected '(' after {t!r} in {text!r}")
                i += 1
                values: list[str] = []
                while True:
                    v = peek()
                    if v in (",", ")"):
                        values.append("")
                    else:
                        values.append(word("a value or ')'"))
                    sep = peek()
                    i += 1
                    if sep == ")":
                        break
                    if sep != ",":
                        raise SelectorError(f"expected ',' or ')' in the value set of {key!r} in {text!r}")
                op = Op.IN if t == "in" else Op.NOT_IN
                reqs.append(Requirement(key, op, tuple(sorted(set(values)))))
            else:
                raise SelectorError(f"expected an operator (=, ==, !=, in, notin) after {key!r}, found {t!r} in {text!r}")
        if i < len(toks):
            if peek() != ",":
                raise SelectorError(f"expected ',' between requirements but found {peek()!r} in {text!r}")
            i += 1
            if i == len(toks):
                raise SelectorError(f"trailing ',' in {text!r}")
    return _make(reqs)


# ---- the structured form --------------------------------------------------

_STRUCT_OPS = {"In": Op.IN, "NotIn": Op.NOT_IN, "Exists": Op.EXISTS, "DoesNotExist": Op.DOES_NOT_EXIST}


def selector_from_label_selector(obj: Mapping[str, Any] | None) -> Selector:
    """A metav1.LabelSelector dict to a Selector; None matches nothing, {} everything."""
    if obj is None:
        return NOTHING
    if not isinstance(obj, Mapping):
        raise SelectorError(f"a label selector must be an object, got {type(obj).__name__}")
    reqs = [Requirement(k, Op.EQUALS, (str(v),)) for k, v in (obj.get("matchLabels") or {}).items()]
    for n, expr in enumerate(obj.get("matchExpressions") or []):
        where = f"matchExpressions[{n}]"
        if not isinstance(expr, Mapping):
            raise SelectorError(f"{where}: must be an object")
        key, opname, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if not key:
            raise SelectorError(f"{where}.key: Required value")
        if opname not in _STRUCT_OPS:
            raise SelectorError(f"{where}.operator: Unsupported value {opname!r}: supported values: In, NotIn, Exists, DoesNotExist")
        op = _STRUCT_OPS[opname]
        if op in (Op.IN, Op.NOT_IN) and not values:
            raise SelectorError(f"{where}.values: Required value: must be specified when `operator` is 'In' or 'NotIn'")
        if op in (Op.EXISTS, Op.DOES_NOT_EXIST) and values:
            raise SelectorError(f"{where}.values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        reqs.append(Requirement(key, op, tuple(sorted(set(map(str, values))))))
    return _make(reqs)


# ---- validation -----------------------------------------------------------

_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _key_errors(key: str) -> list[str]:
    prefix, sep, name = key.rpartition("/")
    errs = []
    if sep:
        if not prefix:
            errs.append(f"label key {key!r}: prefix part must be non-empty")
        elif len(prefix) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(prefix):
            errs.append(f"label key {key!r}: prefix part must be a lowercase DNS-1123 subdomain of at most 253 characters")
        if "/" in prefix:
            errs.append(f"label key {key!r}: a qualified name must have at most one '/'")
    if not name:
        errs.append(f"label key {key!r}: name part must be non-empty")
    elif len(name) > 63:
        errs.append(f"label key {key!r}: name part must be no more than 63 characters")
    elif not _NAME.fullmatch(name):
        errs.append(f"label key {key!r}: name part must consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")
    return errs


def _value_errors(key: str, value: str) -> list[str]:
    if value == "":
        return []
    if len(value) > 63:
        return [f"label value {value!r} of {key!r}: must be no more than 63 characters"]
    if not _NAME.fullmatch(value):
        return [(f"label value {value!r} of {key!r}: must be empty or consist of alphanumeric characters, '-', '_' "
                 "or '.', and must start and end with an alphanumeric character")]
    return []


def validate_labels(labels: Mapping[str, Any] | None) -> list[str]:
    """Error messages for invalid label keys and values; [] when all are valid."""
    errs: list[str] = []
    for k, v in (labels or {}).items():
        if not isinstance(k, str):
            errs.append(f"label key {k!r}: must be a string")
            continue
        errs += _key_errors(k)
        if not isinstance(v, str):
            errs.append(f"label value of {k!r}: must be a string, got {type(v).__name__}")
        else:
            errs += _value_errors(k, v)
    return errs
