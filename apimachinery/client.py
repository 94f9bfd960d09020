"""Async REST client for the Coracle (and any Kubernetes) API server, on httpx.

Every call raises `StatusError` carrying the server's `Status` when the
answer is not 2xx, and `httpx.TransportError` when the server cannot be
reached; callers (informers, controllers, the agent) retry with back-off.
A read-modify-write that may lose a race retries with `retry_on_conflict`
(or `retry_on_conflict_async`): the one helper for it, the API server's too.
"""
from __future__ import annotations

import json
import platform
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import httpx

from apimachinery.kinds import ResourceInfo

Obj = dict[str, Any]
T = TypeVar("T")

PATCH_CONTENT = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json",
                 "json": "application/json-patch+json"}


KUBE_VERSION = "v1.32.0"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def user_agent(component: str) -> str:
    """A component's User-Agent as upstream's clients build it: `kubelet/v1.32.0 (linux/amd64) coracle`.
    The API server names the field manager of a write by the part before '/' (so managedFields show
    `kubelet`, `kube-scheduler`, `kube-controller-manager`, as on a real cluster)."""
    machine = platform.machine().lower()
    return f"{component}/{KUBE_VERSION} ({platform.system().lower()}/{_ARCH.get(machine, machine)}) coracle"


class StatusError(Exception):
    def __init__(self, code: int, status: Obj):
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(f"{code} {self.reason}: {status.get('message', '')}")


def is_conflict(e: BaseException) -> bool:
    """A 409 Conflict: the write lost a race with another writer (not AlreadyExists)."""
    return isinstance(e, StatusError) and e.code == 409 and e.reason == "Conflict"


def retry_on_conflict(fn: Callable[[], T], attempts: int = 5,
                      retriable: Callable[[BaseException], bool] = is_conflict) -> T:
    """Call fn until it does not raise a retriable error, at most `attempts` times; the last error is
    raised.  fn re-reads what it writes each time (client-go's RetryOnConflict, without the back-off:
    a conflict means another write has just landed, so the next read sees it).  The API server passes
    its own `retriable` (errors.is_stale_write)."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as e:
            if attempt == attempts - 1 or not retriable(e):
                raise
    raise AssertionError("unreachable")


async def retry_on_conflict_async(fn: Callable[[], Awaitable[T]], attempts: int = 5,
                                  retriable: Callable[[BaseException], bool] = is_conflict) -> T:
    """retry_on_conflict for a coroutine function: `await retry_on_conflict_async(lambda: bump(client))`."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return await fn()
        except Exception as e:
            if attempt == attempts - 1 or not retriable(e):
                raise
    raise AssertionError("unreachable")


class Client:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0,
                 user_agent: str = "coracle"):
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers,
                                       timeout=httpx.Timeout(timeout, read=None),
                                       limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @staticmethod
    def _check(resp: httpx.Response) -> Obj:
        if resp.status_code >= 300:
            try:
                status = resp.json()
            except ValueError:
                status = {"message": resp.text, "reason": "Unknown"}
            raise StatusError(resp.status_code, status if isinstance(status, dict) else {"message": str(status)})
        return resp.json() if resp.content else {}

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: Any = None, content_type: str = "application/json") -> Obj:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else None
        resp = await self._http.request(method, path, params=params, content=data, headers=headers)
        return self._check(resp)

    # -- verbs -------------------------------------------------------------
    async def get(self, res: ResourceInfo, namespace: str | None, name: str, subresource: str = "") -> Obj:
        return await self.request("GET", res.path(namespace, name) + (f"/{subresource}" if subresource else ""))

    async def list(self, res: ResourceInfo, namespace: str | None = None, *, label_selector: str = "",
                   field_selector: str = "", limit: int = 0, continue_token: str = "") -> Obj:
        params = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector),
                                    ("limit", limit), ("continue", continue_token)) if v}
        return await self.request("GET", res.path(namespace), params=params)

    async def create(self, res: ResourceInfo, namespace: str | None, obj: Obj) -> Obj:
        return await self.request("POST", res.path(namespace), body=obj)

    async def update(self, res: ResourceInfo, namespace: str | None, obj: Obj, subresource: str = "") -> Obj:
        path = res.path(namespace, obj["metadata"]["name"]) + (f"/{subresource}" if subresource else "")
        return await self.request("PUT", path, body=obj)

    async def patch(self, res: ResourceInfo, namespace: str | None, name: str, patch: Any,
                    patch_type: str = "merge", subresource: str = "") -> Obj:
        path = res.path(namespace, name) + (f"/{subresource}" if subresource else "")
        return await self.request("PATCH", path, body=patch, content_type=PATCH_CONTENT[patch_type])

    async def delete(self, res: ResourceInfo, namespace: str | None, name: str, *,
                     grace_period: int | None = None, uid: str | None = None) -> Obj:
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        if uid:
            options["preconditions"] = {"uid": uid}
        return await self.request("DELETE", res.path(namespace, name), body=options)

    async def post_subresource(self, res: ResourceInfo, namespace: str | None, name: str, subresource: str,
                               body: Obj) -> Obj:
        return await self.request("POST", f"{res.path(namespace, name)}/{subresource}", body=body)

    async def watch(self, res: ResourceInfo, namespace: str | None = None, *, resource_version: str = "",
                    label_selector: str = "", field_selector: str = "",
                    timeout_seconds: int = 300) -> AsyncIterator[tuple[str, Obj]]:
        """Yield (type, object) until the server ends the stream.  An ERROR event is raised as StatusError."""
        params = {k: v for k, v in (("watch", "true"), ("resourceVersion", resource_version),
                                    ("labelSelector", label_selector), ("fieldSelector", field_selector),
                                    ("timeoutSeconds", timeout_seconds), ("allowWatchBookmarks", "true")) if v}
        async with self._http.stream("GET", res.path(namespace), params=params) as resp:
            if resp.status_code >= 300:
                await resp.aread()
                self._check(resp)
            async for line in resp.aiter_lines():
                if not line:
                    continue
                ev = json.loads(line)
                if ev.get("type") == "ERROR":
                    obj = ev.get("object") or {}
                    raise StatusError(int(obj.get("code", 500)), obj)
                yield ev["type"], ev["object"]
