"""The widely used Python clients against a real one-node cluster: the
official `kubernetes`, `kubernetes_asyncio` and `lightkube`, each through the
basic verbs (a namespace of its own; create, get, list by label, patch,
replace, delete of a ConfigMap; a watch from the list's resourceVersion that
sees the writes in order; the namespace deleted) and exec.

The clients differ on the wire where servers have tripped: kubernetes_asyncio
spells boolean query parameters as Python does (`watch=True`, `stdout=True`)
and negotiates v4.channel.k8s.io, the official client writes stdin as text
messages, lightkube writes binary ones and closes stdin with v5's close
message.  A create carrying `metadata.resourceVersion: "v1"` (not a number)
is accepted and the version ignored, as upstream does.

One node `crt-pyo` with its own bridge, cgroup root and CIDRs (10.254.0.0/16
pods, 10.106.0.0/16 services); torn down at the end with a leftover check.
Neighbours: test_python_client.py (the official client in depth, master
only), test_python_clients_exec.py (the official client's exec framings).
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

kubernetes = pytest.importorskip("kubernetes")
kubernetes_asyncio = pytest.importorskip("kubernetes_asyncio")
lightkube = pytest.importorskip("lightkube")
from kubernetes import client as k8s, config as k8s_config, watch as k8s_watch  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from kubernetes.stream import stream as k8s_stream  # noqa: E402
from kubernetes_asyncio import client as aio, config as aio_config, watch as aio_watch  # noqa: E402
from kubernetes_asyncio.client.rest import ApiException as AioApiException  # noqa: E402
from kubernetes_asyncio.stream import WsApiClient  # noqa: E402
from lightkube import ApiError, AsyncClient as LkAsyncClient, Client as LkClient, KubeConfig  # noqa: E402
from lightkube.models.meta_v1 import ObjectMeta  # noqa: E402
from lightkube.resources.core_v1 import ConfigMap, Namespace  # noqa: E402
from lightkube.types import PatchType  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, have_tools, running_cluster, sleeper_pod, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

POD = "crt-pyo"
POD_YAML = sleeper_pod(POD)
WATCH_DEADLINE = 30.0


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    yield from running_cluster(Path(tmp_path_factory.mktemp("crt-pyo")), "crt-pyo", "crt-bo", "10.254.0.0/16",
                               "10.106.0.0/16", POD_YAML, (POD,))


def _gone(kc: E2ECluster, ns: str) -> None:
    wait_for(lambda: kc.kubectl("get", "namespace", ns, check=False).returncode != 0, 60, f"namespace {ns} gone")


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


def _in_thread(fn: Callable[[], Any], timeout: float) -> Any:
    """fn() in a daemon thread, failing the test at the deadline (a client's watch reconnects forever)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the test's thread
            box["error"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"no answer within {timeout}s")
    if "error" in box:
        raise box["error"]
    return box["value"]


EXPECTED_EVENTS = [("MODIFIED", {"a": "1", "b": "2"}), ("MODIFIED", {"c": "3"}), ("DELETED", {"c": "3"})]


# -- the official client -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def official(kc: E2ECluster) -> Iterator[k8s.ApiClient]:
    cfg = k8s.Configuration()
    k8s_config.load_kube_config(config_file=kc.cluster.kubeconfig, client_configuration=cfg)
    with k8s.ApiClient(cfg) as api:
        yield api


def test_official_verbs(kc: E2ECluster, official: k8s.ApiClient) -> None:
    core, ns = k8s.CoreV1Api(official), "crt-pyo-k8s"
    core.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=ns)))
    try:
        meta = k8s.V1ObjectMeta(name="cm", labels={"client": "k8s"}, resource_version="v1")
        made = core.create_namespaced_config_map(ns, k8s.V1ConfigMap(metadata=meta, data={"a": "1"}))
        assert made.metadata.resource_version.isdigit()
        assert core.read_namespaced_config_map("cm", ns).data == {"a": "1"}
        listed = core.list_namespaced_config_map(ns, label_selector="client=k8s")
        assert [c.metadata.name for c in listed.items] == ["cm"]
        core.patch_namespaced_config_map("cm", ns, {"data": {"b": "2"}})
        cur = core.read_namespaced_config_map("cm", ns)
        cur.data = {"c": "3"}
        assert core.replace_namespaced_config_map("cm", ns, cur).data == {"c": "3"}
        core.delete_namespaced_config_map("cm", ns)

        def events() -> list[tuple[str, dict]]:
            seen = []
            for ev in k8s_watch.Watch().stream(core.list_namespaced_config_map, ns, label_selector="client=k8s",
                                               resource_version=listed.metadata.resource_version, timeout_seconds=20):
                seen.append((ev["type"], ev["object"].data))
                if ev["type"] == "DELETED":
                    break
            return seen
        assert _in_thread(events, WATCH_DEADLINE) == EXPECTED_EVENTS
        with pytest.raises(ApiException) as e:
            core.read_namespaced_config_map("cm", ns)
        assert e.value.status == 404
    finally:
        core.delete_namespace(ns)
    _gone(kc, ns)


