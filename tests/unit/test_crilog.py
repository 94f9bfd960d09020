"""The CRI log line format the shim writes and the logs server reads."""
from __future__ import annotations

from nodeagent.runtime import crilog


def test_time_round_trip() -> None:
    ns = 1_700_000_000_123_456_789
    assert crilog.format_time(ns) == "2023-11-14T22:13:20.123456789Z"
    assert crilog.parse_time(crilog.format_time(ns)) == ns
    assert crilog.parse_time("2023-11-14T23:13:20.5+01:00") == 1_700_000_000_500_000_000
    assert crilog.parse_time("yesterday") is None


def test_partial_lines_join_and_survive_any_split() -> None:
    data = (crilog.format_line(1, "stdout", b"a" * 3, partial=True) + crilog.format_line(2, "stdout", b"b")
            + crilog.format_line(3, "stderr", b"err") + crilog.format_line(4, "stdout", b"tail", partial=True))
    for step in (1, 5, len(data)):
        d = crilog.LogDecoder()
        out = []
        for i in range(0, len(data), step):
            out += d.feed(data[i:i + step])
        out += d.flush()
        assert [(e.stream, e.text, e.time_ns) for e in out] == [
            ("stdout", b"aaab\n", 1), ("stderr", b"err\n", 3), ("stdout", b"tail", 4)]


def test_read_log_options() -> None:
    data = b"".join(crilog.format_line(i * 10**9, "stdout", f"line{i}".encode()) for i in range(1, 6))
    assert crilog.read_log(data) == b"line1\nline2\nline3\nline4\nline5\n"
    assert crilog.read_log(data, tail=2) == b"line4\nline5\n"
    assert crilog.read_log(data, since_ns=4 * 10**9) == b"line4\nline5\n"
    assert crilog.read_log(data, tail=1, timestamps=True) == b"1970-01-01T00:00:05.000000000Z line5\n"
    assert crilog.read_log(b"plain old log\n") == b"plain old log\n"   # logs from before the format
