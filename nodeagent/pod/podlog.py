"""Structured log lines for the pod code: every line about a pod carries
`pod`, `namespace`, `uid` and `node` as record attributes (logging's `extra`),
so a formatter can print them as key=value and a user can grep one pod's
story across the master's and the agents' logs.  The messages stay plain
sentences that grep finds on their own, too.
"""
from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from nodeagent.pod.record import PodRecord

Obj = dict[str, Any]
FIELDS = ("pod", "namespace", "uid", "node")


def fields(node: str, uid: str, pod: Obj | None = None, rec: PodRecord | None = None) -> dict[str, str]:
    """The pod's fields from the API object, else from the local record, else just the uid."""
    md = (pod or {}).get("metadata") or {}
    name = md.get("name") or (rec.name if rec else "")
    ns = md.get("namespace") or (rec.namespace if rec else "")
    return {"pod": name, "namespace": ns, "uid": uid or md.get("uid", ""), "node": node}


class PodLogger(logging.LoggerAdapter):
    """A logger whose lines carry one pod's fields (merged with any `extra` of the call)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **(kwargs.get("extra") or {})}
        return msg, kwargs


def for_pod(logger: logging.Logger, node: str, uid: str, pod: Obj | None = None,
            rec: PodRecord | None = None) -> PodLogger:
    return PodLogger(logger, fields(node, uid, pod, rec))
