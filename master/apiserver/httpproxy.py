"""The HTTP proxy subresources, as upstream's API server serves them:

    /api/v1/namespaces/NS/services/[https:]NAME[:PORT]/proxy/PATH   a ready endpoint of the service
    /api/v1/namespaces/NS/pods/[https:]NAME[:PORT]/proxy/PATH       the pod's IP
    /api/v1/nodes/[https:]NAME[:PORT]/proxy/PATH                    the node agent (or another port)

Any method; the request (query, headers but credentials and hop-by-hop
ones, streamed body) goes to the backend and its answer (status, headers,
streamed body) comes back, with `Location` and HTML links rewritten to go
through the proxy again (`linkrewrite`) and CORS headers dropped.  WebSocket
upgrades are relayed.  The backend unreachable: 503 "error trying to reach
service".  `.../proxy` without a path redirects GET/HEAD to `.../proxy/`.

Neighbours: `paths` splits the URL, `proxylocation` picks the backend,
`proxy.NodeProxy` owns an HTTPProxy and `app` routes the `proxy` subresource
to it.  Pod IPs are addresses inside network namespaces Coracle's agents
made; service endpoints must name such a pod (upstream's check).
"""
from __future__ import annotations

import asyncio
import codecs
import contextlib
import gzip
import os
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import aiohttp
import httpx
from aiohttp import WSMsgType, web

from master.apiserver import errors, linkrewrite, paths
from master.apiserver.proxylocation import Location, ObjectGetter, locate

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade"))
_NOT_FORWARDED = frozenset(("host", "authorization", "content-length")) | HOP_BY_HOP
_CORS = frozenset(("access-control-allow-credentials", "access-control-allow-headers",
                   "access-control-allow-methods", "access-control-allow-origin"))
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def _reach_error(e: Exception, host: str) -> errors.APIError:
    """503 as upstream words a failed dial (`dial tcp IP:PORT: connect: connection refused`)."""
    cause: BaseException | None = e
    while cause is not None and not (isinstance(cause, OSError) and cause.errno):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OSError) and cause.errno:
        text = os.strerror(cause.errno)  # asyncio's own strerror ("Connect call failed ...") says less
        why = f"dial tcp {host}: connect: {text[0].lower()}{text[1:]}"
    elif isinstance(e, httpx.TimeoutException):
        why = f"dial tcp {host}: i/o timeout"
    else:
        why = str(e) or type(e).__name__
    return errors.APIError(503, "ServiceUnavailable", f"error trying to reach service: {why}")


