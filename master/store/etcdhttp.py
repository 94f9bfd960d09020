"""The wire to etcd v3: its JSON gRPC gateway (`/v3/kv/*`, `/v3/watch`),
part of etcd itself since 3.3, spoken with httpx.

Why not a client library: `etcd3` is unmaintained and pins old grpc and
protobuf; the maintained gRPC clients (`etcd-sdk-python`, `aetcd`) bring
grpcio and generated stubs, and `aetcd` is asyncio-only while the `Store`
contract is synchronous. The gateway is versioned with etcd, needs no stubs,
and httpx is already ours: one keep-alive pool, a few hundred microseconds of
client work per call.

This module knows the encoding only (base64 keys and values, int64 as
strings, omitted zero fields) and endpoint fail-over; what the calls mean
is `master.store.etcd`'s business.

Errors::

    GatewayError           a non-2xx answer: .code (gRPC code), .message
    httpx.TransportError   no endpoint answered
"""
from __future__ import annotations

import base64
import json
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import httpx

log = logging.getLogger(__name__)

ERR_COMPACTED = "required revision has been compacted"
ERR_FUTURE = "required revision is a future revision"


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client: building one per httpx.Client costs
    tens of milliseconds, and watches open a client each."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


class GatewayError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def range_end(prefix: bytes) -> bytes:
    """etcd's end of the range of keys with the prefix: the prefix with its
    last byte below 0xff incremented; b"\\0" (every key) when there is none."""
    p = bytearray(prefix)
    while p:
        if p[-1] < 0xFF:
            p[-1] += 1
            return bytes(p)
        p.pop()
    return b"\0"


def parse_endpoints(hosts: str) -> list[str]:
    """`127.0.0.1:2379,10.0.0.2:2379` (schemes optional) -> base URLs."""
    out = []
    for h in hosts.split(","):
        h = h.strip()
        if h:
            out.append(h if "://" in h else f"http://{h}")
    if not out:
        raise ValueError("etcd store URL names no endpoint")
    return out


class Gateway:
    """Synchronous calls to one of several endpoints; thread-safe. A call
    moves to the next endpoint when the current one refuses connections
    (the request never left, so even writes are safe to resend); other
    transport errors are raised, as a write may have landed."""

    def __init__(self, endpoints: list[str], timeout: float = 10.0) -> None:
        self.endpoints = endpoints
        self._current = 0
        self._timeout = timeout
        self._lock = threading.Lock()
        # One keep-alive client per thread: httpx's sync pool, shared by many
        # threads, was seen handing one socket to two of them (EBADF).
        self._local = threading.local()
        self._clients: list[httpx.Client] = []

    def _http(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=self._timeout, limits=httpx.Limits(max_connections=2),
                                  verify=_tls_context())
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST body to /v3/<path>; the decoded answer, or GatewayError."""
        data = json.dumps(body).encode()
        start = self._current
        for i in range(len(self.endpoints)):
            url = self.endpoints[(start + i) % len(self.endpoints)]
            try:
                r = self._http().post(f"{url}/v3/{path}", content=data,
                                    headers={"content-type": "application/json"})
            except httpx.ConnectError:
                if i == len(self.endpoints) - 1:
                    raise
                log.warning("etcd endpoint %s refused; trying the next", url)
                continue
            with self._lock:
                self._current = (start + i) % len(self.endpoints)
            answer: dict[str, Any] = r.json() if r.content else {}
            if r.status_code != 200:
                raise GatewayError(int(answer.get("code", 2)), str(answer.get("message") or r.text))
            return answer
        raise AssertionError("unreachable")

    def watch(self, key: bytes, end: bytes, start_revision: int, *, prev_kv: bool = True,
              read_timeout: float | None = None) -> WatchStream:
        """Open a watch of [key, end) from start_revision; iterate the
        stream for its messages (the `result` objects), close it when done."""
        body = {"create_request": {"key": b64(key), "range_end": b64(end),
                                   "start_revision": str(start_revision), "prev_kv": prev_kv}}
        return WatchStream(self, body, read_timeout)


class WatchStream:
    """One watch: an HTTP response streaming newline-delimited JSON. Its own
    connection (not the pool's), so close() from another thread can shut the
    socket and wake a blocked read."""

    def __init__(self, gw: Gateway, body: dict[str, Any], read_timeout: float | None) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=read_timeout), verify=_tls_context())
        self._response: httpx.Response | None = None
        self._closed = False
        last: Exception | None = None
        for url in gw.endpoints:
            try:
                req = self._client.build_request("POST", f"{url}/v3/watch", json=body)
                self._response = self._client.send(req, stream=True)
                break
            except httpx.ConnectError as e:
                last = e
        if self._response is None:
            self._client.close()
            raise last or httpx.ConnectError("no etcd endpoint")
        if self._response.status_code != 200:
            text = self._response.read().decode(errors="replace")
            self.close()
            raise GatewayError(2, f"watch failed: {self._response.status_code} {text}")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        assert self._response is not None
        for line in self._response.iter_lines():
            if not line.strip():
                continue
            msg = json.loads(line)
            if "error" in msg:
                err = msg["error"]
                raise GatewayError(int(err.get("grpc_code", err.get("code", 2))), str(err.get("message")))
            yield msg.get("result", {})

    def close(self) -> None:
        """Idempotent; safe from another thread while __iter__ blocks."""
        if self._closed:
            return
        self._closed = True
        if self._response is not None:
            stream = self._response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        try:
            if self._response is not None:
                self._response.close()
            self._client.close()
        except Exception:  # the socket is already shut; a reader elsewhere sees the end
            pass

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
