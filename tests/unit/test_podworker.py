"""Unit tests for nodeagent.podworker over PodHost with every driver faked:
FakeSandbox, FakeNetwork, FakeCgroups, FakeRuntime, FakeRootfs, a real
ImageStore and RecordStore in tmp_path, and an in-memory API client."""
from __future__ import annotations

import asyncio
import copy
import ipaddress
import json
import os
import signal
import time
from typing import Any

import pytest

from apimachinery.client import StatusError
from cgroups.fake import FakeCgroups
from nodeagent import oci
from nodeagent.images import ImageStore
from nodeagent.network import FakeNetwork
from nodeagent.podhost import PodHost
from nodeagent.podrecord import ContainerState, RecordStore
from nodeagent.podworker import PodWorkers
from nodeagent.rootfs import FakeRootfs
from nodeagent.runc import FakeRuntime
from nodeagent.sandbox import FakeSandbox

UID = "crt-0000-1111"
SUBNET = "10.250.7.0/24"
Obj = dict[str, Any]


class FakeClient:
    """The API server as far as the pod worker sees it: pods by uid, events, recorded calls."""

    def __init__(self) -> None:
        self.pods: dict[str, Obj] = {}
        self.events: list[Obj] = []
        self.calls: list[tuple] = []
        self.rv = 100

    def put(self, pod: Obj) -> Obj:
        self.rv += 1
        pod = copy.deepcopy(pod)
        pod["metadata"]["resourceVersion"] = str(self.rv)
        self.pods[pod["metadata"]["uid"]] = pod
        return copy.deepcopy(pod)

    def _find(self, ns: str, name: str) -> Obj:
        for p in self.pods.values():
            if p["metadata"]["name"] == name and p["metadata"]["namespace"] == ns:
                return p
        raise StatusError(404, {"reason": "NotFound", "message": f"pods {name!r} not found"})

    async def update(self, res, ns, obj, subresource=""):
        self.calls.append(("update", obj["metadata"]["name"], subresource, copy.deepcopy(obj.get("status"))))
        cur = self._find(ns, obj["metadata"]["name"])
        if cur["metadata"]["resourceVersion"] != obj["metadata"].get("resourceVersion"):
            raise StatusError(409, {"reason": "Conflict"})
        return self.put(dict(cur, status=obj["status"]) if subresource == "status" else obj)

    async def get(self, res, ns, name, subresource=""):
        self.calls.append(("get", name))
        return copy.deepcopy(self._find(ns, name))

    async def delete(self, res, ns, name, *, grace_period=None, uid=None):
        self.calls.append(("delete", name, grace_period, uid))
        cur = self._find(ns, name)
        if uid is not None and cur["metadata"]["uid"] != uid:
            raise StatusError(409, {"reason": "Conflict"})
        del self.pods[cur["metadata"]["uid"]]
        return cur

    async def create(self, res, ns, obj):
        self.calls.append(("create", res.kind))
        self.events.append(obj)
        return obj

    async def patch(self, res, ns, name, patch, patch_type="merge", subresource=""):
        self.calls.append(("patch", name))
        return copy.deepcopy(self._find(ns, name))

    def updates(self) -> list[Obj]:
        return [c[3] for c in self.calls if c[0] == "update"]


class SignalRecordingRuntime(FakeRuntime):
    def __init__(self) -> None:
        super().__init__()
        self.signals: list[tuple[str, int]] = []

    def kill(self, id: str, signal: int, all: bool = False) -> None:
        self.signals.append((id, int(signal)))
        super().kill(id, signal, all)


