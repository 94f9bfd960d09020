"""Unit tests for nodeagent.pod.worker over PodHost with every driver faked:
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
from nodeagent.runtime import oci
from nodeagent.runtime.images import ImageStore
from nodeagent.pod.clock import FakeClock
from nodeagent.pod.events import FakeRecorder
from nodeagent.pod.network import FakeNetwork
from nodeagent.pod.host import PodHost
from nodeagent.pod.record import ContainerState, RecordStore
from nodeagent.pod.worker import PodWorkers
from nodeagent.runtime.rootfs import FakeRootfs
from nodeagent.runtime.runc import FakeRuntime
from nodeagent.pod.sandbox import FakeSandbox

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
        self.clock = FakeClock(time.time())
        self.host = PodHost(records=self.records, sandbox=self.sandbox, network=self.network, cgroups=self.cgroups,
                            runtime=self.runtime, images=images, cgroup_root="coracle", node_name="crt-node",
                            host_ip="192.0.2.10", backoff_base=backoff_base,
                            limits=oci.AgentLimits(nofile_hard=20000, oom_score_adj=0), rootfs=self.rootfs,
                            clock=self.clock)
        self.client = FakeClient()
        self.recorder = FakeRecorder()
        self.stale: Obj | None = None  # when set, the "informer" returns this instead of the API's pod
        self.workers = self.new_workers()

    def new_workers(self) -> PodWorkers:
        return PodWorkers(self.host, self.client, self.desired, self.recorder)  # type: ignore[arg-type]

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
    assert [e["reason"] for e in world.recorder.events] == ["LimitClamped", "Started"]
    assert "20000" in world.recorder.events[0]["message"]
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
    requeues: list[float] = []

    async def go():
        real = w.workers.actor.requeue
        w.workers.actor.requeue = lambda uid, delay: (requeues.append(delay), real(uid, delay))  # type: ignore[assignment]
        await w.workers.sync(UID)
        w.runtime.simulate_exit(w.rid, 1)
        await w.workers.sync(UID)            # first restart: immediate
        assert w.count("create") == 2
        cs = w.last_status()["containerStatuses"][0]
        assert cs["restartCount"] == 1 and "running" in cs["state"]
        assert cs["lastState"]["terminated"]["exitCode"] == 1
        w.runtime.simulate_exit(w.rid, 2)
        await w.workers.sync(UID)            # second: backed off
        assert w.count("create") == 2
        cs = w.last_status()["containerStatuses"][0]
        assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
        assert cs["lastState"]["terminated"]["exitCode"] == 2 and cs["restartCount"] == 1
        assert w.last_status()["phase"] == "Running"
        assert requeues and abs(requeues[-1] - 0.3) < 1e-6  # the worker's own timer re-syncs then
        w.clock.advance(0.2)
        await w.workers.sync(UID)
        assert w.count("create") == 2        # still backing off
        w.clock.advance(0.11)
        await w.workers.sync(UID)
        await w.workers.stop()
    run(go())
    assert w.count("create") == 3
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
    assert any(e["reason"] == "Failed" and e["type"] == "Warning" for e in world.recorder.events)


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


# -- init containers, probes, hooks, termination message, env sources, hostNetwork --------------

def _rid(w: World, name: str) -> str:
    return w.host.runtime_id(UID, name)


def _with_inits(w: World, policy: str = "Always", **spec) -> Obj:
    inits = [{"name": "init1", "image": "busybox", "command": ["true"]},
             {"name": "init2", "image": "busybox", "command": ["true"]}]
    return w.add_pod(policy, initContainers=inits, **spec)


def test_init_containers_run_in_order_before_app_containers(world):
    _with_inits(world)

    async def go():
        await world.workers.sync(UID)
        started = [id for v, id in world.runtime.calls if v == "start"]
        st1 = copy.deepcopy(world.last_status())
        world.runtime.simulate_exit(_rid(world, "init1"), 0)
        await world.workers.sync(UID)
        started2 = [id for v, id in world.runtime.calls if v == "start"]
        world.runtime.simulate_exit(_rid(world, "init2"), 0)
        await world.workers.sync(UID)
        await world.workers.stop()
        return started, st1, started2
    started, st1, started2 = run(go())
    assert started == [_rid(world, "init1")]
    assert started2 == [_rid(world, "init1"), _rid(world, "init2")]
    assert st1["phase"] == "Pending"
    init = {c["type"]: c for c in st1["conditions"]}["Initialized"]
    assert init["status"] == "False" and "init1 init2" in init["message"]
    assert "running" in st1["initContainerStatuses"][0]["state"]
    assert st1["initContainerStatuses"][1]["state"]["waiting"]["reason"] == "PodInitializing"
    assert st1["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    st = world.last_status()
    assert st["phase"] == "Running" and world.count("start") == 1
    assert {c["type"]: c["status"] for c in st["conditions"]}["Initialized"] == "True"
    assert all(s["ready"] and s["state"]["terminated"]["reason"] == "Completed" for s in st["initContainerStatuses"])


def test_failed_init_container_never_fails_the_pod(world):
    _with_inits(world, "Never")

    async def go():
        await world.workers.sync(UID)
        world.runtime.simulate_exit(_rid(world, "init1"), 3)
        await world.workers.sync(UID)
        await world.workers.stop()
    run(go())
    st = world.last_status()
    assert st["phase"] == "Failed"
    assert st["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert world.count("create") == 0 and _rid(world, "init2") not in {i for _, i in world.runtime.calls}
    world.assert_all_gone()


def test_failed_init_container_is_retried_under_always(tmp_path):
    w = World(tmp_path, backoff_base=0.05)
    _with_inits(w, "Always")

    async def go():
        await w.workers.sync(UID)
        w.runtime.simulate_exit(_rid(w, "init1"), 1)
        await w.workers.sync(UID)
        await w.workers.stop()
    run(go())
    st = w.last_status()
    assert st["phase"] == "Pending"
    assert st["initContainerStatuses"][0]["restartCount"] == 1
    assert w.runtime.calls.count(("create", _rid(w, "init1"))) == 2 and w.count("create") == 0


def _exec_world(tmp_path, results: dict[str, int]) -> World:
    w = World(tmp_path, backoff_base=0.05)
    w.execs: list[tuple[str, list[str]]] = []  # type: ignore[attr-defined]

    async def ex(rid, argv, timeout):
        w.execs.append((rid, argv))  # type: ignore[attr-defined]
        return results.get(argv[0], 0)
    w.host.exec_fn = ex
    return w


async def _until(cond, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.02)


def test_readiness_probe_drives_ready_condition(tmp_path):
    results = {"ready": 1}
    w = _exec_world(tmp_path, results)
    probe = {"exec": {"command": ["ready"]}, "periodSeconds": 0.05}
    w.add_pod(containers=[{"name": "main", "image": "busybox", "command": ["sleep", "1"], "readinessProbe": probe}])

    def ready() -> str:
        return {c["type"]: c["status"] for c in w.last_status()["conditions"]}["Ready"]

    async def go():
        await w.workers.sync(UID)
        assert ready() == "False" and not w.last_status()["containerStatuses"][0]["ready"]
        results["ready"] = 0
        await _until(lambda: ready() == "True")      # the prober's change re-syncs the pod
        assert w.last_status()["containerStatuses"][0]["ready"]
        results["ready"] = 1
        await _until(lambda: ready() == "False")
        await w.workers.stop()
    run(go())
    assert w.count("create") == 1 and w.runtime.signals == []


def test_liveness_failure_restarts_the_container(tmp_path):
    w = _exec_world(tmp_path, {"live": 1})
    probe = {"exec": {"command": ["live"]}, "periodSeconds": 0.05, "failureThreshold": 2}
    w.add_pod(containers=[{"name": "main", "image": "busybox", "command": ["sleep", "1"], "livenessProbe": probe}])

    async def go():
        await w.workers.sync(UID)
        await _until(lambda: w.last_status()["containerStatuses"][0]["restartCount"] >= 1)
        await w.workers.stop()
    run(go())
    assert (w.rid, signal.SIGTERM) in w.runtime.signals
    cs = w.last_status()["containerStatuses"][0]
    assert cs["lastState"]["terminated"]["exitCode"] == 128 + signal.SIGTERM
    assert any(e["reason"] == "Killing" and "liveness" in e["message"] for e in w.recorder.events)


def test_prestop_hook_runs_before_sigterm_and_poststart_after_start(tmp_path):
    w = _exec_world(tmp_path, {})
    life = {"preStop": {"exec": {"command": ["bye"]}}, "postStart": {"exec": {"command": ["hi"]}}}
    w.add_pod(containers=[{"name": "main", "image": "busybox", "command": ["sleep", "1"], "lifecycle": life}])
    order: list[str] = []
    real_kill = w.runtime.kill

    def kill(id, sig, all=False):
        order.append(f"kill{int(sig)}")
        real_kill(id, sig, all)
    w.runtime.kill = kill  # type: ignore[method-assign]

    async def ex(rid, argv, timeout):
        order.append(argv[0])
        return 0
    w.host.exec_fn = ex

    async def go():
        await w.workers.sync(UID)
        pod = w.client.pods[UID]
        pod["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
        w.client.put(pod)
        await w.workers.sync(UID)
        await w.workers.stop()
    run(go())
    assert order[0] == "hi" and order.index("bye") < order.index(f"kill{int(signal.SIGTERM)}")
    w.assert_all_gone()


def test_termination_message_read_after_exit(world):
    world.add_pod("Never")

    async def go():
        await world.workers.sync(UID)
        cdir = world.records.container_dir(UID, "main")
        with open(os.path.join(cdir, "config.json")) as f:
            mounts = json.load(f)["mounts"]
        assert {"destination": "/dev/termination-log", "type": "bind", "source": os.path.join(cdir, "termination-log"),
                "options": ["rbind", "rprivate", "rw"]} in mounts
        with open(os.path.join(cdir, "termination-log"), "w") as f:
            f.write("all done")
        world.runtime.simulate_exit(world.rid, 0)
        await world.workers.sync(UID)
        await world.workers.stop()
    run(go())
    assert world.last_status()["containerStatuses"][0]["state"]["terminated"]["message"] == "all done"


def test_missing_configmap_is_create_container_config_error(world):
    env = [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "k"}}},
           {"name": "B", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "k", "optional": True}}}]
    world.add_pod(containers=[{"name": "main", "image": "busybox", "command": ["sh"], "env": env}])
    run(sync(world))
    w = world.last_status()["containerStatuses"][0]["state"]["waiting"]
    assert w["reason"] == "CreateContainerConfigError" and 'configmap "cm" not found' in w["message"]
    assert world.count("create") == 0
    world.host.lookup = lambda kind, ns, name: {"data": {"k": "v1"}} if (kind, ns, name) == ("configmaps", "default", "cm") else None
    world.workers = world.new_workers()
    run(sync(world))
    with open(os.path.join(world.records.container_dir(UID, "main"), "config.json")) as f:
        penv = json.load(f)["process"]["env"]
    assert "A=v1" in penv and not any(e.startswith("B=") for e in penv)


def test_host_network_pod_has_host_ip_and_no_veth(world):
    world.add_pod(hostNetwork=True)
    run(sync(world))
    st = world.last_status()
    assert st["podIP"] == "192.0.2.10" and world.network.allocated() == []
    with open(os.path.join(world.records.container_dir(UID, "main"), "config.json")) as f:
        kinds_ = {n["type"] for n in json.load(f)["linux"]["namespaces"]}
    assert "network" not in kinds_ and "uts" not in kinds_ and "ipc" in kinds_


def test_qos_parents_and_besteffort_shares(world):
    world.add_pod()
    run(sync(world))
    assert world.cgroups.limits["coracle/besteffort"].cpu_shares == 2
    assert world.cgroups.exists("coracle/burstable")


def test_missing_image_backs_off_instead_of_flooding(world):
    """Defect: a pod with a missing image was retried (with an event each time) on every sync, about 40 times a
    second; now pulls back off per pod and image, 10 s doubling to 300 s."""
    world.add_pod(image="crt-no-such-image:1")
    pulls: list[float] = []
    real_resolve = world.host.images.resolve

    def resolve(ref: str):
        pulls.append(world.clock.now())
        return real_resolve(ref)
    world.host.images.resolve = resolve  # type: ignore[method-assign]
    t0 = world.clock.now()
    reasons: set[str] = set()

    wakes: list[float] = []
    world.workers.actor.wake = lambda uid: wakes.append(world.clock.now())  # type: ignore[assignment]
    world.workers.actor.requeue = lambda uid, delay: None  # type: ignore[assignment]

    async def go():
        for _ in range(180 * 4):               # this test syncs: every 0.25 s of 3 simulated minutes (the worst case)
            await world.workers.sync(UID)
            reasons.add(world.last_status()["containerStatuses"][0]["state"]["waiting"]["reason"])
            world.clock.advance(0.25)
        await world.workers.stop()
    run(go())
    assert [round(t - t0) for t in pulls] == [0, 10, 30, 70, 150]
    assert wakes == pulls                      # each failed pull asks for the sync that shows the back-off
    assert reasons == {"ErrImagePull", "ImagePullBackOff"}
    evs = world.recorder.events
    assert len(evs) == 3 * len(pulls)
    assert [(e["type"], e["reason"]) for e in evs[:3]] == [("Warning", "Failed"), ("Warning", "Failed"),
                                                           ("Normal", "BackOff")]
    assert evs[0]["message"].startswith('Failed to pull image "crt-no-such-image:1": ')
    assert evs[1]["message"] == "Error: ErrImagePull"
    assert evs[2]["message"] == 'Back-off pulling image "crt-no-such-image:1"'
    assert len(world.client.updates()) <= 2 * len(pulls)  # the status flips ErrImagePull <-> back-off, no more
    rec = world.records.load(UID)
    assert rec.containers["main"].pull_failures == 5 and world.runtime.calls == []


def test_new_image_is_pulled_at_once_despite_the_back_off(world):
    world.add_pod(image="crt-no-such-image:1")
    run(sync(world))
    pod = world.client.pods[UID]
    pod["spec"]["containers"][0]["image"] = "busybox"
    world.client.put(pod)
    world.workers = world.new_workers()
    run(sync(world))
    assert world.last_status()["containerStatuses"][0]["state"].get("running")
    assert world.records.load(UID).containers["main"].pull_failures == 0


def test_container_with_an_unsupported_volume_waits_and_says_why(world):
    """Defect: a pod with a configMap volume ran without its files; now the container waits."""
    world.add_pod(containers=[{"name": "main", "image": "busybox", "command": ["sleep", "1"],
                               "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}],
                  volumes=[{"name": "cfg", "configMap": {"name": "cm"}}])

    async def go():
        for _ in range(3):
            await world.workers.sync(UID)
        await world.workers.stop()
    run(go())
    st = world.last_status()
    w = st["containerStatuses"][0]["state"]["waiting"]
    msg = 'volume "cfg": volume type configMap is not supported on this node yet'
    assert st["phase"] == "Pending" and w == {"reason": "CreateContainerConfigError", "message": msg}
    assert world.recorder.events == [{"kind": "Pod", "name": "crt-pod", "uid": UID, "type": "Warning", "reason": "Failed",
                                      "message": f"Error: {msg}"}]  # once, not once per sync
    assert world.runtime.calls == [] and len(world.client.updates()) == 1


class TickingClock(FakeClock):
    """Every reading of the monotonic clock moves time on by 1 ms: each phase takes a known, nonzero time."""

    def monotonic(self) -> float:
        self.advance(0.001)
        return super().monotonic()


def test_startup_phases_are_recorded_with_the_saves_that_happen_anyway(tmp_path):
    w = World(tmp_path)
    w.host.clock = w.clock = TickingClock(1_700_000_000.0)
    w.workers = w.new_workers()
    w.add_pod()
    saves: list[bool] = []
    real_save = w.records.save

    def save(rec, durable=True):
        saves.append(durable)
        real_save(rec, durable)
    w.records.save = save  # type: ignore[method-assign]

    async def go():
        w.workers.update(UID)                 # first heard of: "seen" starts here
        await _until(lambda: w.client.updates())
        await w.workers.sync(UID)             # a second sync changes nothing
        await w.workers.stop()
    run(go())
    assert saves.count(True) == 5             # record, cgroup, sandbox, ContainerCreating, Running: as before
    assert saves.count(False) == 1            # the "status" phase, after the status write, not fsynced
    st = w.records.load(UID).startup
    assert list(st) == ["seen", "sandbox", "network", "cgroup", "etc", "rootfs/main", "bundle/main",
                        "runc-create/main", "runc-start/main", "status"]
    assert all(secs > 0 for _, secs in st.values())
    starts = [start for start, _ in st.values()]
    assert starts == sorted(starts) and starts[0] >= 1_700_000_000.0


def test_pod_log_lines_carry_pod_namespace_uid_and_node(world, caplog):
    world.add_pod()
    caplog.set_level("DEBUG", logger="coracle.agent")

    async def go():
        await world.workers.sync(UID)
        world.runtime.simulate_exit(world.rid, 3)
        await world.workers.sync(UID)
        del world.client.pods[UID]
        await world.workers.sync(UID)
        await world.workers.stop()
    run(go())
    lines = [r for r in caplog.records if r.name.startswith("coracle.agent")]
    msgs = [r.getMessage() for r in lines]
    assert any(m.startswith("started container main (attempt 0, pid ") for m in msgs)
    assert any(m == "container main exited with code 3 (Error)" for m in msgs)
    assert any(m.startswith(f"pod {UID} torn down") for m in msgs)
    for r in lines:
        assert (r.pod, r.namespace, r.uid, r.node) == ("crt-pod", "default", UID, "crt-node"), r.getMessage()


def test_pod_log_fields_fall_back_to_the_record():
    from nodeagent.pod import podlog
    from nodeagent.pod.record import PodRecord
    rec = PodRecord(uid="u1", namespace="ns", name="n")
    assert podlog.fields("node-a", "u1", None, rec) == {"pod": "n", "namespace": "ns", "uid": "u1", "node": "node-a"}
    assert podlog.fields("node-a", "u2") == {"pod": "", "namespace": "", "uid": "u2", "node": "node-a"}


def test_pod_events_name_the_kind_an_informer_list_leaves_out():
    from nodeagent.pod.events import PodEvents
    inner = FakeRecorder()
    listed = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}}  # as a list's item: no kind
    PodEvents(inner).event(listed, "Normal", "Started", "Started container main")
    assert inner.events[0]["kind"] == "Pod" and "kind" not in listed
