"""SPDY/3.1 framing, as kubectl's port-forward (and exec fallback) speaks it.

Pure bytes in, bytes out: a `FrameReader` that cuts a byte stream into
frames, encoders for the frames a server sends, and `HeaderCodec`, the zlib
header-block compression with the SPDY/3 dictionary (one zlib stream per
direction for the whole connection, Z_SYNC_FLUSH after each block).  The
transport (a WebSocket tunnel or a raw upgraded socket) and the stream
semantics live in nodeagent.server.portforward.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

# control frame types (SPDY/3.1 section 2.6)
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
RST_PROTOCOL_ERROR, RST_CANCEL = 1, 5
VERSION = 3

# The zlib dictionary of the SPDY/3 specification (1423 bytes; sha256 51d27341...).
DICTIONARY = (
    b'\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04p'
    b'ost\x00\x00\x00\x03put\x00\x00\x00\x06delete\x00\x00\x00\x05trac'
    b'e\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00'
    b'\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\ra'
    b'ccept-ranges\x00\x00\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00\r'
    b'authorization\x00\x00\x00\rcache-control\x00\x00\x00\nconnection'
    b'\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding'
    b'\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-leng'
    b'th\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md'
    b'5\x00\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type\x00\x00'
    b'\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect'
    b'\x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04h'
    b'ost\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since'
    b'\x00\x00\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00'
    b'\x13if-unmodified-since\x00\x00\x00\rlast-modified\x00\x00\x00'
    b'\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00'
    b'\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization'
    b'\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretr'
    b'y-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07t'
    b'railer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgra'
    b'de\x00\x00\x00\nuser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03'
    b'via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00'
    b'\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06statu'
    b's\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HT'
    b'TP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\nset-c'
    b'ookie\x00\x00\x00\nkeep-alive\x00\x00\x00\x06origin100101201202205'
    b'2063003023033043053063074024054064074084094104114124134144154164'
    b'17502504505203 Non-Authoritative Information204 No Content301 Mo'
    b'ved Permanently400 Bad Request401 Unauthorized403 Forbidden404 N'
    b'ot Found500 Internal Server Error501 Not Implemented503 Service '
    b'UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:0'
    b'0:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,ima'
    b'ge/png,image/jpg,image/gif,application/xml,application/xhtml+xml'
    b',text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sd'
    b'chcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.')

@dataclass(frozen=True, slots=True)
class ControlFrame:
    type: int
    flags: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class DataFrame:
    stream_id: int
    flags: int
    data: bytes

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


Frame = ControlFrame | DataFrame


class FrameReader:
    """Cuts a byte stream (arriving in arbitrary pieces) into frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while len(self._buf) >= 8:
            word, flags_len = struct.unpack_from(">II", self._buf)
            length = flags_len & 0xFFFFFF
            if len(self._buf) < 8 + length:
                break
            payload = bytes(self._buf[8:8 + length])
            del self._buf[:8 + length]
            if word & 0x80000000:
                out.append(ControlFrame(word & 0xFFFF, flags_len >> 24, payload))
            else:
                out.append(DataFrame(word & 0x7FFFFFFF, flags_len >> 24, payload))
        return out


def encode_headers(headers: dict[str, str]) -> bytes:
    """The uncompressed name/value block: u32 count, then u32-length-prefixed names and values."""
    out = bytearray(struct.pack(">I", len(headers)))
    for k, v in headers.items():
        kb, vb = k.lower().encode(), v.encode()
        out += struct.pack(">I", len(kb)) + kb + struct.pack(">I", len(vb)) + vb
    return bytes(out)


def decode_headers(block: bytes) -> dict[str, str]:
    """The inverse of encode_headers; several values of one name (NUL-separated) are kept joined by ','."""
    (n,), pos, out = struct.unpack_from(">I", block), 4, {}
    for _ in range(n):
        (ln,) = struct.unpack_from(">I", block, pos)
        name = block[pos + 4:pos + 4 + ln].decode()
        pos += 4 + ln
        (lv,) = struct.unpack_from(">I", block, pos)
        value = block[pos + 4:pos + 4 + lv].decode()
        pos += 4 + lv
        out[name] = value.replace("\0", ",")
    return out


class HeaderCodec:
    """One direction's compressor and the other's decompressor; each is a single zlib stream per connection."""

    def __init__(self) -> None:
        self._comp = zlib.compressobj(zdict=DICTIONARY)
        self._decomp = zlib.decompressobj(zdict=DICTIONARY)

    def compress(self, headers: dict[str, str]) -> bytes:
        return self._comp.compress(encode_headers(headers)) + self._comp.flush(zlib.Z_SYNC_FLUSH)

    def decompress(self, block: bytes) -> dict[str, str]:
        return decode_headers(self._decomp.decompress(block))


def control(type: int, payload: bytes, flags: int = 0) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, type, (flags << 24) | len(payload)) + payload


def data(stream_id: int, payload: bytes, fin: bool = False) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(payload)) + payload


def syn_stream(codec: HeaderCodec, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
    payload = struct.pack(">IIH", stream_id, 0, 0) + codec.compress(headers)
    return control(SYN_STREAM, payload, FLAG_FIN if fin else 0)


def syn_reply(codec: HeaderCodec, stream_id: int, headers: dict[str, str] | None = None) -> bytes:
    return control(SYN_REPLY, struct.pack(">I", stream_id) + codec.compress(headers or {}))


def rst_stream(stream_id: int, status: int) -> bytes:
    return control(RST_STREAM, struct.pack(">II", stream_id, status))


def goaway(last_stream_id: int = 0, status: int = 0) -> bytes:
    return control(GOAWAY, struct.pack(">II", last_stream_id, status))


@dataclass(frozen=True, slots=True)
class SynStream:
    stream_id: int
    fin: bool
    headers: dict[str, str]


def parse_syn_stream(codec: HeaderCodec, f: ControlFrame) -> SynStream:
    stream_id, _assoc = struct.unpack_from(">II", f.payload)
    return SynStream(stream_id & 0x7FFFFFFF, bool(f.flags & FLAG_FIN), codec.decompress(f.payload[10:]))


def stream_id_of(f: ControlFrame) -> int:
    """The stream a SYN_REPLY, RST_STREAM, HEADERS or WINDOW_UPDATE frame is about."""
    return struct.unpack_from(">I", f.payload)[0] & 0x7FFFFFFF
