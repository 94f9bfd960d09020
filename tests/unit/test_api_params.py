"""Query parameters as upstream reads them, and creates from clients that send a resourceVersion
(issue 9, defect 6, the API server's side): kubernetes_asyncio sends booleans as Python spells
them (`stdout=True&stderr=False`) and `metadata.resourceVersion: "v1"` on a create.

Upstream converts every boolean query parameter with apimachinery's Convert_Slice_string_To_bool
("0" and "false" in any case are false, any other value true, absent false): these tests hold the
API server and the node proxy to that one rule.
"""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web

from apiserver_fixture import ServerThread
from master.apiserver import params


@pytest.mark.parametrize("value,expected", [
    (None, False), ("0", False), ("false", False), ("False", False), ("FALSE", False), ("fAlSe", False),
    ("1", True), ("true", True), ("True", True), ("TRUE", True), ("t", True), ("T", True), ("", True),
    ("yes", True), ("f", True), ("F", True),  # upstream: only "0" and "false" are false
])
def test_parse_bool_is_upstreams_query_conversion(value: str | None, expected: bool) -> None:
    assert params.parse_bool(value) is expected


def test_pretty_is_parsebool_and_ignored_when_it_does_not_parse() -> None:
    assert params.pretty({"pretty": "True"}) and params.pretty({"pretty": "1"})
    assert not params.pretty({"pretty": "x"}) and not params.pretty({"pretty": "false"}) and not params.pretty({})


def test_canonical_bools_keep_order_and_repeated_values() -> None:
    q = {"command": "sh", "stdout": "True", "stderr": "False", "tty": "0", "other": "x"}
    assert params.canonical_bools(q, ("command", "stdout", "stderr", "tty")) == [
        ("command", "sh"), ("stdout", "true"), ("stderr", "false"), ("tty", "false")]


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture()
def ns(http: httpx.Client) -> str:
    name = f"crt-params-{uuid.uuid4().hex[:6]}"
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    return name


@pytest.mark.parametrize("watch", ["true", "True", "TRUE", "1", "t"])
def test_watch_true_in_any_spelling_watches(http: httpx.Client, ns: str, watch: str) -> None:
    with http.stream("GET", f"/api/v1/namespaces/{ns}/configmaps",
                     params={"watch": watch, "timeoutSeconds": "1"}) as r:
        assert r.status_code == 200
        body = r.read()
    assert not body or b'"type"' in body  # a watch stream, not a ConfigMapList
    assert b"ConfigMapList" not in body


@pytest.mark.parametrize("watch", ["false", "False", "0"])
def test_watch_false_in_any_spelling_lists(http: httpx.Client, ns: str, watch: str) -> None:
    r = http.get(f"/api/v1/namespaces/{ns}/configmaps", params={"watch": watch})
    assert r.json()["kind"] == "ConfigMapList"


def test_allow_watch_bookmarks_true_as_python_spells_it(http: httpx.Client, ns: str) -> None:
    with http.stream("GET", f"/api/v1/namespaces/{ns}/configmaps",
                     params={"watch": "True", "sendInitialEvents": "True", "allowWatchBookmarks": "True",
                             "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1"}) as r:
        events = [json.loads(line) for line in r.iter_lines() if line]
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_orphan_dependents_true_as_python_spells_it(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    assert http.post(path, json={"metadata": {"name": "o"}}).status_code == 201
    r = http.delete(f"{path}/o", params={"orphanDependents": "True"})
    assert r.status_code == 200 and r.json()["metadata"]["finalizers"] == ["orphan"], r.text


def test_force_true_as_python_spells_it_takes_the_fields(http: httpx.Client, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps"
    apply = {"Content-Type": "application/apply-patch+yaml"}
    doc = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "f"}, "data": {"k": "a"}})
    assert http.patch(f"{path}/f", content=doc, headers=apply, params={"fieldManager": "one"}).status_code == 201
    doc2 = doc.replace('"a"', '"b"')
    assert http.patch(f"{path}/f", content=doc2, headers=apply, params={"fieldManager": "two"}).status_code == 409
    r = http.patch(f"{path}/f", content=doc2, headers=apply, params={"fieldManager": "two", "force": "True"})
    assert r.status_code == 200 and r.json()["data"] == {"k": "b"}, r.text


