"""`coracle agent`: wires the node agent together.

Register the Node and wait for its podCIDR; set up the drivers (sandbox,
bridge network, cgroups, runc, images); watch the pods bound to this node and
hand each UID to the pod workers; serve logs; heartbeat; notice container
exits (a cheap scan of the shims' exit files); and at start, once the
informer has synced, remove whatever of ours no pod owns.

Stopping the agent (SIGTERM, or SIGKILL) leaves pods running: the next agent
re-adopts them from their records.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
from dataclasses import dataclass

from aiohttp import web

import cgroups
from apimachinery import kinds, meta, netplan
from apimachinery.client import Client, user_agent
from apimachinery.events import EventRecorder
from apimachinery.informer import Informer
from nodeagent.runtime import oci
from nodeagent.pod import spec as podspec
from nodeagent.runtime.images import ImageStore
from nodeagent.pod.network import BridgeNetwork
from nodeagent.node import NodeRegistration, runc_version
from nodeagent.pod.host import QOS_PARENTS, PodHost
from nodeagent.pod.record import ContainerState, RecordStore
from nodeagent.pod.worker import PodWorkers
from nodeagent.runtime.runc import Runc
from nodeagent.pod.sandbox import Sandbox
from nodeagent.server.app import AgentServer

log = logging.getLogger("coracle.agent")
PODS = kinds.lookup("", "v1", "pods")
# served only once apimachinery.kinds lists them; without them configMapKeyRef/secretKeyRef/envFrom
# see nothing (CreateContainerConfigError unless optional)
CONFIG_KINDS = {p: r for p in ("configmaps", "secrets") if (r := kinds.lookup("", "v1", p)) is not None}
_UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class AgentConfig:
    node_name: str
    api_url: str = "http://127.0.0.1:6443"
    node_ip: str = "127.0.0.1"
    run_dir: str = netplan.RUN_DIR
    state_dir: str = netplan.STATE_DIR
    cgroup_root: str = "coracle"
    port: int = 10250
    cluster_cidr: str = netplan.CLUSTER_CIDR
    service_cidr: str = netplan.SERVICE_CIDR
    bridge: str = netplan.BRIDGE
    backoff_base: float = 10.0


def make_host(cfg: AgentConfig, pod_cidr: str) -> PodHost:
    """The real drivers.  Blocking (pyroute2): call from a thread."""
    network = BridgeNetwork(pod_cidr, cfg.cluster_cidr, cfg.bridge, os.path.join(cfg.state_dir, "cni"),
                            keep_local=(cfg.service_cidr,))
    network.ensure_node()
    images = ImageStore(os.path.join(cfg.state_dir, "images"))
    images.import_busybox()
    import psutil
    capacity = podspec.NodeCapacity(cpu_millicores=(os.cpu_count() or 1) * 1000,
                                    memory_bytes=psutil.virtual_memory().total)
    return PodHost(records=RecordStore(cfg.state_dir), sandbox=Sandbox(cfg.run_dir), network=network,
                   cgroups=cgroups.detect(), runtime=Runc(root=os.path.join(cfg.run_dir, "runc")), images=images,
                   cgroup_root=cfg.cgroup_root, node_name=cfg.node_name, host_ip=cfg.node_ip,
                   backoff_base=cfg.backoff_base, limits=oci.AgentLimits.current(), node_capacity=capacity,
                   cluster_dns=podspec.cluster_dns(cfg.service_cidr))


def known_uids(host: PodHost) -> set[str]:
    """Every pod UID that has something of ours on this node."""
    uids = set(host.records.uids()) | set(host.sandbox.list()) | set(host.network.allocated())
    for c in host.runtime.list():
        m = _UID.match(c.get("id", ""))
        if m:
            uids.add(m.group(0))
    for parent in QOS_PARENTS:
        path = f"{host.cgroup_root}/{parent}".rstrip("/")
        if host.cgroups.exists(path):
            uids |= {c[3:] for c in host.cgroups.children(path) if c.startswith("pod")}
    return {u for u in uids if _UID.fullmatch(u)}


class Agent:
    def __init__(self, cfg: AgentConfig):
        assert PODS is not None
        self.cfg = cfg
        self.client = Client(cfg.api_url, user_agent=user_agent("kubelet"))
        self.node = NodeRegistration(self.client, cfg.node_name, cfg.node_ip, cfg.port, runc_version())
        self.pods = Informer(self.client, PODS, field_selector=f"spec.nodeName={cfg.node_name}")
        self.config = {p: Informer(self.client, r) for p, r in CONFIG_KINDS.items()}
        self._by_uid: dict[str, str] = {}
        self.host: PodHost | None = None
        self.workers: PodWorkers | None = None

    def desired(self, uid: str) -> dict | None:
        key = self._by_uid.get(uid)
        pod = self.pods.get(key) if key else None
        return pod if pod is not None and meta.uid(pod) == uid else None

    def lookup(self, kind: str, namespace: str, name: str) -> dict | None:
        inf = self.config.get(kind)
        return inf.get(f"{namespace}/{name}") if inf is not None else None

    def _on_config(self, obj: dict) -> None:
        """A configMap or secret changed: re-sync the pods of its namespace still waiting on it."""
        if self.workers is None:
            return
        ns = meta.namespace(obj)
        for pod in self.pods.list():
            if meta.namespace(pod) == ns:
                self.workers.update(meta.uid(pod))

    def _on_pod(self, pod: dict) -> None:
        uid = meta.uid(pod)
        self._by_uid[uid] = meta.key(pod)
        if self.workers:
            self.workers.update(uid)

    def _on_delete(self, pod: dict) -> None:
        uid = meta.uid(pod)
        self._by_uid.pop(uid, None)
        if self.workers:
            self.workers.update(uid)

    async def run(self, stop: asyncio.Event) -> None:
        await self.node.register()
        pod_cidr = await self.node.wait_pod_cidr()
        log.info("node %s: pod subnet %s", self.cfg.node_name, pod_cidr)
        save_node_file(self.cfg, pod_cidr)
        self.host = host = await asyncio.to_thread(make_host, self.cfg, pod_cidr)
        host.lookup = self.lookup
        self.recorder = EventRecorder(self.client, "kubelet", self.cfg.node_name)
        self.workers = PodWorkers(host, self.client, self.desired, self.recorder)
        self.pods.add_handlers(on_add=self._on_pod, on_update=lambda _o, n: self._on_pod(n), on_delete=self._on_delete)
        runner = web.AppRunner(AgentServer(host.records, host.runtime).app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, self.cfg.node_ip, self.cfg.port, reuse_address=True).start()
        for inf in self.config.values():
            inf.add_handlers(on_add=self._on_config, on_update=lambda _o, n: self._on_config(n))
        tasks = [asyncio.create_task(self.pods.run()), asyncio.create_task(self.node.heartbeat()),
                 asyncio.create_task(self._exits())] + [asyncio.create_task(i.run()) for i in self.config.values()]
        try:
            await self.pods.synced.wait()
            for inf in self.config.values():
                await inf.synced.wait()
            for uid in await asyncio.to_thread(known_uids, host):
                self.workers.update(uid)   # adopts what is desired, tears down the rest
            await self.node.post_status(ready=True)
            log.info("node %s ready", self.cfg.node_name)
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.workers.stop()
            await self.recorder.close()
            await runner.cleanup()
            await self.client.close()

    async def _exits(self, every: float = 0.25) -> None:
        """PLEG, reduced to its core: a running container whose shim wrote an exit file wakes its pod."""
        assert self.host is not None and self.workers is not None
        host, workers = self.host, self.workers
        while True:
            await asyncio.sleep(every)
            for uid in list(self._by_uid):
                rec = host.records.load(uid)
                if rec is None:
                    continue
                for name, c in rec.containers.items():
                    if c.state is ContainerState.RUNNING and \
                            os.path.exists(os.path.join(host.records.container_dir(uid, name), "exit")):
                        workers.update(uid)
                        break


async def run_agent(cfg: AgentConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await Agent(cfg).run(stop)


def _node_file(cfg: AgentConfig) -> str:
    return os.path.join(cfg.state_dir, "node.json")


def save_node_file(cfg: AgentConfig, pod_cidr: str) -> None:
    """What `node-reset` needs to find the node's bridge and routes with the master down."""
    os.makedirs(cfg.state_dir, exist_ok=True)
    with open(_node_file(cfg), "w") as f:
        json.dump({"node_name": cfg.node_name, "pod_cidr": pod_cidr, "bridge": cfg.bridge}, f)


