"""The official `kubernetes` Python client (PyPI) against a real `coracle master`
subprocess on a free loopback port: typed CRUD of core, apps and coordination
kinds, strategic and merge patches, the scale subresource, `watch.Watch().stream`
with resume and 410 Gone, ApiException codes and causes, label and field
selectors, and limit/continue pagination.  The whole module runs twice: on a
tmp SQLite store and on a throwaway etcd (tests/etcd_fixture.py).

Neighbours: test_kubectl_master.py (kubectl against the same master process).
No node agent runs: pods stay Pending (unbound) and are deleted at once."""
from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import socket
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import etcd_fixture  # noqa: E402

pytestmark = [pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]
NS = "crt-pyc"


class MasterProcess:
    """`coracle master` on a free loopback port; stop() returns its exit code."""

    def __init__(self, tmp: Path, store: str, extra: tuple[str, ...] = ()):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.tmp = tmp
        self.kubeconfig = str(tmp / "kubeconfig")
        self.log_path = tmp / "master.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coracle.cli", "master", "--store", store, "--port", str(self.port),
             "--kubeconfig", self.kubeconfig,
             "--service-account-key-file", str(tmp / "sa.key"), *extra], cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"master did not start:\n{self.log_path.read_text()}")
            time.sleep(0.1)

    def api_client(self) -> client.ApiClient:
        cfg = client.Configuration()
        config.load_kube_config(config_file=self.kubeconfig, client_configuration=cfg)
        return client.ApiClient(cfg)

    def stop(self) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            return -9
        finally:
            self.log.close()


def _run_master(tmp: Path, store: str, extra: tuple[str, ...] = ()) -> Iterator[MasterProcess]:
    m = MasterProcess(tmp, store, extra)
    stopped = False
    try:
        yield m
        rc = m.stop()
        stopped = True
        assert rc == 0, m.log_path.read_text()[-4000:]
    finally:
        if not stopped:
            m.stop()


@pytest.fixture(scope="module", params=["sqlite", "etcd"])
def master(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    tmp = tmp_path_factory.mktemp(f"crt-pyc-{request.param}")
    if request.param == "sqlite":
        yield from _run_master(tmp, f"sqlite:///{tmp}/state.db")
        return
    if not etcd_fixture.available():
        pytest.skip("etcd not installed")
    with etcd_fixture.EtcdServer() as etcd:
        yield from _run_master(tmp, etcd.store_url("/crt-pyc"))


@pytest.fixture(scope="module")
def api(master: MasterProcess) -> Iterator[client.ApiClient]:
    c = master.api_client()
    core = client.CoreV1Api(c)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NS)))
        yield c
    finally:
        try:
            core.delete_namespace(NS)
        except ApiException as e:
            assert e.status == 404
        c.close()


def pod(name: str, labels: dict[str, str] | None = None, image: str = "busybox:1.36") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels or {"app": "crt"}),
        spec=client.V1PodSpec(containers=[
            client.V1Container(name="main", image=image, command=["sleep", "3600"],
                               env=[client.V1EnvVar(name="A", value="1")]),
            client.V1Container(name="side", image=image, command=["sleep", "3600"])]))


