"""The etcd client the store uses: the `etcd-sdk-python` (pyetcd) client for
the endpoints of a store URL, with the gRPC channel options Coracle needs,
and what its errors say about a call that failed.

The library fails over between endpoints on request: when a call fails with
UNAVAILABLE it sets the endpoint aside for `FAILED_ENDPOINT_PAUSE` seconds,
raises ConnectionFailedError, and the next call goes to another endpoint;
`master.store.etcd` decides which calls to send again (`never_sent`).
Neighbours: `master.store.etcd` (the Store on top), `master.store.etcdwatch`.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import grpc
import pyetcd

FAILED_ENDPOINT_PAUSE = 1.0  # seconds a failed endpoint is skipped when there are others
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", -1),  # a LIST of 10,000 pods is ~10 MB; gRPC's default is 4 MB
    ("grpc.initial_reconnect_backoff_ms", 200),  # an etcd back after a restart is used again within ~1 s
    ("grpc.max_reconnect_backoff_ms", 1000),
]


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


def parse_url(url: str) -> tuple[list[str], str]:
    """`etcd://h1:2379,h2:2379?prefix=/x` -> (endpoint URLs, key prefix)."""
    parts = urlsplit(url)
    if parts.scheme != "etcd":
        raise ValueError(f"not an etcd store URL: {url!r}")
    prefix = parse_qs(parts.query).get("prefix", [""])[0]
    return parse_endpoints(parts.netloc), prefix.rstrip("/") if prefix != "/" else ""


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


def _endpoint(url: str, pause: float) -> pyetcd.Endpoint:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    return pyetcd.Endpoint(parts.hostname or "127.0.0.1", parts.port or 2379, secure=secure,
                           creds=grpc.ssl_channel_credentials() if secure else None,
                           time_retry=pause, opts=CHANNEL_OPTIONS)


def reason(error: Exception) -> str:
    """What went wrong, from the gRPC error the library's exception wraps."""
    cause = error.__context__
    if isinstance(cause, grpc.RpcError):
        return f"{cause.code().name}: {cause.details()}"
    return type(error).__name__


def never_sent(error: Exception) -> bool:
    """The library's ConnectionFailedError wraps gRPC's UNAVAILABLE; only a
    refused connection proves the request did not reach etcd."""
    cause = error.__context__
    return (isinstance(cause, grpc.RpcError) and cause.code() == grpc.StatusCode.UNAVAILABLE
            and "failed to connect" in (cause.details() or "").lower())


def connect(endpoints: list[str], timeout: float) -> pyetcd.MultiEndpointEtcd3Client:
    """A client over every endpoint URL, each call's deadline `timeout` seconds."""
    pause = FAILED_ENDPOINT_PAUSE if len(endpoints) > 1 else 0.0  # one endpoint: always try it again
    return pyetcd.MultiEndpointEtcd3Client(endpoints=[_endpoint(url, pause) for url in endpoints],
                                           timeout=timeout, failover=True)
