"""The pod status manager: computes a pod's API status (nodeagent.pod.status,
pure) and writes it through the `status` subresource only when it changed,
never over a newer write with a stale one.  Called by the actor
(nodeagent.pod.actor) for the WriteStatus action.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from nodeagent.pod.probes import ProbeView
from nodeagent.pod.record import PodRecord
from nodeagent.pod.status import pod_status

PODS = kinds.lookup("", "v1", "pods")
Obj = dict[str, Any]


class StatusManager:
    """One per agent; write() of different pods may run concurrently, of one pod never (the worker serialises)."""

    def __init__(self, client: Client, host_ip: str, now: Callable[[], float]) -> None:
        self.client, self.host_ip, self.now = client, host_ip, now
        # uid -> (last status written, resourceVersion of the pod it was written over): while the
        # informer still shows that resourceVersion it has not seen the write yet
        self._posted: dict[str, tuple[Obj, str]] = {}

    def forget(self, uid: str) -> None:
        self._posted.pop(uid, None)

    async def write(self, pod: Obj, rec: PodRecord, views: Mapping[str, ProbeView]) -> bool:
        """Write the status if it changed; True when a write happened.  Retried on conflict (5 times)."""
        assert PODS is not None
        uid = meta.uid(pod)
        current = pod.get("status") or {}
        posted, base_rv = self._posted.get(uid, ({}, ""))
        # a stale cache (still the resourceVersion we wrote over): keep transition times from what
        # we wrote and do not write it again; a newer pod whose status someone else changed
        # gets ours written back
        stale = bool(posted) and base_rv == meta.resource_version(pod)
        status = pod_status(pod, rec, self.host_ip, self.now(), old=posted if stale else current, probes=views)
        if status == current or (stale and status == posted):
            return False
        body = dict(pod, status=status)
        for _ in range(5):
            try:
                await self.client.update(PODS, meta.namespace(pod), body, subresource="status")
                self._posted[uid] = (status, meta.resource_version(body))
                return True
            except StatusError as e:
                if e.code == 404:
                    return False
                if e.code != 409:
                    raise
                fresh = await self.client.get(PODS, meta.namespace(pod), meta.name(pod))
                if meta.uid(fresh) != uid:
                    return False
                status = pod_status(fresh, rec, self.host_ip, self.now(), old=fresh.get("status") or {},
                                    probes=views)
                body = dict(fresh, status=status)
        return False