def status_body(e: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(e.body)
    assert body["kind"] == "Status" and body["status"] == "Failure" and body["code"] == e.status
    return body


def round_trip(c: client.ApiClient, obj: Any) -> None:
    """The typed model survives serialise -> deserialise unchanged (catches wrongly-shaped fields)."""
    raw = c.sanitize_for_serialization(obj)
    again = c.deserialize(json.dumps(raw), type(obj).__name__, "application/json")
    assert c.sanitize_for_serialization(again) == raw
    assert isinstance(obj.to_dict(), dict)


def replace_retrying(read: Any, change: Any, replace: Any, timeout: float = 30) -> Any:
    """read -> change -> replace, again from a fresh read on 409, as client-go's RetryOnConflict: a
    controller (the Deployment's status, the scheduler's PodScheduled condition) may write the object
    between the read and the replace, and the 409 that answers the replace is right."""
    deadline = time.monotonic() + timeout
    while True:
        obj = read()
        change(obj)
        try:
            return replace(obj)
        except ApiException as e:
            if e.status != 409 or time.monotonic() > deadline:
                raise


def wait_gone(read: Any, *args: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            read(*args)
        except ApiException as e:
            if e.status == 404:
                return
            raise
        time.sleep(0.2)
    raise AssertionError(f"{args} still there after {timeout}s")


def test_namespaces(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="crt-pyc-ns", labels={"a": "1"})))
    try:
        assert ns.status.phase == "Active" and ns.metadata.uid and ns.metadata.creation_timestamp is not None
        assert "crt-pyc-ns" in [n.metadata.name for n in core.list_namespace().items]
        got = core.patch_namespace("crt-pyc-ns", {"metadata": {"labels": {"b": "2"}}})
        assert got.metadata.labels["a"] == "1" and got.metadata.labels["b"] == "2"
        got.metadata.labels = {"c": "3"}
        got = core.replace_namespace("crt-pyc-ns", got)
        assert got.metadata.labels.get("c") == "3" and "a" not in got.metadata.labels
        assert [n.metadata.name for n in core.list_namespace(label_selector="c=3").items] == ["crt-pyc-ns"]
        round_trip(api, got)
    finally:
        core.delete_namespace("crt-pyc-ns")
    wait_gone(core.read_namespace, "crt-pyc-ns")


def test_pod_crud_and_patches(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = core.create_namespaced_pod(NS, pod("crt-p1"))
    try:
        assert created.status.phase == "Pending" and created.spec.restart_policy == "Always"
        assert created.spec.containers[0].image_pull_policy == "IfNotPresent"
        got = core.read_namespaced_pod("crt-p1", NS)
        assert got.metadata.uid == created.metadata.uid
        round_trip(api, got)
        # strategic merge: containers merge by name, env by name
        sp = core.patch_namespaced_pod("crt-p1", NS, {"spec": {"containers": [
            {"name": "side", "image": "busybox:1.37"}]}})
        assert [(c.name, c.image) for c in sp.spec.containers] == [("main", "busybox:1.36"), ("side", "busybox:1.37")]
        # merge patch (RFC 7386): labels merged, a null removes a key
        mp = core.patch_namespaced_pod("crt-p1", NS, {"metadata": {"labels": {"app": None, "x": "y"}}},
                                       _content_type="application/merge-patch+json")
        assert mp.metadata.labels == {"x": "y"}
        # JSON patch
        jp = core.patch_namespaced_pod("crt-p1", NS, [{"op": "add", "path": "/metadata/annotations",
                                                       "value": {"crt/j": "1"}}])
        assert jp.metadata.annotations == {"crt/j": "1"}
        # replace with the current resourceVersion (read again if the scheduler wrote the pod's status
        # in between), then with a stale one: 409 Conflict
        rep = replace_retrying(lambda: core.read_namespaced_pod("crt-p1", NS),
                               lambda p: p.metadata.labels.__setitem__("r", "1"),
                               lambda p: core.replace_namespaced_pod("crt-p1", NS, p))
        assert rep.metadata.labels["r"] == "1"
        assert int(rep.metadata.resource_version) > int(jp.metadata.resource_version)
        jp.metadata.labels["r"] = "2"
        with pytest.raises(ApiException) as ei:
            core.replace_namespaced_pod("crt-p1", NS, jp)
        assert ei.value.status == 409 and status_body(ei.value)["reason"] == "Conflict"
        assert core.read_namespaced_pod("crt-p1", NS).metadata.labels["r"] == "1"
    finally:
        core.delete_namespaced_pod("crt-p1", NS)
    wait_gone(core.read_namespaced_pod, "crt-p1", NS)


def test_errors(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException) as ei:
        core.read_namespaced_pod("crt-nope", NS)
    body = status_body(ei.value)
    assert ei.value.status == 404 and ei.value.reason == "Not Found" and body["reason"] == "NotFound"
    assert body["details"] == {"name": "crt-nope", "kind": "pods"}
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="crt-dup")))
    try:
        with pytest.raises(ApiException) as ei:
            core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="crt-dup")))
        assert ei.value.status == 409 and status_body(ei.value)["reason"] == "AlreadyExists"
    finally:
        core.delete_namespaced_config_map("crt-dup", NS)
    bad = pod("crt-Bad_Name")
    bad.spec.containers[1].image = None
    with pytest.raises(ApiException) as ei:
        core.create_namespaced_pod(NS, bad)
    body = status_body(ei.value)
    assert ei.value.status == 422 and body["reason"] == "Invalid" and body["details"]["kind"] == "Pod"
    fields = {c["field"] for c in body["details"]["causes"]}
    assert {"metadata.name", "spec.containers[1].image"} <= fields, body
    with pytest.raises(ApiException) as ei:
        core.create_namespaced_pod("crt-no-such-ns", pod("crt-p"))
    assert ei.value.status == 404 and status_body(ei.value)["details"]["kind"] == "namespaces"