def reset_node(cfg: AgentConfig, pod_cidr: str | None = None) -> list[str]:
    """Remove every pod and node-level object the agent made (for `coracle down` and tests)."""
    errs: list[str] = []
    if not pod_cidr:
        try:
            with open(_node_file(cfg)) as f:
                pod_cidr = json.load(f).get("pod_cidr")
        except (OSError, ValueError):
            pod_cidr = None
    records = RecordStore(cfg.state_dir)
    sandbox = Sandbox(cfg.run_dir)
    runtime = Runc(root=os.path.join(cfg.run_dir, "runc"))
    cg = cgroups.detect()
    network = BridgeNetwork(pod_cidr or netplan.first_node_subnet(cfg.cluster_cidr), cfg.cluster_cidr, cfg.bridge,
                            os.path.join(cfg.state_dir, "cni"), keep_local=(cfg.service_cidr,))
    host = PodHost(records=records, sandbox=sandbox, network=network, cgroups=cg, runtime=runtime,
                   images=ImageStore(os.path.join(cfg.state_dir, "images")), cgroup_root=cfg.cgroup_root,
                   node_name=cfg.node_name, host_ip=cfg.node_ip)
    for uid in known_uids(host):
        errs += host.teardown(uid, records.load(uid), keep_record=False)
    if pod_cidr:
        errs += network.remove_node()
    network.close()
    for parent in ("burstable", "besteffort", ""):
        path = f"{cfg.cgroup_root}/{parent}".rstrip("/")
        try:
            if cg.exists(path):
                cg.remove(path)
        except Exception as e:  # noqa: BLE001 - report and go on
            errs.append(f"cgroup {path}: {e}")
    try:
        sandbox.close(force=True)
    except Exception as e:  # noqa: BLE001
        errs.append(f"sandbox mount: {e}")
    if not errs and os.path.exists(_node_file(cfg)):
        os.remove(_node_file(cfg))
    return errs