class HTTPProxy:
    def __init__(self, objects: ObjectGetter, call: Callable[..., Awaitable[Any]] | None = None):
        self.objects = objects
        self.call = call  # runs the object reads (APIServer._call: the store pool on etcd), else inline
        # never follows redirects or HTTP_PROXY from the environment; backends are addressed by IP, so
        # their certificates cannot be checked (upstream's proxy transport does not either)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None), verify=False, trust_env=False,
                                         follow_redirects=False)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        await self._client.aclose()
        if self._session is not None:
            await self._session.close()

    async def serve(self, request: web.Request, t: paths.Target) -> web.StreamResponse:
        if request.method not in METHODS:
            raise errors.method_not_allowed(f"{request.method} is not supported by the proxy")
        loc = await self.call(locate, self.objects, t) if self.call is not None else locate(self.objects, t)
        rest = t.proxy_path
        if request.path.endswith("/") and not rest.endswith("/"):
            rest += "/"
        raw_query = request.rel_url.raw_query_string  # as sent: re-encoding could change what it means
        if not rest and request.method in ("GET", "HEAD"):
            query = f"?{raw_query}" if raw_query else ""
            return web.Response(status=301, headers={"Location": f"{request.rel_url.raw_path}/{query}"})
        prefix = t.res.path(t.namespace, t.name) + "/proxy"  # what links on the backend get put in front
        url = f"{loc.scheme}://{loc.host}{quote(rest or '/', safe=_PATH_SAFE)}"
        if raw_query:
            url += f"?{raw_query}"
        headers = _forward_headers(request, prefix + quote(rest, safe=_PATH_SAFE))
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, url, loc)
        body = request.content.iter_chunked(64 * 1024) if request.can_read_body else None
        if body is not None and "Content-Length" in request.headers:
            headers.append(("Content-Length", request.headers["Content-Length"]))
        try:
            upstream = await self._client.send(self._client.build_request(request.method, url, headers=headers,
                                                                          content=body), stream=True)
        except httpx.TransportError as e:
            raise _reach_error(e, loc.host) from None
        try:
            return await self._answer(request, upstream, prefix, loc)
        finally:
            await upstream.aclose()

    async def _answer(self, request: web.Request, upstream: httpx.Response, prefix: str,
                      loc: Location) -> web.StreamResponse:
        request_host = request.headers.get("Host", "")
        resp = web.StreamResponse(status=upstream.status_code, reason=upstream.reason_phrase or None)
        for k, v in upstream.headers.multi_items():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk in _CORS:
                continue
            if lk == "location":
                v = linkrewrite.rewrite_url(v, prefix, loc.host, request_host)
            resp.headers.add(k, v)
        ctype = upstream.headers.get("content-type", "").split(";")[0].strip().lower()
        encoding = upstream.headers.get("content-encoding", "").strip().lower()
        if ctype == "text/html" and "location" not in upstream.headers and encoding in ("", "identity", "gzip") \
                and request.method != "HEAD":
            page = await upstream.aread()  # decoded by httpx
            charset = _known_charset(upstream.charset_encoding)
            text = linkrewrite.rewrite_html(page.decode(charset, "surrogateescape"), prefix, loc.host, request_host)
            out = text.encode(charset, "surrogateescape")
            if encoding == "gzip":
                out = gzip.compress(out)
            resp.headers["Content-Length"] = str(len(out))
            await resp.prepare(request)
            await resp.write(out)
            return resp
        await resp.prepare(request)
        if request.method != "HEAD":
            async for chunk in upstream.aiter_raw():
                await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def _websocket(self, request: web.Request, url: str, loc: Location) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession(trust_env=False)
        try:
            upstream = await self._session.ws_connect(url.replace("http", "ws", 1), ssl=False, max_msg_size=0,
                                                      protocols=offered_protocols(request))
        except aiohttp.WSServerHandshakeError as e:
            code = e.status if e.status >= 400 else 502
            raise errors.APIError(code, "", f"the backend refused the upgrade: {e.status} {e.message}") from None
        except (aiohttp.ClientError, OSError) as e:
            raise _reach_error(e, loc.host) from None
        ws = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else (), max_msg_size=0)
        try:
            await ws.prepare(request)
            await relay(ws, upstream)
        finally:
            await upstream.close()
        return ws


def _known_charset(name: str | None) -> str:
    try:
        return codecs.lookup(name).name if name else "utf-8"
    except LookupError:
        return "utf-8"  # surrogateescape carries the bytes through unchanged either way


def offered_protocols(request: web.Request) -> list[str]:
    return [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]


async def relay(a: web.WebSocketResponse, b: aiohttp.ClientWebSocketResponse) -> None:
    """Copy messages both ways until either side closes, then close the other."""
    async def copy(src: Any, dst: Any) -> None:
        async for msg in src:
            if msg.type is WSMsgType.BINARY:
                await dst.send_bytes(msg.data)
            elif msg.type is WSMsgType.TEXT:
                await dst.send_str(msg.data)
            else:
                break

    tasks = [asyncio.create_task(copy(a, b)), asyncio.create_task(copy(b, a))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await b.close()
        with contextlib.suppress(Exception):
            await a.close()


def _forward_headers(request: web.Request, forwarded_uri: str) -> list[tuple[str, str]]:
    """The client's headers less hop-by-hop ones (and those its Connection header names), its
    credentials and impersonation, plus X-Forwarded-For and X-Forwarded-Uri."""
    listed = {h.strip().lower() for h in request.headers.get("Connection", "").split(",")}
    out = [(k, v) for k, v in request.headers.items()
           if k.lower() not in _NOT_FORWARDED and k.lower() not in listed and not k.lower().startswith("impersonate-")
           and k.lower() not in ("x-forwarded-for", "x-forwarded-uri")]
    prior = request.headers.get("X-Forwarded-For")
    client = request.remote or ""
    out.append(("X-Forwarded-For", f"{prior}, {client}" if prior else client))
    out.append(("X-Forwarded-Uri", forwarded_uri))
    return out