def test_services_configmaps_secrets(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    svc = core.create_namespaced_service(NS, client.V1Service(
        metadata=client.V1ObjectMeta(name="crt-svc"),
        spec=client.V1ServiceSpec(selector={"app": "crt"}, ports=[client.V1ServicePort(port=80, target_port=8080)])))
    try:
        assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip.startswith("10.96.")
        assert svc.spec.ports[0].protocol == "TCP" and svc.spec.ports[0].target_port == 8080
        patched = core.patch_namespaced_service("crt-svc", NS, {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}})
        assert [(p.port, p.target_port) for p in patched.spec.ports] == [(80, 9090)]
        assert patched.spec.cluster_ip == svc.spec.cluster_ip
        with pytest.raises(ApiException) as ei:
            core.patch_namespaced_service("crt-svc", NS, {"spec": {"clusterIP": "10.96.200.200"}})
        assert ei.value.status == 422 and "spec.clusterIP" in ei.value.body
        cur = core.read_namespaced_service("crt-svc", NS)
        cur.spec.selector = {"app": "other"}
        rep = core.replace_namespaced_service("crt-svc", NS, cur)
        assert rep.spec.selector == {"app": "other"} and rep.spec.cluster_ip == svc.spec.cluster_ip
        mp = core.patch_namespaced_service("crt-svc", NS, {"spec": {"selector": {"app": None, "tier": "x"}}},
                                           _content_type="application/merge-patch+json")
        assert mp.spec.selector == {"tier": "x"}
        assert [x.metadata.name for x in core.list_namespaced_service(NS).items] == ["crt-svc"]
        round_trip(api, patched)
    finally:
        core.delete_namespaced_service("crt-svc", NS)
    cm = core.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="crt-cm"), data={"k": "v"}, binary_data={"b": base64.b64encode(b"\0\1").decode()}))
    try:
        cm = core.patch_namespaced_config_map("crt-cm", NS, {"data": {"k2": "v2"}})
        assert cm.data == {"k": "v", "k2": "v2"} and base64.b64decode(cm.binary_data["b"]) == b"\0\1"
        cm.data = {"only": "this"}
        assert core.replace_namespaced_config_map("crt-cm", NS, cm).data == {"only": "this"}
        round_trip(api, cm)
    finally:
        core.delete_namespaced_config_map("crt-cm", NS)
    sec = core.create_namespaced_secret(NS, client.V1Secret(
        metadata=client.V1ObjectMeta(name="crt-sec"), string_data={"user": "admin"},
        data={"pw": base64.b64encode(b"s3cret").decode()}))
    try:
        assert sec.type == "Opaque" and not sec.string_data
        got = core.read_namespaced_secret("crt-sec", NS)
        assert {k: base64.b64decode(v) for k, v in got.data.items()} == {"user": b"admin", "pw": b"s3cret"}
        round_trip(api, got)
        got.data = {"only": base64.b64encode(b"x").decode()}
        assert list(core.replace_namespaced_secret("crt-sec", NS, got).data) == ["only"]
        mp = core.patch_namespaced_secret("crt-sec", NS, {"stringData": {"more": "y"}, "data": {"only": None}},
                                          _content_type="application/merge-patch+json")
        assert {k: base64.b64decode(v) for k, v in mp.data.items()} == {"more": b"y"} and not mp.string_data
        assert "crt-sec" in [x.metadata.name for x in core.list_namespaced_secret(NS).items]
    finally:
        core.delete_namespaced_secret("crt-sec", NS)
    for read, name in ((core.read_namespaced_config_map, "crt-cm"), (core.read_namespaced_secret, "crt-sec"),
                       (core.read_namespaced_service, "crt-svc")):
        wait_gone(read, name, NS)