class World:
    def __init__(self, tmp_path, backoff_base: float = 10.0) -> None:
        images = ImageStore(str(tmp_path / "images"))
        fake_root = tmp_path / "busybox-rootfs"
        (fake_root / "bin").mkdir(parents=True)
        (fake_root / "bin" / "busybox").write_text("#!fake\n")
        images.import_rootfs("busybox:latest", str(fake_root),
                             {"Cmd": ["sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"})
        self.runtime = SignalRecordingRuntime()
        self.network = FakeNetwork(SUBNET)
        self.cgroups = FakeCgroups()
        self.sandbox = FakeSandbox(str(tmp_path / "run"))
        self.rootfs = FakeRootfs()
        self.records = RecordStore(str(tmp_path / "state"))
        self.host = PodHost(records=self.records, sandbox=self.sandbox, network=self.network, cgroups=self.cgroups,
                            runtime=self.runtime, images=images, cgroup_root="coracle", node_name="crt-node",
                            host_ip="192.0.2.10", backoff_base=backoff_base,
                            limits=oci.AgentLimits(nofile_hard=20000, oom_score_adj=0), rootfs=self.rootfs)
        self.client = FakeClient()
        self.stale: Obj | None = None  # when set, the "informer" returns this instead of the API's pod
        self.workers = self.new_workers()

    def new_workers(self) -> PodWorkers:
        return PodWorkers(self.host, self.client, self.desired)  # type: ignore[arg-type]

    def desired(self, uid: str) -> Obj | None:
        if self.stale is not None:
            return copy.deepcopy(self.stale)
        p = self.client.pods.get(uid)
        return copy.deepcopy(p) if p else None

    def add_pod(self, policy: str = "Always", image: str = "busybox", **spec) -> Obj:
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "crt-pod", "namespace": "default", "uid": UID},
               "spec": {"nodeName": "crt-node", "restartPolicy": policy,
                        "containers": [{"name": "main", "image": image, "command": ["sleep", "1000"]}], **spec},
               "status": {"phase": "Pending", "qosClass": "BestEffort"}}
        return self.client.put(pod)

    @property
    def rid(self) -> str:
        return self.host.runtime_id(UID, "main")

    def count(self, verb: str) -> int:
        return self.runtime.calls.count((verb, self.rid))

    def last_status(self) -> Obj:
        return self.client.pods[UID]["status"]

    def assert_all_gone(self) -> None:
        assert not self.sandbox.exists(UID)
        assert self.network.allocated() == [] and self.network.status(UID) is None
        assert not any(UID in p for p in self.cgroups.limits)
        assert self.runtime.list() == []


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w


async def sync(w: World) -> None:
    try:
        await w.workers.sync(UID)
    finally:
        await w.workers.stop()


