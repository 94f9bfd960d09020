"""Namespace deletion: a namespace marked for deletion (`Terminating`, with
the `kubernetes` finalizer in spec.finalizers) is emptied through the API
(deletecollection of every namespaced resource), and once nothing is left in
it the finalizer is removed with `namespaces/{name}/finalize`, so the API
server lets it vanish.  As kube-controller-manager's namespace controller.

Level-triggered: an informer on namespaces feeds a keyed work queue; a sync
that finds content still present (pods in their grace period) requeues.
Neighbours: the registry's finalize and deletecollection semantics.  Only
served resources (`--runtime-config`) are emptied, as upstream's controller
works from discovery; objects of a switched-off group stay in the store.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from apimachinery.informer import Informer
from apimachinery.workqueue import WorkQueue
from apimachinery.apigroups import ALL, APIGroups

log = logging.getLogger("coracle.namespace")
NAMESPACES = kinds.lookup("", "v1", "namespaces")
FINALIZER = "kubernetes"
Obj = dict[str, Any]


def needs_cleanup(ns: Obj) -> bool:
    """Marked for deletion and still carrying our finalizer."""
    return bool(ns.get("metadata", {}).get("deletionTimestamp")) and \
        FINALIZER in (ns.get("spec", {}).get("finalizers") or [])


def finalized(ns: Obj) -> Obj:
    """The body of the finalize call: the namespace without the `kubernetes` finalizer."""
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": meta.name(ns), "resourceVersion": meta.resource_version(ns)},
            "spec": {"finalizers": [f for f in ns.get("spec", {}).get("finalizers") or [] if f != FINALIZER]}}


def namespaced_resources(apis: APIGroups = ALL) -> list[kinds.ResourceInfo]:
    """One served resource per storage location that can be listed and deleted in a namespace."""
    out = []
    for stored in kinds.stored_resources():
        r = apis.serving(stored)
        if r is not None and r.namespaced and "deletecollection" in r.verbs and "list" in r.verbs:
            out.append(r)
    return out


class NamespaceController:
    def __init__(self, client: Client, retry_seconds: float = 1.0, apis: APIGroups = ALL):
        assert NAMESPACES is not None
        self.client, self.retry, self.apis = client, retry_seconds, apis
        self.namespaces = Informer(client, NAMESPACES)
        self.queue = WorkQueue()
        self.namespaces.add_handlers(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n))

    def _enqueue(self, ns: Obj) -> None:
        if needs_cleanup(ns):
            self.queue.add(meta.name(ns))

    async def run(self) -> None:
        informer = asyncio.create_task(self.namespaces.run())
        try:
            while True:
                name = await self.queue.get()
                try:
                    if not await self.sync(name):
                        self.queue.add_after(name, self.retry)
                    else:
                        self.queue.forget(name)
                except (StatusError, OSError) as e:
                    log.warning("namespace %s: cleanup failed, will retry: %s", name, e)
                    self.queue.add_rate_limited(name)
                finally:
                    self.queue.done(name)
        finally:
            informer.cancel()
            self.queue.shutdown()

    async def sync(self, name: str) -> bool:
        """One pass: delete what is left and finalize when nothing is. Returns True when finished.
        Idempotent; safe to run twice."""
        assert NAMESPACES is not None
        try:
            ns = await self.client.get(NAMESPACES, None, name)
        except StatusError as e:
            if e.code == 404:
                return True
            raise
        if not needs_cleanup(ns):
            return True
        left = 0
        for res in namespaced_resources(self.apis):
            items = (await self.client.list(res, name)).get("items") or []
            if not items:
                continue
            left += len(items)
            try:
                await self.client.request("DELETE", res.path(name), params={"propagationPolicy": "Background"})
            except StatusError as e:
                if e.code not in (404, 405):
                    raise
        if left:
            log.info("namespace %s: %d objects left; waiting for them to go", name, left)
            return False
        await self.client.request("PUT", f"{NAMESPACES.path(None, name)}/finalize", body=finalized(ns))
        log.info("namespace %s: emptied and finalized", name)
        return True
