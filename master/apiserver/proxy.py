"""Proxy of node subresources to the node agent's HTTP server: `pods/log`
now (exec, port-forward and nodes/proxy follow).

The agent's address is the Node's InternalIP and its
`status.daemonEndpoints.kubeletEndpoint.Port`.
"""
from __future__ import annotations

import httpx
from aiohttp import web

from apimachinery.kinds import lookup
from master.apiserver import errors
from master.apiserver.registry import Registry

PODS = lookup("", "v1", "pods")
NODES = lookup("", "v1", "nodes")
_LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes")


class NodeProxy:
    def __init__(self, registry: Registry):
        self.registry = registry
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None))

    async def close(self) -> None:
        await self._client.aclose()

    def _node_url(self, node_name: str) -> str:
        assert NODES is not None
        node = self.registry.get(NODES, None, node_name)
        status = node.get("status", {})
        port = status.get("daemonEndpoints", {}).get("kubeletEndpoint", {}).get("Port")
        ip = next((a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"), None)
        if not port or not ip:
            raise errors.bad_request(f"node {node_name} has no reachable agent endpoint")
        return f"http://{ip}:{port}"

    async def pod_log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
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
        node = pod.get("spec", {}).get("nodeName")
        if not node:
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: pod is not scheduled yet')
        url = f"{self._node_url(node)}/containerLogs/{namespace}/{name}/{container}"
        params = {k: request.query[k] for k in _LOG_PARAMS if k in request.query}
        req = self._client.build_request("GET", url, params=params)
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
