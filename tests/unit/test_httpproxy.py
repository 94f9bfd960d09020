"""The proxy subresources (`services|pods|nodes/proxy`): path parsing, where
a request goes (with a fake object getter), link rewriting, and forwarding
through a real API server on loopback to a local aiohttp server standing in
for the node agent or a service's pod (both on 127.0.0.1)."""
from __future__ import annotations

import asyncio
import gzip
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import aiohttp
import httpx
import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, pod, unique  # noqa: E402

from apimachinery.kinds import ResourceInfo  # noqa: E402
from master.apiserver import errors, linkrewrite, paths, proxylocation  # noqa: E402
from master.apiserver.proxylocation import Location  # noqa: E402


# -- paths ---------------------------------------------------------------------

@pytest.mark.parametrize("path,name,rest", [
    ("/api/v1/namespaces/d/services/web/proxy", "web", ""),
    ("/api/v1/namespaces/d/services/web:80/proxy/a/b", "web:80", "/a/b"),
    ("/api/v1/namespaces/d/services/https:web:metrics/proxy/x", "https:web:metrics", "/x"),
    ("/api/v1/namespaces/d/pods/p1:8080/proxy/index.html", "p1:8080", "/index.html"),
    ("/api/v1/nodes/n1/proxy/healthz", "n1", "/healthz"),
    ("/api/v1/nodes/n1:10250/proxy/a//b", "n1:10250", "/a/b"),
])
def test_proxy_paths_parse(path: str, name: str, rest: str) -> None:
    t = paths.parse(path)
    assert (t.name, t.subresource, t.proxy_path) == (name, "proxy", rest)


def test_only_proxy_subresources_take_a_path() -> None:
    for bad in ("/api/v1/namespaces/d/pods/p/log/x", "/api/v1/namespaces/d/configmaps/c/proxy",
                "/api/v1/namespaces/d/services/s/status/x", "/apis/apps/v1/namespaces/d/deployments/x/proxy/y"):
        with pytest.raises(paths.UnknownPath):
            paths.parse(bad)
    assert paths.parse("/api/v1/namespaces/d/serviceaccounts/sa/token").subresource == "token"


@pytest.mark.parametrize("id_,want", [
    ("web", ("", "web", "")), ("web:80", ("", "web", "80")), ("web:http", ("", "web", "http")),
    ("https:web:443", ("https", "web", "443")), ("http:web:", ("http", "web", "")),
    ("https:web", ("", "https", "web")),  # upstream reads two parts as name:port
    ("ftp:web:21", None), (":80", None), ("a:b:c:d", None), ("", None),
])
def test_split_scheme_name_port(id_: str, want: tuple[str, str, str] | None) -> None:
    assert paths.split_scheme_name_port(id_) == want


# -- locations -----------------------------------------------------------------

class Objects:
    """A fake registry: objects by (plural, namespace, name)."""

    def __init__(self, *objs: tuple[str, str | None, dict[str, Any]]):
        self.objs = {(plural, ns, o["metadata"]["name"]): o for plural, ns, o in objs}

    def get(self, res: ResourceInfo, ns: str | None, name: str) -> dict[str, Any]:
        try:
            return self.objs[(res.plural, ns, name)]
        except KeyError:
            raise errors.not_found(res, name) from None


def running(name: str, ip: str, uid: str = "u", ports: list[int] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": "main", "image": "busybox"}
    if ports:
        c["ports"] = [{"containerPort": p} for p in ports]
    return {"metadata": {"name": name, "uid": uid}, "spec": {"containers": [c]},
            "status": {"podIP": ip, "podIPs": [{"ip": ip}]}}


def svc(name: str, *ports: tuple[str, int]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"ports": [{"name": n, "port": p} for n, p in ports]}}


def eps(name: str, *subsets: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "subsets": list(subsets)}


def addr(ip: str, pod_name: str, ns: str = "d") -> dict[str, Any]:
    return {"ip": ip, "targetRef": {"kind": "Pod", "namespace": ns, "name": pod_name}}


