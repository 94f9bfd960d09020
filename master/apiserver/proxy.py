"""Proxy of node subresources to the node agent's HTTP server: `pods/log`
(a streamed GET), and `pods/exec`, `pods/attach`, `pods/portforward`
(WebSockets relayed message by message; the agent speaks the protocols,
see nodeagent.server.exec and nodeagent.server.portforward).  The HTTP proxy subresources
(`services|pods|nodes/proxy`) are `httpproxy`'s, reached as `NodeProxy.http`.

The agent's address is the Node's InternalIP and its
`status.daemonEndpoints.kubeletEndpoint.Port`.  Only the WebSocket
upgrades are served: kubectl 1.32 tries them first (v5.channel.k8s.io for
exec, SPDY/3.1+portforward.k8s.io for port-forward); its fallback to raw
SPDY gets a 400.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, TypeVar

import aiohttp
import httpx
from aiohttp import web

from apimachinery.kinds import lookup
from master.apiserver import errors
from master.apiserver.params import canonical_bools
from master.apiserver.httpproxy import HTTPProxy, offered_protocols, relay
from master.apiserver.proxylocation import agent_endpoint
from master.apiserver.registry import Registry

T = TypeVar("T")
Call = Callable[..., Awaitable[Any]]  # APIServer._call: inline on SQLite, the store pool on etcd


async def _inline(fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
_LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")
_STREAM_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")


def is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


class NodeProxy:
    def __init__(self, registry: Registry, call: Call = _inline):
        self.registry = registry
        self.call = call  # reads of the store go through it: they would block the loop on etcd
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None), trust_env=False)
        self._session: aiohttp.ClientSession | None = None
        self.http = HTTPProxy(registry, call)  # services/proxy, pods/proxy, nodes/proxy

    async def close(self) -> None:
        await self._client.aclose()
        if self._session is not None:
            await self._session.close()
        await self.http.close()

    def _node_url(self, node_name: str) -> str:
        assert NODES is not None
        ip, port = agent_endpoint(self.registry.get(NODES, None, node_name))
        return f"http://{ip}:{port}"

    def _pod_container(self, request: web.Request, namespace: str, name: str) -> tuple[dict, str]:
        """The pod and the container the request names (the only one when it names none)."""
        assert PODS is not None
        pod = self.registry.get(PODS, namespace, name)
        names = [c["name"] for c in pod.get("spec", {}).get("containers") or []]
        container = request.query.get("container")
        if not container:
            if len(names) != 1:
                raise errors.bad_request(f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]")
            container = names[0]
        elif container not in names and container not in [c["name"] for c in pod["spec"].get("initContainers") or []]:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        return pod, container

    def _pod_node(self, pod: dict, what: str) -> str:
        node = pod.get("spec", {}).get("nodeName")
        if not node:
            raise errors.bad_request(f'{what} in pod "{pod["metadata"]["name"]}" is waiting to start: pod is not scheduled yet')
        return node

    async def pod_log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        pod, container = await self.call(self._pod_container, request, namespace, name)
        node = self._pod_node(pod, f'container "{container}"')
        url = f"{await self.call(self._node_url, node)}/containerLogs/{namespace}/{name}/{container}"
        req = self._client.build_request("GET", url, params=tuple(canonical_bools(request.query, _LOG_PARAMS)))
        try:
            upstream = await self._client.send(req, stream=True)
        except httpx.HTTPError as e:
            raise errors.internal(f"cannot reach the agent on node {node}: {e}") from None
        try:
            if upstream.status_code != 200:
                body = await upstream.aread()
                return web.Response(body=body, status=upstream.status_code,
                                    content_type=upstream.headers.get("content-type", "application/json").split(";")[0])
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await resp.prepare(request)
            async for chunk in upstream.aiter_raw():
                await resp.write(chunk)
            return resp
        finally:
            await upstream.aclose()

    async def pod_stream(self, request: web.Request, namespace: str, name: str, sub: str) -> web.StreamResponse:
        """exec, attach or portforward: check the pod, then relay kubectl's WebSocket to the agent's."""
        if not is_websocket(request):
            raise errors.bad_request(f"Upgrade request required: pods/{sub} is served over WebSocket only")
        assert PODS is not None
        if sub == "portforward":
            pod = await self.call(self.registry.get, PODS, namespace, name)
            path = f"/portForward/{namespace}/{name}"
            params: list[tuple[str, str]] = []
        else:
            pod, container = await self.call(self._pod_container, request, namespace, name)
            path = f"/{sub}/{namespace}/{name}/{container}"
            params = canonical_bools(request.query, _STREAM_PARAMS)  # the agent reads the booleans we read
        node = self._pod_node(pod, "container")
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            raise errors.bad_request(f"cannot {sub} into a container in a completed pod; current phase is "
                                     f"{pod['status']['phase']}")
        if self._session is None:
            self._session = aiohttp.ClientSession(trust_env=False)
        url = f"{(await self.call(self._node_url, node)).replace('http://', 'ws://', 1)}{path}"
        try:
            upstream = await self._session.ws_connect(url, params=params, protocols=offered_protocols(request),
                                                      max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as e:
            raise errors.bad_request(f"the agent on node {node} refused pods/{sub}: {e.status} {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise errors.internal(f"cannot reach the agent on node {node}: {e}") from None
        ws = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), max_msg_size=0)
        try:
            await ws.prepare(request)
            await relay(ws, upstream)
        finally:
            await upstream.close()
        return ws
