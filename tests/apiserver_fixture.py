"""Test helper: a real Coracle API server on 127.0.0.1, served from its own
event loop in a background thread, so sync tests can talk HTTP (httpx) and
async tests can use `apimachinery.client.Client` against a real TCP port.

Neighbours: the unit tests of the API server, registry, watch cache,
scheduler, node IPAM and informer import it; nothing in the product does.

    with ServerThread() as srv:          # in-memory SQLite store
        httpx.get(srv.url + "/version")

Everything the server holds lives in its store, which `stop()` closes; an
in-memory store leaves nothing behind.
"""
from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from typing import Any

from aiohttp import web

from master.apiserver.app import APIServer
from master.main import ensure_system_namespaces
from master.store import Store, open_store

POD_ACCEPT_TABLE = ("application/json;as=Table;v=v1;g=meta.k8s.io,"
                    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")
ACCEPT_DISCOVERY = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
                    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


class ServerThread:
    """An APIServer on a free loopback port; start() blocks until it serves."""

    def __init__(self, store: Store | None = None, watch_window: float = 300.0):
        self.store = store if store is not None else open_store("sqlite://:memory:")
        self.watch_window = watch_window
        self.loop = asyncio.new_event_loop()
        self.server: APIServer | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="crt-apiserver", daemon=True)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        self.server = APIServer(self.store, advertise=f"127.0.0.1:{self.port}", watch_window=self.watch_window)
        ensure_system_namespaces(self.server)
        self._runner = web.AppRunner(self.server.app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.server is not None:
            self.server.cache.close()
        # watch handlers still parked on their queues: cancel them so the loop closes clean
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        """Run a coroutine on the server's loop (e.g. to touch the registry) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> "ServerThread":
        self._thread.start()
        self.call(self._start())
        return self

    def stop(self) -> None:
        try:
            if self._thread.is_alive():
                self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.loop.close()
            self._sock.close()
            self.store.close()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unique(prefix: str = "crt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pod(name: str, *, image: str = "busybox:1.36", labels: dict[str, str] | None = None,
        cpu: str | None = None, memory: str | None = None, node: str | None = None,
        command: list[str] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "main", "image": image, "command": command or ["sleep", "3600"]}
    req = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    if req:
        c["resources"] = {"requests": req}
    spec: dict[str, Any] = {"containers": [c]}
    if node:
        spec["nodeName"] = node
    md: dict[str, Any] = {"name": name}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": spec}


def node(name: str, *, cpu: str = "2", memory: str = "4Gi", pods: str = "110", ready: bool = True,
         labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None,
         unschedulable: bool = False) -> dict[str, Any]:
    alloc = {"cpu": cpu, "memory": memory, "pods": pods}
    spec: dict[str, Any] = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels or {}},
            "spec": spec,
            "status": {"capacity": alloc, "allocatable": alloc,
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "reason": "KubeletReady" if ready else "KubeletNotReady"}]}}
