"""The served custom APIs: the custom resources the stored
CustomResourceDefinitions define, kept current from the store's events.

The API server builds one before its watch cache: it lists the CRDs once,
then follows every committed CRD write (by any master, on etcd too), and
after each change calls its listeners (the API server swaps in a new
`APIGroups`, so routing, discovery and OpenAPI see the CRD at once).  It
also names the resource a custom resource's store key belongs to, for the
watch cache; that mapping outlives the CRD so the deletions of its objects
(resources.apiextensions) still reach watchers.  Entries are built by
`customresource.resources_for`.
"""
from __future__ import annotations

from typing import Callable

from apimachinery.kinds import ResourceInfo
from master.apiserver import storage
from master.apiserver.customresources.customresource import resources_for
from master.store import Event, Store

CRD_PREFIX = "/registry/apiextensions.k8s.io/customresourcedefinitions/"


class CustomAPIs:
    """Called on the thread the store delivers events on; readers take `served` (a tuple swapped whole)."""

    def __init__(self, store: Store):
        self._by_crd: dict[str, list[ResourceInfo]] = {}
        self._by_keypart: dict[tuple[str, str], ResourceInfo] = {}
        self.served: tuple[ResourceInfo, ...] = ()
        self._listeners: list[Callable[[tuple[ResourceInfo, ...]], None]] = []
        self._unsubscribe = store.subscribe(self._on_event)
        kvs, _rev, _more = store.list(CRD_PREFIX)
        for kv in kvs:
            self._set(kv.key, storage.decode(kv.value, kv.mod_revision))
        self._publish()

    def close(self) -> None:
        self._unsubscribe()

    def listen(self, callback: Callable[[tuple[ResourceInfo, ...]], None]) -> None:
        """Call `callback(served)` now and after every change of the served set."""
        self._listeners.append(callback)
        callback(self.served)

    def resource_of_key(self, key: str) -> ResourceInfo | None:
        """The custom resource a store key holds an object of (a version of it), or None."""
        parts = key.split("/", 4)
        return self._by_keypart.get((parts[2], parts[3])) if len(parts) == 5 else None

    def _set(self, key: str, crd: dict) -> None:
        resources = resources_for(crd)
        if resources:
            self._by_crd[key] = resources
            self._by_keypart[(resources[0].group, resources[0].plural)] = resources[0]
        else:
            self._by_crd.pop(key, None)

    def _publish(self) -> None:
        self.served = tuple(r for key in sorted(self._by_crd) for r in self._by_crd[key])
        for callback in self._listeners:
            callback(self.served)

    def _on_event(self, ev: Event) -> None:
        if not ev.key.startswith(CRD_PREFIX):
            return
        if ev.type == "DELETED" or ev.value is None:
            self._by_crd.pop(ev.key, None)
        else:
            self._set(ev.key, storage.decode(ev.value, ev.revision))
        self._publish()