def test_deployment_scale(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="crt-dep"),
        spec=client.V1DeploymentSpec(
            replicas=1, selector=client.V1LabelSelector(match_labels={"app": "crt-dep"}),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels={"app": "crt-dep"}),
                                              spec=pod("x").spec)))
    got = apps.create_namespaced_deployment(NS, dep)
    try:
        assert got.spec.strategy.type == "RollingUpdate" and got.spec.revision_history_limit == 10
        got = apps.patch_namespaced_deployment("crt-dep", NS, {"spec": {"replicas": 3}})
        assert got.spec.replicas == 3
        scale = apps.read_namespaced_deployment_scale("crt-dep", NS)
        assert isinstance(scale, client.V1Scale) and scale.spec.replicas == 3
        assert scale.metadata.name == "crt-dep"
        scale = apps.patch_namespaced_deployment_scale("crt-dep", NS, {"spec": {"replicas": 5}})
        assert scale.spec.replicas == 5
        assert apps.read_namespaced_deployment("crt-dep", NS).spec.replicas == 5
        # the Deployment controller writes the object's status as it scales: a replace of /scale reads again
        # and retries on 409, as a real client does
        reads: list[str] = []

        def to_two(sc: client.V1Scale) -> None:
            sc.spec.replicas = 2
            if not reads:   # another writer gets in between the first read and its replace, as the controller can
                apps.patch_namespaced_deployment("crt-dep", NS, {"metadata": {"annotations": {"crt/other": "w"}}})
            reads.append(sc.metadata.resource_version)
        got = replace_retrying(lambda: apps.read_namespaced_deployment_scale("crt-dep", NS), to_two,
                               lambda sc: apps.replace_namespaced_deployment_scale("crt-dep", NS, sc))
        assert got.spec.replicas == 2 and apps.read_namespaced_deployment("crt-dep", NS).spec.replicas == 2
        assert len(reads) >= 2   # the first replace met a 409 and was read again
        with pytest.raises(ApiException) as ei:
            apps.patch_namespaced_deployment("crt-dep", NS, {"spec": {"selector": {"matchLabels": {"app": "other"}}}})
        assert ei.value.status == 422 and "spec.selector" in ei.value.body
        round_trip(api, apps.read_namespaced_deployment("crt-dep", NS))
    finally:
        apps.delete_namespaced_deployment("crt-dep", NS)
    wait_gone(apps.read_namespaced_deployment, "crt-dep", NS)