def status_of(fn: Any) -> tuple[int, str]:
    with pytest.raises(errors.APIError) as e:
        fn()
    return e.value.code, e.value.message


def test_service_location_maps_port_numbers_to_names_and_picks_a_pod_address() -> None:
    o = Objects(("services", "d", svc("web", ("http", 80), ("metrics", 9090))),
                ("endpoints", "d", eps("web", {"addresses": [addr("10.1.0.5", "a")],
                                               "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100}]})),
                ("pods", "d", running("a", "10.1.0.5")))
    assert proxylocation.service_location(o, "d", "web:80") == Location("http", "10.1.0.5:8080")
    assert proxylocation.service_location(o, "d", "https:web:metrics") == Location("https", "10.1.0.5:9100")
    assert status_of(lambda: proxylocation.service_location(o, "d", "web:81")) == (
        503, 'no service port 81 found for service "web"')
    assert status_of(lambda: proxylocation.service_location(o, "d", "web")) == (  # no unnamed port
        503, 'no endpoints available for service "web"')


def test_service_without_ready_pod_endpoints_is_503_and_missing_objects_404() -> None:
    o = Objects(("services", "d", svc("web", ("", 80))), ("endpoints", "d", eps("web")),
                ("services", "d", svc("odd", ("", 80))),
                ("endpoints", "d", eps("odd", {"notReadyAddresses": [addr("10.1.0.6", "b")], "ports": [{"port": 80}]},
                                       {"addresses": [{"ip": "10.1.0.7"}, addr("10.1.0.8", "c"), addr("10.1.0.9", "a")],
                                        "ports": [{"port": 80}]})),
                ("pods", "d", running("a", "10.1.0.5")), ("pods", "d", running("b", "10.1.0.6")))
    assert status_of(lambda: proxylocation.service_location(o, "d", "web:80")) == (
        503, 'no endpoints available for service "web"')
    # not ready, no targetRef, a pod that does not exist, a pod whose IP differs: none qualifies
    assert status_of(lambda: proxylocation.service_location(o, "d", "odd")) == (
        503, 'no endpoints available for service "odd"')
    assert status_of(lambda: proxylocation.service_location(o, "d", "none:80")) == (404, 'services "none" not found')
    assert status_of(lambda: proxylocation.service_location(o, "d", "none")) == (404, 'endpoints "none" not found')
    assert status_of(lambda: proxylocation.service_location(o, "d", "a:b:c:d")) == (400, 'invalid service request "a:b:c:d"')


def test_pod_location() -> None:
    o = Objects(("pods", "d", running("a", "10.1.0.5", ports=[8080, 9090])), ("pods", "d", running("b", "10.1.0.6")),
                ("pods", "d", running("lo", "127.0.0.1")), ("pods", "d", running("new", "")),
                ("pods", "d", running("v6", "fd00::5")))
    assert proxylocation.pod_location(o, "d", "a") == Location("http", "10.1.0.5:8080")
    assert proxylocation.pod_location(o, "d", "https:a:9443") == Location("https", "10.1.0.5:9443")
    assert proxylocation.pod_location(o, "d", "b") == Location("http", "10.1.0.6")
    assert proxylocation.pod_location(o, "d", "v6:80") == Location("http", "[fd00::5]:80")
    assert status_of(lambda: proxylocation.pod_location(o, "d", "lo:80")) == (400, "address not allowed")
    assert status_of(lambda: proxylocation.pod_location(o, "d", "new:80")) == (400, "address not allowed")
    assert status_of(lambda: proxylocation.pod_location(o, "d", "gone")) == (404, 'pods "gone" not found')


def agent_node(name: str, ip: str, port: int) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                                                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


def test_node_location() -> None:
    o = Objects(("nodes", None, agent_node("n1", "127.0.0.1", 10250)), ("nodes", None, agent_node("n2", "10.0.0.2", 10250)),
                ("nodes", None, {"metadata": {"name": "bare"}}))
    assert proxylocation.node_location(o, "n1") == Location("http", "127.0.0.1:10250")
    assert proxylocation.node_location(o, "n1:10250") == Location("http", "127.0.0.1:10250")
    assert proxylocation.node_location(o, "https:n2:9100") == Location("https", "10.0.0.2:9100")
    assert status_of(lambda: proxylocation.node_location(o, "n1:22")) == (400, "address not allowed")
    assert status_of(lambda: proxylocation.node_location(o, "n1:ssh")) == (400, 'invalid node request "n1:ssh"')
    assert status_of(lambda: proxylocation.node_location(o, "bare"))[0] == 400
    assert status_of(lambda: proxylocation.node_location(o, "n9")) == (404, 'nodes "n9" not found')


# -- link rewriting ------------------------------------------------------------

P = "/api/v1/namespaces/d/services/web/proxy"


@pytest.mark.parametrize("url,want", [
    ("/login", f"{P}/login"), ("/a/b/?x=1#f", f"{P}/a/b/?x=1#f"), ("http://10.1.0.5:8080/x", f"{P}/x"),
    ("http://127.0.0.1:6443/x", f"{P}/x"), ("rel/x", "rel/x"), ("https://example.com/x", "https://example.com/x"),
    (f"{P}/already", f"{P}/already"), ("/a/../b", f"{P}/b"),
])
def test_rewrite_url(url: str, want: str) -> None:
    assert linkrewrite.rewrite_url(url, P, "10.1.0.5:8080", "127.0.0.1:6443") == want


def test_rewrite_html_touches_only_url_attributes() -> None:
    doc = ('<!DOCTYPE html><html><head><link rel=stylesheet href="/s.css"><script src="/a.js">if (a<b) {}</script>'
           '</head><body><a href="/x?a=1&amp;b=2" class=k>t &amp; &#39;u</a><img src=rel.png alt="/x">'
           '<form action="http://other/y"></form><!-- <a href="/c"> --></body></html>')
    out = linkrewrite.rewrite_html(doc, P, "10.1.0.5:8080", "h")
    assert out == ('<!DOCTYPE html><html><head><link rel="stylesheet" href="' + P + '/s.css"><script src="' + P +
                   '/a.js">if (a<b) {}</script></head><body><a href="' + P + '/x?a=1&amp;b=2" class="k">t &amp; &#39;u'
                   '</a><img src=rel.png alt="/x"><form action="http://other/y"></form><!-- <a href="/c"> -->'
                   '</body></html>')


# -- forwarding through the API server ------------------------------------------

class Backend:
    """An aiohttp server on 127.0.0.1 run on the API server's loop: the pod or agent being proxied to."""

    def __init__(self, srv: ServerThread):
        self.srv = srv
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/echo/{tail:.*}", self.echo)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/page", self.page)
        app.router.add_get("/gzpage", self.gzpage)
        app.router.add_get("/cors", self.cors)
        app.router.add_get("/stream", self.stream)
        app.router.add_get("/ws", self.ws)
        app.router.add_get("/status/{code}", self.status)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def echo(self, r: web.Request) -> web.Response:
        body = await r.read()
        return web.json_response({"method": r.method, "path": r.path, "query": r.rel_url.raw_query_string,
                                  "headers": dict(r.headers), "body": body.decode()}, headers={"X-Backend": "1"})

    async def redirect(self, r: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": f"http://127.0.0.1:{self.port}/target?x=1"})

    async def page(self, r: web.Request) -> web.Response:
        return web.Response(text='<a href="/next">n</a>', content_type="text/html")

    async def cors(self, r: web.Request) -> web.Response:
        return web.Response(text="c", headers={"Access-Control-Allow-Origin": "*", "X-Kept": "yes"})

    async def status(self, r: web.Request) -> web.Response:
        return web.Response(status=int(r.match_info["code"]), text="s")

    async def gzpage(self, r: web.Request) -> web.Response:
        return web.Response(body=gzip.compress(b'<img src="/i.png">'), headers={
            "Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"})

    async def stream(self, r: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(r)
        for i in range(3):
            await resp.write(f"chunk{i}\n".encode())
            await asyncio.sleep(0.01)
        return resp

    async def ws(self, r: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("echo.v1",))
        await ws.prepare(r)
        async for msg in ws:
            await ws.send_str("echo:" + msg.data)
        return ws

    def __enter__(self) -> Backend:
        self.srv.call(self._start())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            self.srv.call(self.runner.cleanup())


@pytest.fixture(scope="module")
def backend(srv: ServerThread) -> Iterator[Backend]:
    with Backend(srv) as b:
        yield b


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture(scope="module")
def agent(http: httpx.Client, backend: Backend) -> Iterator[str]:
    """A Node whose agent endpoint is the backend."""
    name = unique("crt-pxn")
    assert http.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
    r = http.patch(f"/api/v1/nodes/{name}/status", headers={"Content-Type": "application/merge-patch+json"},
                   content=json.dumps({"status": agent_node(name, "127.0.0.1", backend.port)["status"]}))
    assert r.status_code == 200, r.text
    yield name
    http.delete(f"/api/v1/nodes/{name}")


def test_forwards_method_path_query_headers_and_body(http: httpx.Client, agent: str) -> None:
    base = f"/api/v1/nodes/{agent}/proxy"
    r = http.post(f"{base}/echo/a%20b/c/?q=1&r=x%2Fy", content=b"payload", headers={
        "Authorization": "Bearer secret", "Impersonate-User": "root", "X-Custom": "v", "Connection": "X-Drop",
        "X-Drop": "1", "Content-Type": "text/plain"})
    assert r.status_code == 200 and r.headers["X-Backend"] == "1"
    got = r.json()
    assert (got["method"], got["path"], got["query"], got["body"]) == ("POST", "/echo/a b/c/", "q=1&r=x%2Fy", "payload")
    h = {k.lower(): v for k, v in got["headers"].items()}
    assert h["x-custom"] == "v" and h["content-type"] == "text/plain"
    assert not {"authorization", "impersonate-user", "x-drop"} & set(h)
    assert h["x-forwarded-for"] == "127.0.0.1" and h["x-forwarded-uri"] == f"{base}/echo/a%20b/c/"
    for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
        assert http.request(method, f"{base}/echo/m").json()["method"] == method
    head = http.head(f"{base}/echo/h")
    assert head.status_code == 200 and head.content == b""


def test_status_redirects_cors_and_streaming(http: httpx.Client, agent: str) -> None:
    base = f"/api/v1/nodes/{agent}/proxy"
    assert http.get(f"{base}/status/418").status_code == 418
    r = http.get(f"{base}/redirect")
    assert r.status_code == 302 and r.headers["Location"] == f"{base}/target?x=1"
    r = http.get(f"{base}/cors")
    assert "access-control-allow-origin" not in r.headers and r.headers["X-Kept"] == "yes"
    with http.stream("GET", f"{base}/stream") as s:
        assert s.status_code == 200 and b"".join(s.iter_raw()) == b"chunk0\nchunk1\nchunk2\n"
    r = http.get(base, params={"a": "1"})  # the proxy root: redirected to carry a slash
    assert r.status_code == 301 and r.headers["Location"] == f"{base}/?a=1"


def test_html_links_are_rewritten_also_when_gzipped(http: httpx.Client, agent: str) -> None:
    base = f"/api/v1/nodes/{agent}/proxy"
    assert http.get(f"{base}/page").text == f'<a href="{base}/next">n</a>'
    r = http.get(f"{base}/gzpage")
    assert r.headers["Content-Encoding"] == "gzip" and r.text == f'<img src="{base}/i.png">'


def test_websocket_upgrade_is_relayed(srv: ServerThread, agent: str) -> None:
    async def talk() -> tuple[str, str | None]:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{srv.url}/api/v1/nodes/{agent}/proxy/ws", protocols=("echo.v1",)) as ws:
                await ws.send_str("hi")
                msg = await ws.receive(timeout=5)
                return msg.data, ws.protocol
    assert asyncio.run(talk()) == ("echo:hi", "echo.v1")


def test_unreachable_backend_is_503(http: httpx.Client, backend: Backend) -> None:
    name = unique("crt-pxd")
    assert http.post("/api/v1/nodes", json={"metadata": {"name": name}}).status_code == 201
    dead = backend.port + 1 if backend.port < 65535 else backend.port - 1
    while _listening(dead):
        dead += 1
    http.patch(f"/api/v1/nodes/{name}/status", headers={"Content-Type": "application/merge-patch+json"},
               content=json.dumps({"status": agent_node(name, "127.0.0.1", dead)["status"]}))
    r = http.get(f"/api/v1/nodes/{name}/proxy/healthz")
    assert r.status_code == 503 and r.json()["reason"] == "ServiceUnavailable"
    assert r.json()["message"] == f"error trying to reach service: dial tcp 127.0.0.1:{dead}: connect: connection refused"
    http.delete(f"/api/v1/nodes/{name}")


def _listening(port: int) -> bool:
    import socket
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_service_proxy_reaches_a_ready_pod_endpoint(http: httpx.Client, backend: Backend) -> None:
    ns = unique("crt-pxs")
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    base = f"/api/v1/namespaces/{ns}"
    p = pod("web-0")
    assert http.post(f"{base}/pods", json=p).status_code == 201
    # stands in for the agent's status write: the pod "runs" at 127.0.0.1 (where the backend listens)
    r = http.patch(f"{base}/pods/web-0/status", headers={"Content-Type": "application/merge-patch+json"},
                   content=json.dumps({"status": {"podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}}))
    assert r.status_code == 200, r.text
    svc_body = {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80}]}}
    assert http.post(f"{base}/services", json=svc_body).status_code == 201
    assert http.post(f"{base}/endpoints", json={"metadata": {"name": "web"}}).status_code == 201
    r = http.get(f"{base}/services/web:80/proxy/echo/x")
    assert r.status_code == 503 and r.json()["message"] == 'no endpoints available for service "web"'
    subsets = [{"addresses": [{"ip": "127.0.0.1", "targetRef": {"kind": "Pod", "namespace": ns, "name": "web-0"}}],
                "ports": [{"name": "http", "port": backend.port}]}]
    r = http.patch(f"{base}/endpoints/web", headers={"Content-Type": "application/merge-patch+json"},
                   content=json.dumps({"subsets": subsets}))
    assert r.status_code == 200, r.text
    for via in ("web:80", "web:http", "http:web:http"):
        r = http.get(f"{base}/services/{via}/proxy/echo/y", params={"z": "1"})
        assert r.status_code == 200 and r.json()["path"] == "/echo/y" and r.json()["query"] == "z=1"
    assert http.get(f"{base}/services/nope:80/proxy/").status_code == 404
    # pods/proxy to a loopback pod IP is refused, as upstream refuses non-unicast addresses
    r = http.get(f"{base}/pods/web-0:{backend.port}/proxy/echo/")
    assert r.status_code == 400 and r.json()["message"] == "address not allowed"
    assert http.delete(f"/api/v1/namespaces/{ns}").status_code == 200


def test_proxy_subresources_in_discovery(http: httpx.Client) -> None:
    res = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    for name, kind in (("pods/proxy", "PodProxyOptions"), ("services/proxy", "ServiceProxyOptions"),
                       ("nodes/proxy", "NodeProxyOptions")):
        assert res[name]["kind"] == kind
        assert res[name]["verbs"] == ["create", "delete", "get", "patch", "update"]


def test_doubled_slashes_keep_the_forwarded_prefix(http: httpx.Client, agent: str) -> None:
    got = http.get(f"/api/v1/nodes/{agent}/proxy/echo//x").json()
    assert got["path"] == "/echo/x"
    assert got["headers"]["X-Forwarded-Uri"] == f"/api/v1/nodes/{agent}/proxy/echo/x"
