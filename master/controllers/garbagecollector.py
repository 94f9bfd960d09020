"""Garbage collector: ownerReferences and the three deletion propagation
policies, as kube-controller-manager's garbage collector.

- Background: the owner goes at once; a dependent whose owners are all gone
  (not in the cache and confirmed by a live GET: 404 or another uid) is
  deleted.
- Foreground: the API server marks the owner with the `foregroundDeletion`
  finalizer; its dependents are deleted, and once none with
  `blockOwnerDeletion: true` is left the finalizer is removed (the owner
  then vanishes).
- Orphan: the `orphan` finalizer; the owner's reference is removed from every
  dependent, then the finalizer.

Informers on every stored resource feed a uid graph (owner uid -> dependents)
and a keyed work queue; each sync looks at one object and acts through the
API with resourceVersion preconditions, so running it twice changes nothing.
Decisions are the pure functions at the top.  Only resources the API server
serves (`--runtime-config`) are watched, through a served version of their
storage (autoscaling/v1 when v2 is off); a dependent whose owner's kind is not
served is left alone, as upstream does with an owner it cannot map.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from apimachinery.informer import Informer
from apimachinery.workqueue import WorkQueue
from apimachinery.apigroups import ALL, APIGroups

log = logging.getLogger("coracle.gc")
FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"
Obj = dict[str, Any]


# -- decisions (pure) ---------------------------------------------------------
def owner_uids(obj: Obj) -> list[str]:
    return [r.get("uid", "") for r in obj.get("metadata", {}).get("ownerReferences") or []]


def finalizers(obj: Obj) -> list[str]:
    return list(obj.get("metadata", {}).get("finalizers") or [])


def being_deleted_with(obj: Obj, finalizer: str) -> bool:
    return bool(obj.get("metadata", {}).get("deletionTimestamp")) and finalizer in finalizers(obj)


def refs_without(obj: Obj, uid: str) -> list[Obj]:
    return [r for r in obj.get("metadata", {}).get("ownerReferences") or [] if r.get("uid") != uid]


def blocking(dependents: list[Obj], owner_uid: str) -> list[Obj]:
    """Dependents that still hold a foreground-deleting owner back."""
    return [d for d in dependents for r in d.get("metadata", {}).get("ownerReferences") or []
            if r.get("uid") == owner_uid and r.get("blockOwnerDeletion")]


def owner_gone(ref: Obj, live: Obj | None) -> bool:
    """An owner reference is dangling when its object is absent or is a new object of the same name."""
    return live is None or meta.uid(live) != ref.get("uid")


# -- the controller ------------------------------------------------------------
def _key(res: kinds.ResourceInfo, obj: Obj) -> str:
    return f"{res.group}|{res.plural}|{meta.namespace(obj)}|{meta.name(obj)}"


class GarbageCollector:
    def __init__(self, client: Client, apis: APIGroups = ALL):
        self.client, self.apis = client, apis
        self.queue = WorkQueue()
        self.informers: list[Informer] = []
        self.objects: dict[str, tuple[kinds.ResourceInfo, Obj]] = {}  # key -> latest
        self.by_uid: dict[str, str] = {}
        self.dependents: dict[str, set[str]] = {}  # owner uid -> dependent keys
        for stored in kinds.stored_resources():
            res = apis.serving(stored)
            if res is None or "watch" not in res.verbs:
                if res is None:
                    log.info("garbage collector: %s is not served; not watching it", stored.qualified)
                continue
            inf = Informer(client, res)
            inf.add_handlers(on_add=functools.partial(self._seen, res),
                             on_update=functools.partial(self._updated, res),
                             on_delete=functools.partial(self._gone, res))
            self.informers.append(inf)

    def _updated(self, res: kinds.ResourceInfo, _old: Obj, obj: Obj) -> None:
        self._seen(res, obj)

    def _seen(self, res: kinds.ResourceInfo, obj: Obj) -> None:
        key = _key(res, obj)
        old = self.objects.get(key)
        if old is not None:
            for uid in owner_uids(old[1]):
                self.dependents.get(uid, set()).discard(key)
        self.objects[key] = (res, obj)
        self.by_uid[meta.uid(obj)] = key
        for uid in owner_uids(obj):
            self.dependents.setdefault(uid, set()).add(key)
            if uid in self.by_uid:
                self.queue.add(self.by_uid[uid])  # the owner may be waiting for this one
        if owner_uids(obj) or being_deleted_with(obj, FOREGROUND) or being_deleted_with(obj, ORPHAN):
            self.queue.add(key)

    def _gone(self, res: kinds.ResourceInfo, obj: Obj) -> None:
        key = _key(res, obj)
        self.objects.pop(key, None)
        uid = meta.uid(obj)
        if self.by_uid.get(uid) == key:
            del self.by_uid[uid]
        for o in owner_uids(obj):
            self.dependents.get(o, set()).discard(key)
            if o in self.by_uid:
                self.queue.add(self.by_uid[o])
        for dep in self.dependents.get(uid, set()):
            self.queue.add(dep)

    async def run(self) -> None:
        tasks = [asyncio.create_task(i.run()) for i in self.informers]
        try:
            while True:
                key = await self.queue.get()
                try:
                    await self.sync(key)
                    self.queue.forget(key)
                except (StatusError, OSError) as e:
                    log.warning("garbage collector: %s: %s; will retry", key, e)
                    self.queue.add_rate_limited(key)
                finally:
                    self.queue.done(key)
        finally:
            for t in tasks:
                t.cancel()
            self.queue.shutdown()

    async def _live(self, res: kinds.ResourceInfo, ns: str | None, name: str) -> Obj | None:
        try:
            return await self.client.get(res, ns if res.namespaced else None, name)
        except StatusError as e:
            if e.code == 404:
                return None
            raise

    async def _patch_meta(self, res: kinds.ResourceInfo, obj: Obj, changes: Obj) -> None:
        """A merge patch of metadata with the object's resourceVersion as precondition; gone is fine."""
        body = {"metadata": {**changes, "resourceVersion": meta.resource_version(obj)}}
        try:
            await self.client.patch(res, meta.namespace(obj) or None, meta.name(obj), body)
        except StatusError as e:
            if e.code != 404:
                raise

    async def _delete(self, res: kinds.ResourceInfo, obj: Obj, policy: str) -> None:
        try:
            await self.client.request("DELETE", res.path(meta.namespace(obj) or None, meta.name(obj)),
                                      body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy,
                                            "preconditions": {"uid": meta.uid(obj)}})
        except StatusError as e:
            if e.code not in (404, 409):
                raise

    async def sync(self, key: str) -> None:
        """Look at one object: finish its orphan/foreground deletion, or collect it if its owners are gone."""
        entry = self.objects.get(key)
        if entry is None:
            return
        res, cached = entry
        obj = await self._live(res, meta.namespace(cached), meta.name(cached))
        if obj is None:
            return
        uid = meta.uid(obj)
        deps = [self.objects[k] for k in list(self.dependents.get(uid, ())) if k in self.objects]
        if being_deleted_with(obj, ORPHAN):
            for dres, dep in deps:
                await self._patch_meta(dres, dep, {"ownerReferences": refs_without(dep, uid) or None})
            await self._patch_meta(res, obj, {"finalizers": [f for f in finalizers(obj) if f != ORPHAN] or None})
            return
        if being_deleted_with(obj, FOREGROUND):
            for dres, dep in deps:
                if not dep.get("metadata", {}).get("deletionTimestamp"):
                    has_own = bool(self.dependents.get(meta.uid(dep)))
                    await self._delete(dres, dep, "Foreground" if has_own else "Background")
            if not blocking([d for _r, d in deps], uid):
                await self._patch_meta(res, obj, {"finalizers": [f for f in finalizers(obj) if f != FOREGROUND] or None})
            return
        refs = obj.get("metadata", {}).get("ownerReferences") or []
        if not refs:
            return
        for ref in refs:
            ores = kinds.for_object(ref.get("apiVersion", ""), ref.get("kind", ""))
            ores = self.apis.serving(ores) if ores is not None else None
            if ores is None:
                return  # an owner of a kind we do not serve: leave the dependent alone
            owner_key = self.by_uid.get(ref.get("uid", ""))
            if owner_key is not None and not being_deleted_with(self.objects[owner_key][1], FOREGROUND):
                return
            live = await self._live(ores, meta.namespace(obj), ref.get("name", ""))
            if live is not None and not owner_gone(ref, live):
                if being_deleted_with(live, FOREGROUND):
                    continue  # the owner is going in the foreground: this dependent goes too
                return
        log.info("garbage collector: deleting %s: its owners are gone", key)
        await self._delete(res, obj, "Background")