def test_sync_to_running_then_noop(world):
    world.add_pod()

    async def go():
        await world.workers.sync(UID)
        first = list(world.client.updates())
        await world.workers.sync(UID)
        await world.workers.stop()
        return first
    first = run(go())
    assert len(first) == 1
    st = first[0]
    assert st["phase"] == "Running"
    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(SUBNET)
    cs = st["containerStatuses"][0]
    assert "running" in cs["state"] and cs["ready"] and cs["restartCount"] == 0
    assert cs["containerID"] == f"runc://{world.rid}"
    assert len(world.client.updates()) == 1  # the second sync changed nothing, wrote nothing
    assert world.count("create") == 1 and world.count("start") == 1
    assert world.runtime.state(world.rid)["status"] == "running"
    assert world.sandbox.exists(UID) and world.network.status(UID).ip == st["podIP"]
    assert world.cgroups.limits[f"coracle/besteffort/pod{UID}"].cpu_shares == 2
    cdir = world.records.container_dir(UID, "main")
    with open(os.path.join(cdir, "config.json")) as f:
        spec = json.load(f)
    assert spec["process"]["args"] == ["sleep", "1000"] and spec["root"]["path"] == os.path.join(cdir, "rootfs")
    assert spec["linux"]["cgroupsPath"] == f"/coracle/besteffort/pod{UID}/main"
    with open(os.path.join(world.records.pod_dir(UID), "etc", "hosts")) as f:
        assert f"{st['podIP']}\tcrt-pod" in f.read()
    # the default RLIMIT_NOFILE is above this agent's hard limit (20000): clamped and said so
    assert [e["reason"] for e in world.client.events] == ["LimitClamped", "Started"]
    assert "20000" in world.client.events[0]["message"]
    assert {"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000} in spec["process"]["rlimits"]


def test_stale_informer_skips_rewrite_but_external_change_is_corrected(world):
    original = world.add_pod()

    async def go():
        await world.workers.sync(UID)
        world.stale = original          # the informer has not seen our write yet
        await world.workers.sync(UID)
        n = len(world.client.updates())
        world.stale = None
        pod = world.client.pods[UID]    # someone else marks the pod not ready
        pod["status"]["conditions"] = [dict(c, status="False") if c["type"] == "Ready" else c
                                       for c in pod["status"]["conditions"]]
        world.client.put(pod)
        await world.workers.sync(UID)
        await world.workers.stop()
        return n
    assert run(go()) == 1
    assert len(world.client.updates()) == 2
    ready = [c for c in world.last_status()["conditions"] if c["type"] == "Ready"][0]
    assert ready["status"] == "True"


def test_never_exit_zero_succeeds_and_releases_node_resources(world):
    world.add_pod("Never")

    async def go():
        await world.workers.sync(UID)
        world.runtime.simulate_exit(world.rid, 0)
        await world.workers.sync(UID)
        n = len(world.client.updates())
        await world.workers.sync(UID)
        await world.workers.stop()
        return n
    n = run(go())
    st = world.last_status()
    assert st["phase"] == "Succeeded"
    assert st["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert st["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    world.assert_all_gone()
    rec = world.records.load(UID)
    assert rec is not None and rec.finished and rec.containers["main"].state is ContainerState.EXITED
    assert os.path.isdir(os.path.dirname(world.records.log_path(UID, "main", 0)))
    assert not os.path.exists(world.records.container_dir(UID, "main"))
    assert len(world.client.updates()) == n  # finished: nothing more to write
    assert world.count("create") == 1


def test_always_restarts_with_backoff(tmp_path):
    w = World(tmp_path, backoff_base=0.3)
    w.add_pod("Always")

    async def go():
        await w.workers.sync(UID)
        w.runtime.simulate_exit(w.rid, 1)
        await w.workers.sync(UID)            # first restart: immediate
        assert w.count("create") == 2
        cs = w.last_status()["containerStatuses"][0]
        assert cs["restartCount"] == 1 and "running" in cs["state"]
        assert cs["lastState"]["terminated"]["exitCode"] == 1
        t0 = time.time()
        w.runtime.simulate_exit(w.rid, 2)
        await w.workers.sync(UID)            # second: backed off
        assert w.count("create") == 2
        cs = w.last_status()["containerStatuses"][0]
        assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert cs["lastState"]["terminated"]["exitCode"] == 2 and cs["restartCount"] == 1
        assert w.last_status()["phase"] == "Running"
        await asyncio.sleep(0.15)
        assert w.count("create") == 2        # still backing off
        deadline = time.monotonic() + 2
        while w.count("create") < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)        # the worker's own timer re-syncs
        t1 = time.time()
        await w.workers.stop()
        return t1 - t0
    waited = run(go())
    assert w.count("create") == 3 and waited >= 0.3 - 0.02
    cs = w.last_status()["containerStatuses"][0]
    assert cs["restartCount"] == 2 and "running" in cs["state"]
    rec = w.records.load(UID)
    assert rec.containers["main"].backoff_step == 2


def test_unknown_image_waits_with_err_image_pull(world):
    world.add_pod(image="crt-no-such-image:1")
    run(sync(world))
    st = world.last_status()
    assert st["phase"] == "Pending"
    w = st["containerStatuses"][0]["state"]["waiting"]
    assert w["reason"] == "ErrImagePull" and "crt-no-such-image" in w["message"]
    assert world.runtime.calls == []
    assert any(e["reason"] == "Failed" and e["type"] == "Warning" for e in world.client.events)


def test_deletion_sends_sigterm_then_removes_everything(world):
    world.add_pod()

    async def go():
        await world.workers.sync(UID)
        pod = world.client.pods[UID]
        pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
        world.client.put(pod)
        t = time.monotonic()
        await world.workers.sync(UID)
        await world.workers.stop()
        return time.monotonic() - t
    took = run(go())
    assert world.runtime.signals == [(world.rid, signal.SIGTERM)]  # it exited on TERM: no KILL
    assert took < 5
    assert ("delete", "crt-pod", 0, UID) in world.client.calls
    assert UID not in world.client.pods
    world.assert_all_gone()
    assert world.records.load(UID) is None and not os.path.exists(world.records.pod_dir(UID))


def test_pod_gone_from_api_is_torn_down(world):
    world.add_pod()

    async def go():
        await world.workers.sync(UID)
        assert world.sandbox.exists(UID) and world.network.allocated() == [UID]
        del world.client.pods[UID]
        await world.workers.sync(UID)
        await world.workers.sync(UID)        # already gone: still fine
        await world.workers.stop()
    run(go())
    world.assert_all_gone()
    assert not os.path.exists(world.records.pod_dir(UID))
    assert not [c for c in world.client.calls if c[0] == "delete"]


def test_crash_between_create_and_start_is_finished_once(world):
    world.add_pod()
    real_start = world.runtime.start

    def crash(id: str) -> None:
        raise SystemExit("agent killed between runc create and runc start")

    world.runtime.start = crash  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        run(sync(world))
    rec = world.records.load(UID)
    assert rec.containers["main"].state is ContainerState.WAITING and rec.containers["main"].runtime_id == world.rid
    assert world.runtime.state(world.rid)["status"] == "created"

    world.runtime.start = real_start  # type: ignore[method-assign]
    world.workers = world.new_workers()  # a restarted agent
    run(sync(world))
    assert world.count("create") == 1 and world.count("start") == 1
    assert world.runtime.state(world.rid)["status"] == "running"
    assert world.records.load(UID).containers["main"].state is ContainerState.RUNNING
    assert world.last_status()["phase"] == "Running"
    run(sync(world))
    assert world.count("create") == 1 and world.count("start") == 1