def test_leases(api: client.ApiClient) -> None:
    coord = client.CoordinationV1Api(api)
    now = client.V1LeaseSpec(holder_identity="crt-a", lease_duration_seconds=15)
    lease = coord.create_namespaced_lease(NS, client.V1Lease(metadata=client.V1ObjectMeta(name="crt-lease"), spec=now))
    try:
        assert lease.spec.holder_identity == "crt-a"
        lease.spec.renew_time = "2026-01-02T03:04:05.123456Z"
        lease.spec.holder_identity = "crt-b"
        lease = coord.replace_namespaced_lease("crt-lease", NS, lease)
        got = coord.read_namespaced_lease("crt-lease", NS)
        assert got.spec.holder_identity == "crt-b" and got.spec.renew_time.microsecond == 123456
        assert "crt-lease" in [x.metadata.name for x in coord.list_namespaced_lease(NS).items]
        round_trip(api, got)
    finally:
        coord.delete_namespaced_lease("crt-lease", NS)


def test_watch_stream_in_order_and_resume(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    core.create_namespaced_pod(NS, pod("crt-w", {"app": "w"}))
    try:
        core.patch_namespaced_pod("crt-w", NS, {"metadata": {"labels": {"step": "2"}}})
    finally:
        core.delete_namespaced_pod("crt-w", NS)
    # the scheduler may add its own MODIFIED (PodScheduled=False: no nodes) between ours
    seen: list[tuple[str, str, str]] = []
    step2 = False
    w = watch.Watch()
    # only this test's pod: other tests' deployments leave their pods' deletions in the history
    for ev in w.stream(core.list_namespaced_pod, NS, resource_version=rv, label_selector="app=w", timeout_seconds=5):
        assert isinstance(ev["object"], client.V1Pod)
        seen.append((ev["type"], ev["object"].metadata.name, ev["object"].metadata.resource_version))
        step2 = step2 or (ev["object"].metadata.labels or {}).get("step") == "2"
        if ev["type"] == "DELETED":
            w.stop()
    types = [t for t, _, _ in seen]
    assert types[0] == "ADDED" and types[-1] == "DELETED" and set(types[1:-1]) == {"MODIFIED"}, seen
    assert {n for _, n, _ in seen} == {"crt-w"} and step2
    revs = [int(r) for _, _, r in seen]
    assert revs == sorted(revs) and int(rv) < revs[0]
    # resume from the ADDED event's version: the rest comes again, nothing before it
    resumed = []
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, NS, resource_version=seen[0][2], label_selector="app=w",
                       timeout_seconds=5):
        resumed.append((ev["type"], ev["object"].metadata.name, ev["object"].metadata.resource_version))
        if ev["type"] == "DELETED":
            w.stop()
    assert resumed == seen[1:]
    # a live watch sees a change made after it opened
    w = watch.Watch()
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    got = []
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="crt-wcm")))
    try:
        for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=5):
            got.append((ev["type"], ev["object"].metadata.name))
            w.stop()
    finally:
        core.delete_namespaced_config_map("crt-wcm", NS)
    assert got == [("ADDED", "crt-wcm")]


def test_generate_name_dry_run_preconditions_deletecollection(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    cm = core.create_namespaced_config_map(NS, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(generate_name="crt-gen-", labels={"crt-dc": "1"})))
    name = cm.metadata.name
    try:
        assert name.startswith("crt-gen-") and len(name) == len("crt-gen-") + 5
        dry = core.create_namespaced_config_map(NS, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="crt-dry")), dry_run="All")
        assert dry.metadata.name == "crt-dry"
        wait_gone(core.read_namespaced_config_map, "crt-dry", NS, timeout=0.5)
        with pytest.raises(ApiException) as ei:
            core.delete_namespaced_config_map(name, NS, body=client.V1DeleteOptions(
                preconditions=client.V1Preconditions(uid="00000000-0000-0000-0000-000000000000")))
        assert ei.value.status == 409 and "Precondition failed" in ei.value.body
        before = cm.metadata.resource_version
        same = core.patch_namespaced_config_map(name, NS, {"metadata": {"labels": {"crt-dc": "1"}}})
        assert same.metadata.resource_version == before  # a no-op write is skipped, as upstream
        for i in range(3):
            core.create_namespaced_config_map(NS, client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=f"crt-dc{i}", labels={"crt-dc": "1" if i < 2 else "2"})))
        core.delete_collection_namespaced_config_map(NS, label_selector="crt-dc=1")
        left = sorted(c.metadata.name for c in core.list_namespaced_config_map(NS, label_selector="crt-dc").items)
        assert left == ["crt-dc2"]
    finally:
        core.delete_collection_namespaced_config_map(NS, label_selector="crt-dc")


