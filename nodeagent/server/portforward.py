"""`kubectl port-forward` on the node: SPDY/3.1 streams (apimachinery.spdy)
relayed to TCP ports on the pod's loopback.

kubectl opens, per local connection, an `error` stream and a `data` stream
with the same `requestid` and `port` headers.  Every stream gets a
SYN_REPLY; the data stream's bytes go to 127.0.0.1:PORT inside the pod's
network namespace and back; a failure to connect is written on the error
stream.  PINGs are echoed; RST_STREAM closes the stream's connection;
GOAWAY ends the session.

The socket is opened on a dedicated short-lived thread that setns()s into
the pod netns (the socket stays there when the thread ends); the event loop
thread never changes namespace.  Neighbours: nodeagent.server.app feeds the
session from the WebSocket tunnel (`SPDY/3.1+portforward.k8s.io`);
master/apiserver/proxy relays that WebSocket from kubectl.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from apimachinery import spdy

log = logging.getLogger(__name__)
PROTOCOL = "SPDY/3.1+portforward.k8s.io"
Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Connector = Callable[[int], Awaitable[Connection]]
Sender = Callable[[bytes], Awaitable[None]]


def connect_socket_in_netns(netns: str, port: int, timeout: float = 5.0) -> socket.socket:
    """A TCP socket connected to 127.0.0.1:port inside the netns at path `netns` ("" = this one).

    Blocks; runs the setns on a thread of its own that exits right after
    (setns is per OS thread), so call it from any thread.
    """
    box: dict[str, object] = {}

    def work() -> None:
        try:
            if netns:
                import csrc
                fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    csrc.setns(fd, csrc.CLONE_NEWNET)
                finally:
                    os.close(fd)
            box["sock"] = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError as e:
            box["err"] = e

    t = threading.Thread(target=work, name=f"portforward-netns-{port}", daemon=True)
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]  # type: ignore[misc]
    sock = box["sock"]
    assert isinstance(sock, socket.socket)
    sock.settimeout(None)
    return sock


def netns_connector(netns: str) -> Connector:
    async def connect(port: int) -> Connection:
        sock = await asyncio.to_thread(connect_socket_in_netns, netns, port)
        return await asyncio.open_connection(sock=sock)
    return connect


@dataclass
class _Pair:
    error_id: int = 0
    data_id: int = 0
    port: int = 0
    inbox: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None
    writer: asyncio.StreamWriter | None = None


def parse_port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise ValueError(f"port {value} out of range")
    return port


class PortForwardSession:
    """One SPDY connection.  feed() bytes as they arrive; close() when the transport ends."""

    def __init__(self, send: Sender, connect: Connector) -> None:
        self._send_raw, self._connect = send, connect
        self._reader = spdy.FrameReader()
        self._codec = spdy.HeaderCodec()
        self._lock = asyncio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_data: dict[int, _Pair] = {}
        self.closed = asyncio.Event()

    async def _send(self, frame: bytes) -> None:
        async with self._lock:
            await self._send_raw(frame)

    async def _reply(self, stream_id: int) -> None:
        # compress under the lock: the header zlib stream must follow the send order
        async with self._lock:
            await self._send_raw(spdy.syn_reply(self._codec, stream_id))

    async def feed(self, data: bytes) -> None:
        for f in self._reader.feed(data):
            if isinstance(f, spdy.DataFrame):
                pair = self._by_data.get(f.stream_id)
                if pair is not None:
                    if f.data:
                        pair.inbox.put_nowait(f.data)
                    if f.fin:
                        pair.inbox.put_nowait(None)
            elif f.type == spdy.SYN_STREAM:
                await self._on_syn(spdy.parse_syn_stream(self._codec, f))
            elif f.type == spdy.PING:
                await self._send(spdy.control(spdy.PING, f.payload))
            elif f.type == spdy.RST_STREAM:
                pair = self._by_data.get(spdy.stream_id_of(f))
                if pair is not None:
                    pair.inbox.put_nowait(None)
                    if pair.writer is not None:
                        pair.writer.close()
            elif f.type == spdy.GOAWAY:
                self.closed.set()

    async def _on_syn(self, syn: spdy.SynStream) -> None:
        await self._reply(syn.stream_id)
        h = syn.headers
        pair = self._pairs.setdefault(h.get("requestid", str(syn.stream_id)), _Pair())
        kind = h.get("streamtype")
        if kind == "error":
            pair.error_id = syn.stream_id
            return
        if kind != "data":
            await self._send(spdy.rst_stream(syn.stream_id, spdy.RST_PROTOCOL_ERROR))
            return
        pair.data_id = syn.stream_id
        self._by_data[syn.stream_id] = pair
        try:
            pair.port = parse_port(h.get("port", ""))
        except ValueError:
            await self._fail(pair, f"invalid port {h.get('port')!r}")
            return
        pair.task = asyncio.create_task(self._forward(pair))

    async def _fail(self, pair: _Pair, message: str) -> None:
        if pair.error_id:
            await self._send(spdy.data(pair.error_id, message.encode(), fin=True))
        await self._send(spdy.data(pair.data_id, b"", fin=True))

    async def _forward(self, pair: _Pair) -> None:
        try:
            reader, writer = await self._connect(pair.port)
        except OSError as e:
            await self._fail(pair, f"error forwarding port {pair.port} to pod: {e}")
            return
        pair.writer = writer

        async def up() -> None:
            while (chunk := await pair.inbox.get()) is not None:
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        async def down() -> None:
            while chunk := await reader.read(32768):
                await self._send(spdy.data(pair.data_id, chunk))
            await self._send(spdy.data(pair.data_id, b"", fin=True))

        up_task = asyncio.create_task(up())
        try:
            await down()
            await asyncio.wait_for(up_task, 1.0)
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            up_task.cancel()
            writer.close()
            if pair.error_id:
                with contextlib.suppress(OSError, ConnectionError):
                    await self._send(spdy.data(pair.error_id, b"", fin=True))

    async def close(self) -> None:
        """Stop every forward (idempotent)."""
        self.closed.set()
        tasks = [p.task for p in self._pairs.values() if p.task is not None]
        for t in tasks:
            t.cancel()
        for p in self._pairs.values():
            if p.writer is not None:
                p.writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)
