"""The container log format on disk: CRI's `<RFC3339Nano> stdout|stderr F|P <text>`.

csrc/coracle-shim writes these lines (one per line of container output, `P`
for a piece of an over-long line or a last line without newline); this module
reads them back for the agent's logs server (nodeagent.server.app) and the debug
CLI (nodeagent.debug.cli).  Pure: bytes in, bytes out.  Lines that are not in the
format (logs written before it) pass through untouched.
"""
from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone

_LINE = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) ")


@dataclass(frozen=True, slots=True)
class LogEntry:
    timestamp: str        # as written (RFC3339Nano); "" for a line not in the format
    time_ns: int | None
    stream: str
    text: bytes           # with its newline when the line was complete


def parse_time(ts: str) -> int | None:
    """RFC3339 with up to nanoseconds -> unix ns; None if unparsable."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", ts)
    if not m:
        return None
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    secs = datetime.fromisoformat(m.group(1) + zone).timestamp()
    frac = (m.group(2) or "0")[:9].ljust(9, "0")
    return int(secs) * 1_000_000_000 + int(frac)


def format_time(ns: int) -> str:
    dt = datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 1_000_000_000:09d}Z"


def format_line(ns: int, stream: str, text: bytes, partial: bool = False) -> bytes:
    """One on-disk line (what the shim writes); `text` without its newline."""
    return f"{format_time(ns)} {stream} {'P' if partial else 'F'} ".encode() + text + b"\n"


class LogDecoder:
    """Turns file bytes (fed in arbitrary pieces) into whole container lines.

    `P` pieces are joined to the line they start; the joined line keeps the
    first piece's timestamp.  A trailing `P` piece is held until more comes.
    """

    def __init__(self) -> None:
        self._buf = b""
        self._pending: LogEntry | None = None

    def feed(self, data: bytes) -> list[LogEntry]:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        out: list[LogEntry] = []
        for line in lines:
            m = _LINE.match(line)
            if m is None:
                out.append(LogEntry("", None, "", line + b"\n"))
                continue
            ts, stream, partial = m.group(1).decode(), m.group(2).decode(), m.group(3) == b"P"
            text = line[m.end():]
            if self._pending is not None:
                p = self._pending
                self._pending = LogEntry(p.timestamp, p.time_ns, p.stream, p.text + text)
            else:
                self._pending = LogEntry(ts, parse_time(ts), stream, text)
            if not partial:
                p = self._pending
                out.append(LogEntry(p.timestamp, p.time_ns, p.stream, p.text + b"\n"))
                self._pending = None
        return out

    def flush(self) -> list[LogEntry]:
        """What is held back (a last `P` piece, a line without newline), at the end of a log."""
        out = [self._pending] if self._pending is not None else []
        if self._buf:
            out += self.feed(b"\n")
            self._buf = b""
        self._pending = None
        return out


def render(entries: list[LogEntry], *, timestamps: bool = False, since_ns: int | None = None) -> bytes:
    """What `kubectl logs` prints for these entries."""
    out = bytearray()
    for e in entries:
        if since_ns is not None and e.time_ns is not None and e.time_ns < since_ns:
            continue
        if timestamps and e.timestamp:
            out += e.timestamp.encode() + b" "
        out += e.text
    return bytes(out)


def read_log(data: bytes, *, timestamps: bool = False, since_ns: int | None = None, tail: int = -1) -> bytes:
    """A whole log file, as `kubectl logs [--timestamps] [--since..] [--tail N]` shows it."""
    d = LogDecoder()
    entries = d.feed(data) + d.flush()
    if since_ns is not None:
        entries = [e for e in entries if e.time_ns is None or e.time_ns >= since_ns]
    if tail >= 0:
        entries = list(deque(entries, maxlen=tail))
    return render(entries, timestamps=timestamps)
