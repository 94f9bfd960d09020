"""List-watch informer: list, then watch from the list's resourceVersion,
keep a local cache, and call handlers on every change.  On 410 Gone, an
ERROR event, a closed stream or a lost connection it re-watches or relists
with back-off; after a relist it emits the difference, so handlers see every
add, update and delete exactly as a level-triggered consumer needs.

Handlers are plain callables that should only enqueue keys.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import httpx

from apimachinery import meta
from apimachinery.client import Client, StatusError
from apimachinery.kinds import ResourceInfo

log = logging.getLogger("coracle.informer")
Obj = dict[str, Any]


class Informer:
    def __init__(self, client: Client, res: ResourceInfo, namespace: str | None = None, *,
                 label_selector: str = "", field_selector: str = "", watch_timeout: int = 300):
        self.client, self.res, self.namespace = client, res, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.watch_timeout = watch_timeout
        self.cache: dict[str, Obj] = {}
        self.synced = asyncio.Event()
        self._on_add: list[Callable[[Obj], None]] = []
        self._on_update: list[Callable[[Obj, Obj], None]] = []
        self._on_delete: list[Callable[[Obj], None]] = []
        self._rv = ""

    def add_handlers(self, on_add: Callable[[Obj], None] | None = None,
                     on_update: Callable[[Obj, Obj], None] | None = None,
                     on_delete: Callable[[Obj], None] | None = None) -> None:
        if on_add:
            self._on_add.append(on_add)
        if on_update:
            self._on_update.append(on_update)
        if on_delete:
            self._on_delete.append(on_delete)

    def get(self, key: str) -> Obj | None:
        return self.cache.get(key)

    def list(self) -> list[Obj]:
        return list(self.cache.values())

    def _emit_add(self, obj: Obj) -> None:
        for h in self._on_add:
            h(obj)

    def _emit_update(self, old: Obj, new: Obj) -> None:
        for h in self._on_update:
            h(old, new)

    def _emit_delete(self, obj: Obj) -> None:
        for h in self._on_delete:
            h(obj)

    async def _relist(self) -> None:
        items: list[Obj] = []
        token = ""
        while True:
            page = await self.client.list(self.res, self.namespace, label_selector=self.label_selector,
                                          field_selector=self.field_selector, limit=500, continue_token=token)
            items += page.get("items") or []
            token = page.get("metadata", {}).get("continue", "")
            if not token:
                break
        self._rv = page.get("metadata", {}).get("resourceVersion", "")
        fresh = {}
        for obj in items:
            obj.setdefault("kind", self.res.kind)
            obj.setdefault("apiVersion", self.res.group_version)
            fresh[meta.key(obj)] = obj
        old = self.cache
        self.cache = fresh
        for k, obj in fresh.items():
            if k not in old:
                self._emit_add(obj)
            elif meta.resource_version(old[k]) != meta.resource_version(obj):
                self._emit_update(old[k], obj)
        for k, obj in old.items():
            if k not in fresh:
                self._emit_delete(obj)
        self.synced.set()

    def _apply(self, kind: str, obj: Obj) -> None:
        if kind == "BOOKMARK":
            self._rv = meta.resource_version(obj) or self._rv
            return
        k = meta.key(obj)
        self._rv = meta.resource_version(obj) or self._rv
        if kind == "DELETED":
            self.cache.pop(k, None)
            self._emit_delete(obj)
            return
        old = self.cache.get(k)
        self.cache[k] = obj
        if old is None:
            self._emit_add(obj)
        else:
            self._emit_update(old, obj)

    async def run(self) -> None:
        """Run until cancelled."""
        delay = 0.1
        need_list = True
        while True:
            try:
                if need_list:
                    await self._relist()
                    need_list = False
                async for kind, obj in self.client.watch(self.res, self.namespace, resource_version=self._rv,
                                                         label_selector=self.label_selector,
                                                         field_selector=self.field_selector,
                                                         timeout_seconds=self.watch_timeout):
                    self._apply(kind, obj)
                    delay = 0.1
            except asyncio.CancelledError:
                raise
            except StatusError as e:
                need_list = True
                if e.code != 410:
                    log.warning("watch %s failed: %s", self.res.plural, e)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
            except (httpx.HTTPError, OSError, ValueError) as e:
                log.debug("watch %s interrupted: %s", self.res.plural, e)
                need_list = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