def test_official_exec(official: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(official)
    out = k8s_stream(core.connect_get_namespaced_pod_exec, POD, "default", command=["sh", "-c", "echo hi"],
                     stdin=False, stdout=True, stderr=True, tty=False)
    assert out == "hi\n"


# -- kubernetes_asyncio --------------------------------------------------------------------------
async def _aio_config(kc: E2ECluster) -> aio.Configuration:
    cfg = aio.Configuration()
    await aio_config.load_kube_config(config_file=kc.cluster.kubeconfig, client_configuration=cfg)
    return cfg


def test_asyncio_verbs(kc: E2ECluster) -> None:
    ns = "crt-pyo-aio"

    async def main() -> None:
        async with aio.ApiClient(await _aio_config(kc)) as api:
            core = aio.CoreV1Api(api)
            await core.create_namespace(aio.V1Namespace(metadata=aio.V1ObjectMeta(name=ns)))
            try:
                meta = aio.V1ObjectMeta(name="cm", labels={"client": "aio"}, resource_version="v1")
                made = await core.create_namespaced_config_map(ns, aio.V1ConfigMap(metadata=meta, data={"a": "1"}))
                assert made.metadata.resource_version.isdigit()
                assert (await core.read_namespaced_config_map("cm", ns)).data == {"a": "1"}
                listed = await core.list_namespaced_config_map(ns, label_selector="client=aio")
                assert [c.metadata.name for c in listed.items] == ["cm"]
                await core.patch_namespaced_config_map("cm", ns, {"data": {"b": "2"}})
                cur = await core.read_namespaced_config_map("cm", ns)
                cur.data = {"c": "3"}
                assert (await core.replace_namespaced_config_map("cm", ns, cur)).data == {"c": "3"}
                await core.delete_namespaced_config_map("cm", ns)
                seen = []
                async with aio_watch.Watch().stream(core.list_namespaced_config_map, ns, label_selector="client=aio",
                                                    resource_version=listed.metadata.resource_version,
                                                    timeout_seconds=20) as events:
                    async for ev in events:   # the watch=True query parameter, as Python spells it
                        seen.append((ev["type"], ev["object"].data))
                        if ev["type"] == "DELETED":
                            break
                assert seen == EXPECTED_EVENTS
                try:
                    await core.read_namespaced_config_map("cm", ns)
                    raise AssertionError("deleted ConfigMap still read")
                except AioApiException as e:
                    assert e.status == 404
            finally:
                await core.delete_namespace(ns)
    _run(main())
    _gone(kc, ns)


def test_asyncio_exec(kc: E2ECluster) -> None:
    """The preloaded form (stdout=True&stderr=True as Python spells them), then stdin over v4."""
    async def main() -> None:
        async with WsApiClient(await _aio_config(kc)) as ws_api:
            core = aio.CoreV1Api(ws_api)
            out = await core.connect_get_namespaced_pod_exec(POD, "default", command=["sh", "-c", "echo hi; echo err >&2"],
                                                             stdin=False, stdout=True, stderr=True, tty=False)
            assert sorted(out.splitlines()) == ["err", "hi"]
            ws = await core.connect_get_namespaced_pod_exec(POD, "default", command=["/bin/sh"], stdin=True,
                                                            stdout=True, stderr=True, tty=False, _preload_content=False)
            async with ws as conn:   # asks for v4.channel.k8s.io by header (aiohttp does not record the answer)
                await conn.send_bytes(b"\x00echo test string 1\n")
                got = b""
                while b"\n" not in got:
                    msg = await conn.receive(timeout=10)
                    if msg.data[:1] == b"\x01":
                        got += msg.data[1:]
                assert got == b"test string 1\n"
                await conn.send_bytes(b"\x00exit 4\n")
                status = b""
                while not status:
                    msg = await conn.receive(timeout=10)
                    if msg.data[:1] == b"\x03":
                        status = msg.data[1:]
                assert WsApiClient.parse_error_data(status) == 4
    _run(main())


# -- lightkube -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def lk(kc: E2ECluster) -> Iterator[LkClient]:
    c = LkClient(config=KubeConfig.from_file(kc.cluster.kubeconfig), field_manager="crt-pyo")
    try:
        yield c
    finally:
        c.close()


def test_lightkube_verbs(kc: E2ECluster, lk: LkClient) -> None:
    ns = "crt-pyo-lk"
    lk.create(Namespace(metadata=ObjectMeta(name=ns)))
    try:
        meta = ObjectMeta(name="cm", labels={"client": "lk"}, resourceVersion="v1")
        made = lk.create(ConfigMap(metadata=meta, data={"a": "1"}), namespace=ns)
        assert made.metadata is not None and (made.metadata.resourceVersion or "").isdigit()
        assert lk.get(ConfigMap, "cm", namespace=ns).data == {"a": "1"}
        listed = lk.list(ConfigMap, namespace=ns, labels={"client": "lk"})
        assert [c.metadata.name for c in listed if c.metadata] == ["cm"]
        rv = listed.resourceVersion
        lk.patch(ConfigMap, "cm", {"data": {"b": "2"}}, namespace=ns, patch_type=PatchType.MERGE)
        cur = lk.get(ConfigMap, "cm", namespace=ns)
        cur.data = {"c": "3"}
        assert lk.replace(cur, namespace=ns).data == {"c": "3"}
        lk.delete(ConfigMap, "cm", namespace=ns)

        def events() -> list[tuple[str, Any]]:
            seen = []
            for typ, obj in lk.watch(ConfigMap, namespace=ns, labels={"client": "lk"}, resource_version=rv,
                                     server_timeout=20):
                seen.append((typ, obj.data))
                if typ == "DELETED":
                    break
            return seen
        assert _in_thread(events, WATCH_DEADLINE) == EXPECTED_EVENTS
        with pytest.raises(ApiError) as e:
            lk.get(ConfigMap, "cm", namespace=ns)
        assert e.value.status.code == 404
    finally:
        lk.delete(Namespace, ns)
    _gone(kc, ns)


def test_lightkube_exec(kc: E2ECluster, lk: LkClient) -> None:
    """stdin then v5's close: `cat` sees EOF and exits; a failing command's exit code; the async client."""
    r = lk.exec(POD, namespace="default", command=["cat"], stdin="hello\nworld\n", stdout=True, stderr=True,
                timeout=30)
    assert (r.exit_code, r.stdout, r.stderr) == (0, "hello\nworld\n", "")
    r = lk.exec(POD, namespace="default", command=["sh", "-c", "echo out; echo err >&2; exit 5"], stdout=True,
                stderr=True, timeout=30)
    assert (r.exit_code, r.stdout, r.stderr) == (5, "out\n", "err\n")

    async def main() -> Any:
        c = LkAsyncClient(config=KubeConfig.from_file(kc.cluster.kubeconfig))
        try:
            return await c.exec(POD, namespace="default", command=["cat"], stdin=b"async\n", stdout=True, timeout=30)
        finally:
            await c.close()
    r = _run(main())
    assert (r.exit_code, r.stdout) == (0, "async\n")


def test_lightkube_status_is_upstreams(lk: LkClient) -> None:
    """A 404 reads as the Status lightkube decodes (reason, code, details)."""
    started = time.monotonic()
    with pytest.raises(ApiError) as e:
        lk.get(ConfigMap, "no-such", namespace="default")
    st = e.value.status
    assert (st.code, st.reason, st.details.name if st.details else None) == (404, "NotFound", "no-such")
    assert time.monotonic() - started < 10
