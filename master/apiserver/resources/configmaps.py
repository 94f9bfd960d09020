"""ConfigMap rules: valid, unique keys across data and binaryData, at most
1 MiB, base64 binaryData, and `immutable: true` freezing the data. No status."""
from __future__ import annotations

import base64
import binascii
import re

from master.apiserver.resources import Causes, Obj, Strategy, register

_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_SIZE = 1024 * 1024


def key_error(key: object) -> str | None:
    """upstream's IsConfigMapKey."""
    if not isinstance(key, str) or not key:
        return "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    if len(key) > 253:
        return "must be no more than 253 characters"
    if not _KEY.match(key):
        return ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")
    if key in (".", "..") or key.startswith(".."):
        return "must not be '.' or '..' or start with '..'"
    return None


def b64_error(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a base64-encoded string"
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "illegal base64 data"
    return None


def immutable_causes(new: Obj, old: Obj, fields: tuple[str, ...]) -> Causes:
    if not old.get("immutable"):
        return []
    causes: Causes = []
    if not new.get("immutable"):
        causes.append(("immutable", "Forbidden: field is immutable when `immutable` is set"))
    for f in fields:
        if (new.get(f) or {}) != (old.get(f) or {}):
            causes.append((f, "Forbidden: field is immutable when `immutable` is set"))
    return causes


@register("configmaps")
class ConfigMapStrategy(Strategy):
    has_status = False
    tracks_generation = False

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        size = 0
        seen: set[str] = set()
        for field in ("data", "binaryData"):
            section = obj.get(field) or {}
            if not isinstance(section, dict):
                causes.append((field, "Invalid value: must be a map of strings"))
                continue
            for k, v in section.items():
                err = key_error(k)
                if err:
                    causes.append((f"{field}[{k}]", f'Invalid value: "{k}": {err}'))
                if k in seen:
                    causes.append((f"{field}[{k}]", f'Invalid value: "{k}": duplicate of key present in '
                                                    f'{"data" if field == "binaryData" else "binaryData"}'))
                seen.add(k)
                if field == "data" and not isinstance(v, str):
                    causes.append((f"data[{k}]", "Invalid value: must be a string"))
                elif field == "binaryData" and (err := b64_error(v)):
                    causes.append((f"binaryData[{k}]", f"Invalid value: {err}"))
                size += len(k) + len(v) if isinstance(v, str) else 0
        if size > MAX_SIZE:
            causes.append(("", f"Too long: must have at most {MAX_SIZE} bytes"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return self.validate(new) + immutable_causes(new, old, ("data", "binaryData"))
