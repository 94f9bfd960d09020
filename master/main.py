"""`coracle master`: the API server with the scheduler and controllers in one
process (each may also run alone with --components).  The scheduler and
controllers reach state only through the API server, over loopback HTTP.
"""
from __future__ import annotations

import asyncio
import json
import logging
import signal

from aiohttp import web

from apimachinery import kinds
from apimachinery.client import Client
from master.apiserver import storage
from master.apiserver.apigroups import ALL, APIGroups
from master.apiserver.app import APIServer
from master.controllers.garbagecollector import GarbageCollector
from master.controllers.namespace import NamespaceController
from master.controllers.nodeipam import NodeIPAM
from master.scheduler.scheduler import Scheduler
from master.store import KeyExists, open_store

log = logging.getLogger("coracle.master")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
COMPONENTS = ("apiserver", "scheduler", "controllers")


def ensure_system_namespaces(server: APIServer) -> None:
    ns_res = kinds.lookup("", "v1", "namespaces")
    assert ns_res is not None
    for name in SYSTEM_NAMESPACES:
        if server.store.get(storage.object_key(ns_res, None, name)) is None:
            try:
                server.registry.create(ns_res, None, {"metadata": {"name": name}})
            except Exception as e:  # a race with another master is fine
                if not isinstance(e.__cause__, KeyExists):
                    log.debug("namespace %s: %s", name, e)
    from master.apiserver.resources import services
    try:
        freed = services.repair_allocations(server.store)
        if freed:
            log.info("freed service IPs/ports no Service holds: %s", ",".join(freed))
        services.ensure_default_service(server.registry, server.advertise)
    except Exception as e:  # never keep the API server from starting
        log.warning("default service: %s", e)


async def run(store_url: str, bind: str, port: int, components: list[str], api_url: str,
              cluster_cidr: str, compact_every: float = 60.0, watch_window: float = 300.0, apis: APIGroups = ALL) -> None:
    """`apis`: the served set from --runtime-config; the scheduler and controllers skip what it leaves out."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = None
    store = None
    tasks: list[asyncio.Task] = []
    try:
        if "apiserver" in components:
            store = open_store(store_url)
            server = APIServer(store, advertise=f"{bind}:{port}", watch_window=watch_window, apis=apis)
            ensure_system_namespaces(server)
            runner = web.AppRunner(server.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await runner.setup()
            await web.TCPSite(runner, bind, port, backlog=1024, reuse_address=True).start()
            log.info("API server listening on http://%s:%d (store %s)", bind, port, store_url)
            tasks.append(asyncio.create_task(_compactor(store, server, compact_every)))
        client = Client(api_url, user_agent="coracle-master")
        core = {p for p in ("pods", "nodes", "namespaces") if apis.lookup("", "v1", p) is not None}
        if "scheduler" in components and {"pods", "nodes"} <= core:
            tasks.append(asyncio.create_task(Scheduler(client).run()))
        if "controllers" in components:
            if "nodes" in core:
                tasks.append(asyncio.create_task(NodeIPAM(client, cluster_cidr).run()))
            if "namespaces" in core:
                tasks.append(asyncio.create_task(NamespaceController(client, apis=apis).run()))
            tasks.append(asyncio.create_task(GarbageCollector(client, apis).run()))
        if core != {"pods", "nodes", "namespaces"}:
            log.warning("core/v1 pods, nodes or namespaces switched off: scheduler/controllers needing them not started")
        await stop.wait()
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        if store is not None:
            store.close()


async def _compactor(store, server: APIServer, every: float) -> None:
    """Keep the store's history as long as the watch cache's window, no longer."""
    while True:
        await asyncio.sleep(every)
        rev = server.cache.oldest_resumable()
        if rev > store.compact_revision():
            try:
                store.compact(rev)
            except Exception as e:
                log.warning("compaction failed: %s", e)


def write_kubeconfig(path: str, server_url: str) -> None:
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "coracle",
           "clusters": [{"name": "coracle", "cluster": {"server": server_url}}],
           "users": [{"name": "admin", "user": {}}],
           "contexts": [{"name": "coracle", "context": {"cluster": "coracle", "user": "admin", "namespace": "default"}}]}
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)