def test_conflicting_writers_lose_no_update(api: client.ApiClient) -> None:
    """Many clients doing read-modify-write of one object: the counter equals the successful writes."""
    import threading
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="crt-ctr"),
                                                             data={"n": "0"}))
    wins, conflicts, errors = [0], [0], []
    lock = threading.Lock()

    def writer() -> None:
        try:
            for _ in range(3):
                while True:
                    cur = core.read_namespaced_config_map("crt-ctr", NS)
                    cur.data["n"] = str(int(cur.data["n"]) + 1)
                    try:
                        core.replace_namespaced_config_map("crt-ctr", NS, cur)
                    except ApiException as e:
                        if e.status != 409:
                            raise
                        with lock:
                            conflicts[0] += 1
                        continue
                    with lock:
                        wins[0] += 1
                    break
        except Exception as e:  # surfaced below
            errors.append(e)
    try:
        threads = [threading.Thread(target=writer, name=f"crt-writer-{i}") for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors and not any(t.is_alive() for t in threads), errors[:3]
        assert wins[0] == 150 and conflicts[0] > 0
        assert core.read_namespaced_config_map("crt-ctr", NS).data["n"] == "150"
    finally:
        core.delete_namespaced_config_map("crt-ctr", NS)


def test_selectors_and_pagination(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    names = [f"crt-s{i}" for i in range(7)]
    for i, n in enumerate(names):
        core.create_namespaced_pod(NS, pod(n, {"tier": "web" if i % 2 else "db", "idx": str(i)}))
    try:
        def ls(**kw: Any) -> list[str]:
            return sorted(p.metadata.name for p in core.list_namespaced_pod(NS, **kw).items)
        assert ls(label_selector="tier=web") == ["crt-s1", "crt-s3", "crt-s5"]
        assert ls(label_selector="tier!=web,idx in (0,1,2)") == ["crt-s0", "crt-s2"]
        assert ls(label_selector="idx notin (0,1,2,3,4),tier") == ["crt-s5", "crt-s6"]
        assert ls(label_selector="!tier") == []
        assert ls(field_selector="metadata.name=crt-s3") == ["crt-s3"]
        assert ls(field_selector="status.phase=Pending,metadata.name!=crt-s0") == names[1:]
        assert ls(field_selector="spec.nodeName=") == names
        assert ls(field_selector="spec.nodeName=crt-node") == []
        all_pods = [p.metadata.name for p in core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={NS}").items]
        assert sorted(all_pods) == names
        with pytest.raises(ApiException) as ei:
            core.list_namespaced_pod(NS, field_selector="spec.bogus=1")
        assert ei.value.status == 400
        pages, token = [], None
        while True:
            page = core.list_namespaced_pod(NS, limit=3, _continue=token)
            pages.append([p.metadata.name for p in page.items])
            token = page.metadata._continue
            if not token:
                break
            assert page.metadata.remaining_item_count in (None, 7 - sum(len(p) for p in pages))
        assert [len(p) for p in pages] == [3, 3, 1] and sum(pages, []) == names
        for p in core.list_namespaced_pod(NS).items:
            round_trip(api, p)
    finally:
        for n in names:
            core.delete_namespaced_pod(n, NS)


RICH_POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crt-rich", "labels": {"app": "crt-web"},
                                                     "annotations": {"crt/a": "b"}},
    "spec": {
        "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
        "containers": [{
            "name": "main", "image": "busybox", "command": ["sleep", "3600"], "workingDir": "/",
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "crt-cm", "key": "a"}}}],
            "envFrom": [{"secretRef": {"name": "crt-secret"}}],
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
            "readinessProbe": {"tcpSocket": {"port": 8080}},
            "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30},
            "lifecycle": {"preStop": {"exec": {"command": ["true"]}}},
            "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/cfg"}]}],
        "volumes": [{"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                    {"name": "cfg", "configMap": {"name": "crt-cm", "items": [{"key": "a", "path": "a.txt"}]}}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "crt", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}},
        "hostAliases": [{"ip": "10.250.9.9", "hostnames": ["crt.local"]}],
        "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 5}}
NODE = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "crt-pyc-node"},
        "spec": {"unschedulable": True, "podCIDR": "10.250.7.0/24", "podCIDRs": ["10.250.7.0/24"]}}
