"""`coracle master`: the API server with the scheduler and controllers in one
process (each may also run alone with --components).  The scheduler and
controllers reach state only through the API server, over loopback HTTP.
"""
from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal

from aiohttp import web

from apimachinery import kinds, netplan
from apimachinery.client import Client, user_agent
from master.apiserver import storage
from apimachinery.apigroups import ALL, APIGroups
from master.apiserver.app import APIServer
from master.apiserver.eventttl import DEFAULT_TTL, EventTTL
from master.apiserver.tokens import DEFAULT_ISSUER, TokenIssuer, key_id, public_key_path
from master.controllers.deployment.controller import DeploymentController
from master.controllers.endpoints.slices import endpoint_controller_tasks
from master.controllers.garbagecollector import GarbageCollector
from master.controllers.namespace import NamespaceController
from master.controllers.nodeipam import NodeIPAM
from master.controllers.replication.controller import ReplicationEngine, served_kinds
from master.scheduler.scheduler import Scheduler
from master.store import KeyExists, open_store

log = logging.getLogger("coracle.master")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
COMPONENTS = ("apiserver", "scheduler", "controllers")
DATA_DIR = netplan.MASTER_DIR  # the master's files when its store is not a SQLite file


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
              cluster_cidr: str, compact_every: float = 60.0, watch_window: float = 300.0, apis: APIGroups = ALL,
              sa_key_file: str = "", sa_issuer: str = DEFAULT_ISSUER, event_ttl: float = DEFAULT_TTL) -> None:
    """`apis`: the served set from --runtime-config; the scheduler and controllers skip what it leaves out.
    `sa_key_file`: the service-account signing key (default: `sa.key` in the master's data dir).
    `event_ttl`: seconds an Event lives after its last write (--event-ttl)."""
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
            server.tokens = token_issuer(sa_key_file or default_key_file(store_url), sa_issuer)
            ensure_system_namespaces(server)
            tune_gc()
            runner = web.AppRunner(server.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            await runner.setup()
            await web.TCPSite(runner, bind, port, backlog=1024, reuse_address=True).start()
            log.info("API server listening on http://%s:%d (store %s)", bind, port, store_url)
            tasks.append(asyncio.create_task(_compactor(store, server, compact_every)))
            tasks.append(asyncio.create_task(EventTTL(server, event_ttl).run()))
        # one client per component: its User-Agent names the field manager of its writes, as upstream's
        client = Client(api_url, user_agent=user_agent("kube-controller-manager"))
        sched_client = Client(api_url, user_agent=user_agent("kube-scheduler"))
        core = {p for p in ("pods", "nodes", "namespaces") if apis.lookup("", "v1", p) is not None}
        if "scheduler" in components and {"pods", "nodes"} <= core:
            tasks.append(asyncio.create_task(Scheduler(sched_client).run()))
        if "controllers" in components:
            if "nodes" in core:
                tasks.append(asyncio.create_task(NodeIPAM(client, cluster_cidr).run()))
            if "namespaces" in core:
                tasks.append(asyncio.create_task(NamespaceController(client, apis=apis).run()))
            tasks.append(asyncio.create_task(GarbageCollector(client, apis).run()))
            tasks += endpoint_controller_tasks(client, apis)  # Endpoints and EndpointSlices, where served
            if "pods" in core and served_kinds(apis):  # RCs and RSs, whichever are served
                tasks.append(asyncio.create_task(ReplicationEngine(client, apis).run()))
            if apis.lookup("apps", "v1", "deployments") and apis.lookup("apps", "v1", "replicasets"):
                tasks.append(asyncio.create_task(DeploymentController(client).run()))
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


def tune_gc() -> None:
    """Collect garbage less often: the watch cache keeps every object alive (millions of dicts with
    10,000 pods), and each collection of the old generation walks all of them. With CPython's
    default thresholds a third of a paged LIST of 10,000 pods went to the collector (0.70-0.83 s,
    0.49 s with these). What is alive after start-up is frozen out of the collector's walks."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _compactor(store, server: APIServer, every: float) -> None:
    """Keep the store's history as long as the watch cache's window, no longer."""
    while True:
        await asyncio.sleep(every)
        rev = server.cache.oldest_resumable()
        if rev > store.compact_revision():
            try:
                await asyncio.to_thread(store.compact, rev)  # on etcd it reads the window's history
            except Exception as e:
                log.warning("compaction failed: %s", e)


def default_key_file(store_url: str) -> str | None:
    """Where the signing key lives unless --service-account-key-file says: beside a SQLite store's file,
    else the default data dir; None (a key in memory) for an in-memory store."""
    if store_url.startswith("sqlite://"):
        path = store_url[len("sqlite://"):]
        if path in ("", ":memory:") or path.startswith(":memory:"):
            return None
        return os.path.join(os.path.dirname(path) or ".", "sa.key")
    return os.path.join(DATA_DIR, "sa.key")


def token_issuer(key_file: str | None, issuer: str = DEFAULT_ISSUER) -> TokenIssuer:
    """The issuer with its key read, or created (0600) at first start, and the public key beside it."""
    tokens = TokenIssuer(key_file, issuer)
    tokens.load()
    if key_file:
        log.info("service-account tokens signed with %s (kid %s), public key in %s", key_file,
                 key_id(tokens.public_key()), public_key_path(key_file))
    return tokens


def write_kubeconfig(path: str, server_url: str) -> None:
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "coracle",
           "clusters": [{"name": "coracle", "cluster": {"server": server_url}}],
           "users": [{"name": "admin", "user": {}}],
           "contexts": [{"name": "coracle", "context": {"cluster": "coracle", "user": "admin", "namespace": "default"}}]}
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)

