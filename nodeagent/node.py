"""The agent's Node object: registration (capacity from psutil, addresses,
nodeInfo with kernel and runc versions), the podCIDR wait, and heartbeats
(a Lease in kube-node-lease plus the Ready condition in the Node's status).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import platform
import subprocess
from typing import Any

import psutil

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError

log = logging.getLogger("coracle.agent.node")
NODES = kinds.lookup("", "v1", "nodes")
LEASES = kinds.lookup("coordination.k8s.io", "v1", "leases")
LEASE_NS = "kube-node-lease"
MAX_PODS = 110
VERSION = "v1.32.0-coracle"


def _micro_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def runc_version(binary: str = "runc") -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5).stdout
        return out.split()[2].split("+")[0] if out.startswith("runc version") else "unknown"
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def node_status(node_ip: str, hostname: str, port: int, runtime_version: str, ready: bool = True) -> dict[str, Any]:
    cpu = str(psutil.cpu_count() or 1)
    mem_ki = psutil.virtual_memory().total // 1024
    disk = psutil.disk_usage("/").total // 1024
    capacity = {"cpu": cpu, "memory": f"{mem_ki}Ki", "pods": str(MAX_PODS), "ephemeral-storage": f"{disk}Ki"}
    now = meta.now_rfc3339()
    conds = []
    for ctype, reason, msg in (("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                               ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                               ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available")):
        conds.append({"type": ctype, "status": "False", "reason": reason, "message": msg,
                      "lastHeartbeatTime": now, "lastTransitionTime": now})
    conds.append({"type": "Ready", "status": "True" if ready else "False",
                  "reason": "KubeletReady" if ready else "KubeletNotReady",
                  "message": "coracle agent is posting ready status" if ready else "agent is starting",
                  "lastHeartbeatTime": now, "lastTransitionTime": now})
    return {
        "capacity": capacity, "allocatable": dict(capacity), "conditions": conds,
        "addresses": [{"type": "InternalIP", "address": node_ip}, {"type": "Hostname", "address": hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {"machineID": _read("/etc/machine-id"), "systemUUID": _read("/sys/class/dmi/id/product_uuid"),
                     "bootID": _read("/proc/sys/kernel/random/boot_id"), "kernelVersion": platform.release(),
                     "osImage": os_image(), "containerRuntimeVersion": f"runc://{runtime_version}",
                     "kubeletVersion": VERSION, "kubeProxyVersion": VERSION, "operatingSystem": "linux",
                     "architecture": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())},
    }


class NodeRegistration:
    def __init__(self, client: Client, name: str, node_ip: str, port: int, runtime_version: str):
        self.client, self.name, self.node_ip, self.port = client, name, node_ip, port
        self.runtime_version = runtime_version
        self._transition: dict[str, str] = {}

    def _status(self, ready: bool) -> dict[str, Any]:
        st = node_status(self.node_ip, self.name, self.port, self.runtime_version, ready)
        for c in st["conditions"]:  # keep transition times across heartbeats
            key = f"{c['type']}={c['status']}"
            c["lastTransitionTime"] = self._transition.setdefault(key, c["lastTransitionTime"])
        return st

    async def register(self) -> dict[str, Any]:
        assert NODES is not None
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.name, "labels": {"kubernetes.io/hostname": self.name,
                                                           "kubernetes.io/os": "linux", "kubernetes.io/arch": arch,
                                                           "beta.kubernetes.io/os": "linux",
                                                           "beta.kubernetes.io/arch": arch}},
                "spec": {}}
        try:
            await self.client.create(NODES, None, body)
            log.info("registered node %s", self.name)
        except StatusError as e:
            if e.code != 409:
                raise
        await self.post_status(ready=False)
        return await self.client.get(NODES, None, self.name)

    async def post_status(self, ready: bool = True) -> None:
        assert NODES is not None
        await self.client.patch(NODES, None, self.name, {"status": self._status(ready)}, "merge", "status")

    async def wait_pod_cidr(self) -> str:
        assert NODES is not None
        while True:
            node = await self.client.get(NODES, None, self.name)
            cidr = node.get("spec", {}).get("podCIDR")
            if cidr:
                return cidr
            await asyncio.sleep(0.2)

    async def renew_lease(self, duration: int = 40) -> None:
        assert LEASES is not None
        now = _micro_now()
        try:
            lease = await self.client.get(LEASES, LEASE_NS, self.name)
            lease["spec"]["renewTime"] = now
            await self.client.update(LEASES, LEASE_NS, lease)
        except StatusError as e:
            if e.code != 404:
                raise
            await self.client.create(LEASES, LEASE_NS, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": LEASE_NS},
                "spec": {"holderIdentity": self.name, "leaseDurationSeconds": duration,
                         "acquireTime": now, "renewTime": now}})

    async def heartbeat(self, every: float = 10.0) -> None:
        while True:
            try:
                await self.renew_lease()
                await self.post_status(ready=True)
            except (StatusError, OSError, Exception) as e:  # noqa: BLE001 - keep beating
                log.warning("heartbeat failed: %s", e)
            await asyncio.sleep(every)


def hostname() -> str:
    return os.uname().nodename.lower()