EVENT = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "crt-ev"}, "reason": "CrtTest",
         "message": "hi", "type": "Normal", "count": 2, "source": {"component": "crt"},
         "involvedObject": {"kind": "Pod", "name": "crt-rich", "namespace": NS, "apiVersion": "v1"},
         "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:05Z"}

EVENT_V1 = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "crt-ev2"},
            "eventTime": "2026-01-01T00:00:00.000001Z", "reportingController": "crt.io/test",
            "reportingInstance": "crt-1", "action": "Testing", "reason": "CrtTest", "note": "hello", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "crt-rich", "namespace": NS, "apiVersion": "v1"}}


def _normalise(x: Any) -> Any:
    """Datetimes compare as instants (the client writes +00:00 where the server wrote Z)."""
    if isinstance(x, dict):  # a null is an absent field to the typed client (upstream sends lastProbeTime: null)
        return {k: _normalise(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_normalise(v) for v in x]
    if isinstance(x, str) and len(x) >= 20 and x[4] == "-" and x[10] == "T":
        try:
            return dt.datetime.fromisoformat(x.replace("Z", "+00:00"))
        except ValueError:
            return x
    return x


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            d = _first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: typed {a!r} != raw {b!r}"


def test_every_kind_deserialises(api: client.ApiClient) -> None:
    """One object of every kind, listed raw and through the client's typed models: the typed
    round trip keeps every field the server sent (a field of the wrong shape or name is lost or fails)."""
    import yaml
    from kubernetes import utils
    from test_kubectl_kinds import MANIFESTS
    docs: list[dict[str, Any]] = [yaml.safe_load(m) for m in MANIFESTS.values()]
    docs.extend([RICH_POD, NODE, EVENT, EVENT_V1])
    created: list[dict[str, Any]] = []
    try:
        for d in docs:
            utils.create_from_dict(api, d, namespace=NS)
            created.append(d)
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        rbac, auto = client.RbacAuthorizationV1Api(api), client.AutoscalingV2Api(api)
        lists = [
            (core.list_namespace, "V1NamespaceList"), (core.list_node, "V1NodeList"),
            (core.list_pod_for_all_namespaces, "V1PodList"), (core.list_service_for_all_namespaces, "V1ServiceList"),
            (core.list_endpoints_for_all_namespaces, "V1EndpointsList"),
            (core.list_config_map_for_all_namespaces, "V1ConfigMapList"),
            (core.list_secret_for_all_namespaces, "V1SecretList"),
            (core.list_service_account_for_all_namespaces, "V1ServiceAccountList"),
            (core.list_event_for_all_namespaces, "CoreV1EventList"),
            # only events that have an eventTime: the client's EventsV1Event requires one, and a core/v1
            # event without it reads back with eventTime null (upstream too; kubernetes-client/python#669)
            (partial(client.EventsV1Api(api).list_namespaced_event, NS, field_selector="metadata.name=crt-ev2"),
             "EventsV1EventList"),
            (core.list_replication_controller_for_all_namespaces, "V1ReplicationControllerList"),
            (core.list_resource_quota_for_all_namespaces, "V1ResourceQuotaList"),
            (core.list_limit_range_for_all_namespaces, "V1LimitRangeList"),
            (core.list_persistent_volume, "V1PersistentVolumeList"),
            (core.list_persistent_volume_claim_for_all_namespaces, "V1PersistentVolumeClaimList"),
            (apps.list_deployment_for_all_namespaces, "V1DeploymentList"),
            (apps.list_replica_set_for_all_namespaces, "V1ReplicaSetList"),
            (client.CoordinationV1Api(api).list_lease_for_all_namespaces, "V1LeaseList"),
            (rbac.list_role_for_all_namespaces, "V1RoleList"), (rbac.list_cluster_role, "V1ClusterRoleList"),
            (rbac.list_role_binding_for_all_namespaces, "V1RoleBindingList"),
            (rbac.list_cluster_role_binding, "V1ClusterRoleBindingList"),
            (client.NetworkingV1Api(api).list_ingress_for_all_namespaces, "V1IngressList"),
            (client.DiscoveryV1Api(api).list_endpoint_slice_for_all_namespaces, "V1EndpointSliceList"),
            (auto.list_horizontal_pod_autoscaler_for_all_namespaces, "V2HorizontalPodAutoscalerList"),
            (client.AutoscalingV1Api(api).list_horizontal_pod_autoscaler_for_all_namespaces,
             "V1HorizontalPodAutoscalerList")]
        for fn, model in lists:
            resp = fn(_preload_content=False)
            raw = json.loads(resp.data)
            typed = api.deserialize(resp.data.decode(), model, "application/json")
            assert typed.items, model
            assert all(i.metadata.name for i in typed.items)
            back = api.sanitize_for_serialization(typed)
            for r_item, b_item in zip(raw["items"], back["items"]):
                # the list's items carry no kind/apiVersion on the wire; the typed model may add neither
                diff = _first_difference(_normalise(b_item), _normalise(r_item))
                assert diff is None, (model, r_item["metadata"]["name"], diff)
            assert typed.to_dict()
    finally:
        for d in reversed(created):
            kind, name = d["kind"], d["metadata"]["name"]
            path = _path(d["apiVersion"], kind, name, None if kind in CLUSTER_KINDS else NS)
            r = httpx.delete(api.configuration.host + path, timeout=10)
            assert r.status_code in (200, 202, 404), (path, r.text)


CLUSTER_KINDS = {"Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "Namespace"}
PLURALS = {"Endpoints": "endpoints", "Ingress": "ingresses", "HorizontalPodAutoscaler": "horizontalpodautoscalers",
           "PersistentVolumeClaim": "persistentvolumeclaims", "LimitRange": "limitranges",
           "ResourceQuota": "resourcequotas", "EndpointSlice": "endpointslices", "Policy": "policies"}


def _path(group_version: str, kind: str, name: str, ns: str | None) -> str:
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    plural = PLURALS.get(kind, kind.lower() + "s")
    return f"{base}/namespaces/{ns}/{plural}/{name}" if ns else f"{base}/{plural}/{name}"


@pytest.fixture
def short_window_master(tmp_path: Path) -> Iterator[MasterProcess]:
    yield from _run_master(tmp_path, f"sqlite:///{tmp_path}/state.db", ("--watch-window-seconds", "1"))


def test_watch_too_old_is_410(short_window_master: MasterProcess) -> None:
    c = short_window_master.api_client()
    try:
        core = client.CoreV1Api(c)
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="crt-old")))
        time.sleep(1.5)
        core.delete_namespaced_config_map("crt-old", "default")  # an event that pushes the window on
        with pytest.raises(ApiException) as ei:
            for _ in watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                          timeout_seconds=3):
                pass
        assert ei.value.status == 410 and "Expired" in str(ei.value.reason)
        # a watch from a fresh list's version works
        rv = core.list_namespaced_config_map("default").metadata.resource_version
        assert list(watch.Watch().stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                         timeout_seconds=1)) == []
    finally:
        c.close()