@pytest.mark.parametrize("rv", ["v1", "", "0", "-1", "abc", " 5", "1e3", "99999999999999999999999"])
def test_create_ignores_a_resource_version_that_is_not_a_number(http: httpx.Client, ns: str, rv: str) -> None:
    name = f"rv-{uuid.uuid4().hex[:6]}"
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps",
                  json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "resourceVersion": rv}})
    assert r.status_code == 201, r.text
    assert r.json()["metadata"]["resourceVersion"].isdigit()
    dry = http.post(f"/api/v1/namespaces/{ns}/configmaps", params={"dryRun": "All"},
                    json={"metadata": {"name": name + "-dry", "resourceVersion": rv}})
    assert dry.status_code == 201 and "resourceVersion" not in dry.json()["metadata"], dry.text


@pytest.mark.parametrize("rv", ["1", "42", "007"])
def test_create_refuses_a_numeric_resource_version(http: httpx.Client, ns: str, rv: str) -> None:
    r = http.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "n", "resourceVersion": rv}})
    assert r.status_code == 400
    assert r.json()["message"] == "resourceVersion should not be set on objects to be created"


class FakeAgent:
    """A node agent's HTTP port on loopback that records what the API server's proxy sends it."""

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, str]]] = []
        self.loop = asyncio.new_event_loop()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _exec(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(list(request.query.items()))
        ws = web.WebSocketResponse(protocols=("v4.channel.k8s.io",))
        await ws.prepare(request)
        await ws.send_bytes(b"\x01ok")
        await ws.close()
        return ws

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(list(request.query.items()))
        return web.Response(text="log line\n")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/exec/{ns}/{pod}/{container}", self._exec)
        app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self._logs)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    def __enter__(self) -> FakeAgent:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    def __exit__(self, *_exc: Any) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture()
def agent(http: httpx.Client, ns: str) -> Iterator[tuple[FakeAgent, str]]:
    node = f"crt-node-{uuid.uuid4().hex[:6]}"
    with FakeAgent() as fake:
        r = http.post("/api/v1/nodes", json={"metadata": {"name": node}})
        assert r.status_code == 201, r.text
        status = {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                  "daemonEndpoints": {"kubeletEndpoint": {"Port": fake.port}}}
        r = http.patch(f"/api/v1/nodes/{node}/status", json={"status": status},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        pod = {"metadata": {"name": "p"}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}}
        assert http.post(f"/api/v1/namespaces/{ns}/pods", json=pod).status_code == 201
        yield fake, ns
        http.delete(f"/api/v1/nodes/{node}")


def test_exec_passes_stdout_true_stderr_false_on_as_read(srv: ServerThread, agent: tuple[FakeAgent, str]) -> None:
    fake, ns = agent

    async def run() -> bytes:
        async with aiohttp.ClientSession() as s:
            url = f"{srv.url}/api/v1/namespaces/{ns}/pods/p/exec"
            q = [("command", "echo"), ("command", "hi"), ("stdin", "False"), ("stdout", "True"), ("stderr", "False"),
                 ("tty", "False")]
            async with s.ws_connect(url, params=q, protocols=("v4.channel.k8s.io",)) as ws:
                msg = await ws.receive(timeout=10)
                return bytes(msg.data)
    assert asyncio.run(run()) == b"\x01ok"
    assert fake.seen == [[("command", "echo"), ("command", "hi"), ("stdin", "false"), ("stdout", "true"),
                          ("stderr", "false"), ("tty", "false")]]


def test_logs_pass_follow_and_timestamps_on_as_read(http: httpx.Client, agent: tuple[FakeAgent, str]) -> None:
    fake, ns = agent
    r = http.get(f"/api/v1/namespaces/{ns}/pods/p/log", params={"follow": "False", "timestamps": "True",
                                                                "tailLines": "3"})
    assert r.status_code == 200 and r.text == "log line\n"
    assert fake.seen == [[("follow", "false"), ("timestamps", "true"), ("tailLines", "3")]]
