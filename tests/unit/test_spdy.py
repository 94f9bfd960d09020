"""SPDY/3.1 framing and the port-forward session, against a loopback echo server (no root)."""
from __future__ import annotations

import asyncio
import hashlib
import zlib

from apimachinery import spdy
from nodeagent.server.portforward import PortForwardSession


def test_dictionary_is_the_spdy3_one() -> None:
    assert len(spdy.DICTIONARY) == 1423
    assert hashlib.sha256(spdy.DICTIONARY).hexdigest().startswith("51d27341373f923f")


def test_frames_survive_arbitrary_splits() -> None:
    client = spdy.HeaderCodec()
    wire = (spdy.syn_stream(client, 1, {"streamtype": "error", "port": "80", "requestid": "0"})
            + spdy.data(1, b"", fin=True)
            + spdy.syn_stream(client, 3, {"streamtype": "data", "port": "80", "requestid": "0"})
            + spdy.data(3, b"GET / HTTP/1.1\r\n\r\n") + spdy.rst_stream(3, spdy.RST_CANCEL)
            + spdy.control(spdy.PING, b"\x00\x00\x00\x01"))
    server = spdy.HeaderCodec()
    reader = spdy.FrameReader()
    frames = []
    for i in range(0, len(wire), 7):        # 7-byte pieces, as a WebSocket tunnel may cut them
        frames += reader.feed(wire[i:i + 7])
    assert [type(f).__name__ for f in frames] == ["ControlFrame", "DataFrame", "ControlFrame", "DataFrame",
                                                   "ControlFrame", "ControlFrame"]
    s1 = spdy.parse_syn_stream(server, frames[0])   # one zlib stream for the connection: order matters
    s3 = spdy.parse_syn_stream(server, frames[2])
    assert (s1.stream_id, s1.headers) == (1, {"streamtype": "error", "port": "80", "requestid": "0"})
    assert (s3.stream_id, s3.headers["streamtype"]) == (3, "data")
    assert frames[1].fin and frames[1].data == b""
    assert frames[3].data == b"GET / HTTP/1.1\r\n\r\n" and not frames[3].fin
    assert frames[4].type == spdy.RST_STREAM and spdy.stream_id_of(frames[4]) == 3
    assert frames[5].type == spdy.PING and frames[5].payload == b"\x00\x00\x00\x01"


def test_header_block_uses_the_dictionary() -> None:
    block = spdy.HeaderCodec().compress({"streamtype": "data"})
    # without the preset dictionary, zlib refuses the stream
    try:
        zlib.decompressobj().decompress(block)
        raise AssertionError("decompressed without the dictionary")
    except zlib.error:
        pass
    assert spdy.decode_headers(zlib.decompressobj(zdict=spdy.DICTIONARY).decompress(block)) == {"streamtype": "data"}


def test_control_frame_layout() -> None:
    f = spdy.rst_stream(5, spdy.RST_CANCEL)
    assert f == bytes.fromhex("80030003" "00000008" "00000005" "00000005")
    assert spdy.data(3, b"hi", fin=True) == bytes.fromhex("00000003" "01000002") + b"hi"


class _Client:
    """kubectl's side of a port-forward, fed by what the session sends."""

    def __init__(self) -> None:
        self.codec, self.reader = spdy.HeaderCodec(), spdy.FrameReader()
        self.frames: list[spdy.Frame] = []
        self.got = asyncio.Event()

    async def receive(self, data: bytes) -> None:
        self.frames += self.reader.feed(data)
        self.got.set()

    async def wait_for(self, pred, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not pred():
                self.got.clear()
                await self.got.wait()
        await asyncio.wait_for(loop(), timeout)

    def data_on(self, sid: int) -> tuple[bytes, bool]:
        ds = [f for f in self.frames if isinstance(f, spdy.DataFrame) and f.stream_id == sid]
        return b"".join(d.data for d in ds), any(d.fin for d in ds)


async def _echo_server() -> tuple[asyncio.base_events.Server, int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        data = await r.read(100)
        w.write(b"echo:" + data)
        await w.drain()
        w.close()
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def test_session_forwards_a_connection_and_reports_refusal() -> None:
    async def main() -> None:
        srv, port = await _echo_server()
        client = _Client()

        async def connect(p: int):
            return await asyncio.open_connection("127.0.0.1", p)

        s = PortForwardSession(client.receive, connect)
        try:
            await s.feed(spdy.syn_stream(client.codec, 1, {"streamtype": "error", "port": str(port), "requestid": "0"})
                         + spdy.data(1, b"", fin=True))
            await s.feed(spdy.syn_stream(client.codec, 3, {"streamtype": "data", "port": str(port), "requestid": "0"}))
            await s.feed(spdy.data(3, b"hello"))
            await client.wait_for(lambda: client.data_on(3)[1] and client.data_on(1)[1])
            assert client.data_on(3) == (b"echo:hello", True)
            assert client.data_on(1) == (b"", True)             # empty error stream: success
            replies = [spdy.stream_id_of(f) for f in client.frames
                       if isinstance(f, spdy.ControlFrame) and f.type == spdy.SYN_REPLY]
            assert replies == [1, 3]
            for f in client.frames:   # the replies' header blocks decode in order on the client's codec
                if isinstance(f, spdy.ControlFrame) and f.type == spdy.SYN_REPLY:
                    assert client.codec.decompress(f.payload[4:]) == {}
            # a port nobody listens on: the error stream says so
            srv.close()
            await srv.wait_closed()
            await s.feed(spdy.syn_stream(client.codec, 5, {"streamtype": "error", "port": str(port), "requestid": "1"}))
            await s.feed(spdy.syn_stream(client.codec, 7, {"streamtype": "data", "port": str(port), "requestid": "1"}))
            await client.wait_for(lambda: client.data_on(5)[1])
            msg, _ = client.data_on(5)
            assert f"error forwarding port {port}".encode() in msg and client.data_on(7) == (b"", True)
            await s.feed(spdy.control(spdy.PING, b"\x00\x00\x00\x07"))
            await client.wait_for(lambda: any(isinstance(f, spdy.ControlFrame) and f.type == spdy.PING
                                              for f in client.frames))
        finally:
            await s.close()
            srv.close()

    asyncio.run(main())
