"""The wire to etcd v3: its JSON gRPC gateway (`/v3/kv/*`, `/v3/watch`),
part of etcd itself since 3.3, spoken with the standard library's http.client.

Why not a client library: `etcd3` is unmaintained and pins old grpc and
protobuf; the maintained gRPC clients (`etcd-sdk-python`, `aetcd`) bring
grpcio and generated stubs, and `aetcd` is asyncio-only while the `Store`
contract is synchronous. The gateway is versioned with etcd and needs no stubs.
Why http.client and not httpx: the store is called on the API server's event
loop, so client CPU per call is loop time; a kept-alive http.client connection
per thread costs about a tenth of httpx's per call (a range round trip went
from 1.2 to 0.6 ms here).

This module knows the encoding only (base64 keys and values, int64 as
strings, omitted zero fields) and endpoint fail-over; what the calls mean
is `master.store.etcd`'s business.

Errors::

    GatewayError           a non-2xx answer: .code (gRPC code), .message
    httpx.TransportError   no endpoint answered (ConnectError), or the
                           connection broke during a call (ReadError: a write
                           may have landed)
"""
from __future__ import annotations

import base64
import http.client
import json
import logging
import select
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

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


def _connect(url: str, timeout: float | None) -> http.client.HTTPConnection:
    """A connected keep-alive connection to base URL (TCP_NODELAY: small
    request/answer pairs must not wait for delayed ACKs)."""
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port or 2379, timeout=timeout,
                                           context=_tls_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 2379, timeout=timeout)
    try:
        conn.connect()
    except OSError as e:
        conn.close()
        raise httpx.ConnectError(f"etcd {url}: {e}") from e
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _stale(conn: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection is readable only if the server closed it
    (or broke protocol): then the next request must not go on it."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


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
        # One keep-alive connection per thread and endpoint: a connection
        # carries one request at a time.
        self._local = threading.local()
        self._conns: list[http.client.HTTPConnection] = []

    def _conn(self, url: str) -> http.client.HTTPConnection:
        conns: dict[str, http.client.HTTPConnection] | None = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(url)
        if conn is not None and _stale(conn):
            conn.close()
            conn = None
        if conn is None:
            conn = conns[url] = _connect(url, self._timeout)
            with self._lock:
                self._conns = [c for c in self._conns if c.sock is not None] + [conn]
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def _post(self, url: str, path: str, data: bytes) -> tuple[int, bytes]:
        conn = self._conn(url)
        try:
            conn.request("POST", path, body=data, headers={"content-type": "application/json"})
            r = conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise httpx.ReadError(f"etcd {url}{path}: {e!r}") from e
        if r.will_close:
            conn.close()
        return r.status, raw

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST body to /v3/<path>; the decoded answer, or GatewayError."""
        data = json.dumps(body).encode()
        start = self._current
        for i in range(len(self.endpoints)):
            url = self.endpoints[(start + i) % len(self.endpoints)]
            try:
                status, raw = self._post(url, f"/v3/{path}", data)
            except httpx.ConnectError:
                if i == len(self.endpoints) - 1:
                    raise
                log.warning("etcd endpoint %s refused; trying the next", url)
                continue
            if i:
                with self._lock:
                    self._current = (start + i) % len(self.endpoints)
            answer: dict[str, Any] = json.loads(raw) if raw else {}
            if status != 200:
                raise GatewayError(int(answer.get("code", 2)), str(answer.get("message") or raw[:200]))
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
    connection (not the per-thread ones), so close() from another thread can
    shut the socket and wake a blocked read."""

    def __init__(self, gw: Gateway, body: dict[str, Any], read_timeout: float | None) -> None:
        self._closed = False
        self._conn: http.client.HTTPConnection | None = None
        self._response: http.client.HTTPResponse | None = None
        last: Exception | None = None
        for url in gw.endpoints:
            try:
                self._conn = _connect(url, 10.0)
                break
            except httpx.ConnectError as e:
                last = e
        if self._conn is None:
            raise last or httpx.ConnectError("no etcd endpoint")
        try:
            self._conn.request("POST", "/v3/watch", body=json.dumps(body).encode(),
                               headers={"content-type": "application/json"})
            self._response = self._conn.getresponse()
            assert self._conn.sock is not None
            self._conn.sock.settimeout(read_timeout)
        except (OSError, http.client.HTTPException) as e:
            self.close()
            raise httpx.ReadError(f"etcd watch: {e!r}") from e
        if self._response.status != 200:
            text = self._response.read().decode(errors="replace")
            status = self._response.status
            self.close()
            raise GatewayError(2, f"watch failed: {status} {text}")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        assert self._response is not None
        buf = b""
        while True:
            try:
                chunk = self._response.read1(65536)
            except (OSError, http.client.HTTPException, ValueError, AttributeError) as e:
                if self._closed:  # close() from another thread shut the socket under the read
                    return
                raise httpx.ReadError(f"etcd watch: {e!r}") from e
            if not chunk:
                return
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for line in lines:
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
        sock = self._conn.sock if self._conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            if self._conn is not None:
                self._conn.close()
        except Exception:  # the socket is already shut; a reader elsewhere sees the end
            pass

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
