"""CNI errors with the spec's well-known codes; the only exception type cni/ raises.

`plugin` and `__main__` turn a CNIError into the spec's error JSON.
"""
from __future__ import annotations

from typing import Any

# Codes from the CNI spec (SPEC.md, "Error"); 100+ are plugin specific.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
RANGE_EXHAUSTED = 100
INTERNAL = 999


class CNIError(Exception):
    """A failed CNI verb: `code`, a human `msg` and optional `details`."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str = "1.0.0") -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out
