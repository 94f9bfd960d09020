"""The agent's exec, attach-less logs and port-forward endpoints over real
WebSockets, with FakeRuntime (commands run on the host as the test user)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import MultiDict

from apimachinery import spdy
from nodeagent.runtime import crilog
from nodeagent.server import exec as execs
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord, RecordStore
from nodeagent.runtime.runc import FakeRuntime
from nodeagent.server.app import AgentServer, since_ns

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"


def test_parse_options_and_statuses() -> None:
    q = MultiDict([("command", "sh"), ("command", "-c"), ("command", "exit 3"), ("stdin", "true"),
                   ("stdout", "true"), ("stderr", "true"), ("tty", "true")])
    o = execs.parse_options(q)
    assert o.command == ("sh", "-c", "exit 3") and o.stdin and o.tty and not o.stderr  # tty merges stderr
    assert execs.exit_status(0) == {"metadata": {}, "status": "Success"}
    st = execs.exit_status(3)
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert execs.parse_resize(b'{"Width":80,"Height":24}') == (80, 24)
    assert execs.parse_resize(b'{"Width":0,"Height":0}\n') is None and execs.parse_resize(b"junk") is None
    assert execs.returncode_to_exit(-9) == 137 and execs.returncode_to_exit(2) == 2
    try:
        execs.parse_options(MultiDict())
        raise AssertionError("no command accepted")
    except ValueError:
        pass


def test_query_booleans_read_as_upstream_converts_them() -> None:
    """Python's spelling (`True`, kubernetes_asyncio) is true; absent, `0` and `false` in any case are false."""
    for v in ("true", "True", "TRUE", "1", "t", ""):
        assert execs.query_bool(MultiDict([("stdout", v)]), "stdout"), v
    for v in ("false", "False", "FALSE", "0"):
        assert not execs.query_bool(MultiDict([("stdout", v)]), "stdout"), v
    assert not execs.query_bool(MultiDict(), "stdout")
    o = execs.parse_options(MultiDict([("command", "sh"), ("stdin", "True"), ("stdout", "True"), ("stderr", "False")]))
    assert o.stdin and o.stdout and not o.stderr and not o.tty


def test_frames_binary_and_text() -> None:
    """Binary: the first byte is the channel.  Text (the Python client's `chr(channel) + data`): the
    first character is, and the rest goes on as UTF-8."""
    assert execs.frame(True, b"\x00echo hi\n") == (execs.STDIN, b"echo hi\n")
    assert execs.frame(True, b"\xff\x00") == (execs.CLOSE, b"\x00")
    assert execs.frame(False, "\x00echo test string 1\n") == (execs.STDIN, b"echo test string 1\n")
    assert execs.frame(False, "\x00h\u00e9") == (execs.STDIN, "h\u00e9".encode())
    assert execs.frame(False, "\x04" + '{"Width":80,"Height":24}') == (execs.RESIZE, b'{"Width":80,"Height":24}')
    assert execs.frame(False, chr(255) + "\x00") == (execs.CLOSE, b"\x00")
    assert execs.frame(True, b"") is None and execs.frame(False, "") is None
    assert execs.frame(False, "\u0100x") is None   # no such channel
    assert execs.frame(True, b"\x00") == (execs.STDIN, b"")


def test_since_from_query() -> None:
    now = 1_700_000_000 * 10**9
    assert since_ns({"sinceSeconds": "60"}, now) == now - 60 * 10**9
    assert since_ns({"sinceTime": "2023-11-14T22:13:20Z"}, now) == now
    assert since_ns({}, now) is None


async def _serve(tmp: Path, running: bool = True) -> tuple[web.AppRunner, str, RecordStore, FakeRuntime]:
    records = RecordStore(str(tmp))
    rt = FakeRuntime()
    rt.create("rid", str(tmp), log_path="", exit_file=str(tmp / "exit"), pid_file="")
    if running:
        rt.start("rid")
    c = ContainerRecord("main", state=ContainerState.RUNNING if running else ContainerState.EXITED,
                        runtime_id="rid", started_at="2024-01-01T00:00:00Z")
    records.save(PodRecord("uid1", "default", "p", started_at="2024-01-01T00:00:00Z", containers={"main": c}))
    runner = web.AppRunner(AgentServer(records, rt).app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", records, rt


async def _exec(base: str, cmd: list[str], flags: dict[str, str], send: Callable[[aiohttp.ClientWebSocketResponse],
                Awaitable[None]] | None = None, protocol: str = V5) -> dict[int, bytes]:
    params = [("command", c) for c in cmd] + list(flags.items())
    out: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/exec/default/p/main", params=params,
                                                          protocols=(protocol,)) as ws:
        assert ws.protocol == protocol
        if send:
            await send(ws)
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                out[msg.data[0]] = out.get(msg.data[0], b"") + msg.data[1:]
    return out


def run(coro_fn: Callable[[Path], Awaitable[None]], tmp: Path) -> None:
    asyncio.run(asyncio.wait_for(coro_fn(tmp), 30))


def test_exec_streams_and_exit_code(tmp_path: Path) -> None:
    async def main(tmp: Path) -> None:
        runner, base, _, rt = await _serve(tmp)
        try:
            out = await _exec(base, ["sh", "-c", "echo hi; echo oops >&2; exit 3"], {"stdout": "true", "stderr": "true"})
            assert out[execs.STDOUT] == b"hi\n" and out[execs.STDERR] == b"oops\n"
            st = json.loads(out[execs.ERROR])
            assert st["status"] == "Failure" and st["details"]["causes"][0]["message"] == "3"
            out = await _exec(base, ["true"], {"stdout": "true"})
            assert json.loads(out[execs.ERROR])["status"] == "Success" and execs.STDOUT not in out
            assert ("exec", "rid") in rt.calls
        finally:
            await runner.cleanup()
    run(main, tmp_path)


def test_exec_stdin_until_close_signal(tmp_path: Path) -> None:
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp)

        async def feed(ws: aiohttp.ClientWebSocketResponse) -> None:
            await ws.send_bytes(b"\x00hello\n")
            await ws.send_bytes(b"\x00world\n")
            await ws.send_bytes(b"\xff\x00")     # v5: close stdin -> cat sees EOF and exits

        try:
            out = await _exec(base, ["cat"], {"stdin": "true", "stdout": "true", "stderr": "true"}, feed)
            assert out[execs.STDOUT] == b"hello\nworld\n"
            assert json.loads(out[execs.ERROR])["status"] == "Success"
        finally:
            await runner.cleanup()
    run(main, tmp_path)


async def _send(ws: aiohttp.ClientWebSocketResponse, binary: bool, channel: int, data: bytes) -> None:
    """As the official Python client writes: bytes in a binary message, str in a text one."""
    if binary:
        await ws.send_bytes(bytes([channel]) + data)
    else:
        await ws.send_str(chr(channel) + data.decode())


async def _stdout_until(ws: aiohttp.ClientWebSocketResponse, want: bytes) -> bytes:
    got = b""
    while want not in got:
        msg = await ws.receive(timeout=10)
        assert msg.type is aiohttp.WSMsgType.BINARY, msg
        if msg.data[:1] == bytes([execs.STDOUT]):
            got += msg.data[1:]
    return got


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
@pytest.mark.parametrize("protocol", [V5, V4])
def test_exec_stdin_text_and_binary_frames(tmp_path: Path, protocol: str, binary: bool) -> None:
    """stdin in either framing reaches the process and its answer comes back at once, on v4 and v5;
    booleans spelled as Python does (`True`) turn the streams on."""
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp)
        params = [("command", "sh"), ("stdin", "True"), ("stdout", "True"), ("stderr", "True"), ("tty", "False")]
        try:
            async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/exec/default/p/main", params=params,
                                                                  protocols=(protocol,)) as ws:
                assert ws.protocol == protocol
                await _send(ws, binary, execs.STDIN, b"echo test string 1\n")
                assert await _stdout_until(ws, b"test string 1\n") == b"test string 1\n"
                await _send(ws, binary, execs.STDIN, b"echo test string 2 >&2\n")
                msg = await ws.receive(timeout=10)
                assert msg.data == bytes([execs.STDERR]) + b"test string 2\n"
                await _send(ws, binary, execs.STDIN, b"exit 7\n")
                msg = await ws.receive(timeout=10)
                assert msg.data[:1] == bytes([execs.ERROR])
                assert json.loads(msg.data[1:])["details"]["causes"][0]["message"] == "7"
        finally:
            await runner.cleanup()
    run(main, tmp_path)


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "text"])
def test_v5_close_ends_stdin(tmp_path: Path, binary: bool) -> None:
    """v5: the 255 message naming channel 0 closes the process's stdin, so `cat` ends with Success."""
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp)

        async def feed(ws: aiohttp.ClientWebSocketResponse) -> None:
            await _send(ws, binary, execs.STDIN, b"hello\n")
            await _send(ws, binary, execs.CLOSE, bytes([execs.STDIN]))

        try:
            out = await _exec(base, ["cat"], {"stdin": "true", "stdout": "true"}, feed)
            assert out[execs.STDOUT] == b"hello\n"
            assert json.loads(out[execs.ERROR])["status"] == "Success"
        finally:
            await runner.cleanup()
    run(main, tmp_path)


def test_v4_has_no_close_message(tmp_path: Path) -> None:
    """v4 knows no 255 message (upstream ignores it): stdin stays open after one."""
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp)
        params = [("command", "cat"), ("stdin", "true"), ("stdout", "true")]
        try:
            async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/exec/default/p/main", params=params,
                                                                  protocols=(V4,)) as ws:
                await ws.send_bytes(b"\x00one\n")
                await ws.send_bytes(b"\xff\x00")
                await ws.send_bytes(b"\x00two\n")
                assert await _stdout_until(ws, b"two\n") == b"one\ntwo\n"
        finally:
            await runner.cleanup()
    run(main, tmp_path)


def test_exec_tty_gets_a_terminal_and_resize(tmp_path: Path) -> None:
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp)

        async def resize(ws: aiohttp.ClientWebSocketResponse) -> None:
            await ws.send_bytes(b'\x04{"Width":101,"Height":33}\n')

        try:
            out = await _exec(base, ["sh", "-c", "sleep 0.5; tty; stty size; echo err >&2; exit 4"],
                              {"stdin": "true", "stdout": "true", "tty": "true"}, resize)
            text = out[execs.STDOUT].decode()
            assert re.search(r"^/dev/pts/\d+\r?$", text, re.M), text
            assert "33 101" in text and "err" in text and execs.STDERR not in out   # stderr is the terminal
            assert json.loads(out[execs.ERROR])["details"]["causes"][0]["message"] == "4"
        finally:
            await runner.cleanup()
    run(main, tmp_path)


def test_exec_in_stopped_container_is_an_error_status(tmp_path: Path) -> None:
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp, running=False)
        try:
            out = await _exec(base, ["echo", "hi"], {"stdout": "true"})
            st = json.loads(out[execs.ERROR])
            assert st["status"] == "Failure" and "not running" in st["message"] and execs.STDOUT not in out
        finally:
            await runner.cleanup()
    run(main, tmp_path)


def test_logs_options_and_follow(tmp_path: Path) -> None:
    async def main(tmp: Path) -> None:
        runner, base, records, _ = await _serve(tmp)
        path = records.log_path("uid1", "main", 0)
        os.makedirs(os.path.dirname(path))
        old, now = time.time_ns() - 7200 * 10**9, time.time_ns()
        with open(path, "wb") as f:
            f.write(crilog.format_line(old, "stdout", b"old") + crilog.format_line(now, "stderr", b"new")
                    + crilog.format_line(now, "stdout", b"par", partial=True) + crilog.format_line(now, "stdout", b"t"))
        url = f"{base}/containerLogs/default/p/main"
        try:
            async with aiohttp.ClientSession() as s:
                async def get(**q: str) -> str:
                    async with s.get(url, params=q) as r:
                        assert r.status == 200
                        return await r.text()
                assert await get() == "old\nnew\npart\n"
                assert await get(sinceSeconds="3600") == "new\npart\n"
                assert await get(tailLines="1") == "part\n"
                ts = await get(timestamps="true", tailLines="2")
                assert ts.splitlines() == [f"{crilog.format_time(now)} new", f"{crilog.format_time(now)} part"]
                # follow: new lines stream; the response ends when the container stops
                async with s.get(url, params={"follow": "true", "tailLines": "0"}) as r:
                    with open(path, "ab") as f:
                        f.write(crilog.format_line(time.time_ns(), "stdout", b"later"))
                    first = await asyncio.wait_for(r.content.readline(), 5)
                    assert first == b"later\n"
                    rec = records.load("uid1")
                    assert rec is not None
                    rec.containers["main"].transition(ContainerState.EXITED)
                    records.save(rec)
                    assert await asyncio.wait_for(r.content.read(), 5) == b""
        finally:
            await runner.cleanup()
    run(main, tmp_path)


def test_port_forward_over_websocket_tunnel(tmp_path: Path) -> None:
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp)   # record without netns: the agent's own loopback

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.write(b"pong:" + await r.read(10))
            await w.drain()
            w.close()
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = str(srv.sockets[0].getsockname()[1])
        codec, reader = spdy.HeaderCodec(), spdy.FrameReader()
        try:
            async with aiohttp.ClientSession() as s, s.ws_connect(f"{base}/portForward/default/p",
                                                                  protocols=("SPDY/3.1+portforward.k8s.io",)) as ws:
                assert ws.protocol == "SPDY/3.1+portforward.k8s.io"
                await ws.send_bytes(spdy.syn_stream(codec, 1, {"streamtype": "error", "port": port, "requestid": "0"}))
                await ws.send_bytes(spdy.syn_stream(codec, 3, {"streamtype": "data", "port": port, "requestid": "0"})
                                    + spdy.data(3, b"ping"))
                got, fin = b"", False
                while not fin:
                    msg = await ws.receive(timeout=5)
                    for f in reader.feed(msg.data):
                        if isinstance(f, spdy.DataFrame) and f.stream_id == 3:
                            got, fin = got + f.data, f.fin
                assert got == b"pong:ping"
        finally:
            srv.close()
            await runner.cleanup()
    run(main, tmp_path)


def test_client_leaving_ends_the_process(tmp_path: Path) -> None:
    async def main(tmp: Path) -> None:
        runner, base, _, _ = await _serve(tmp)
        marker = tmp / "pid"
        try:
            async with aiohttp.ClientSession() as s:
                ws = await s.ws_connect(f"{base}/exec/default/p/main", protocols=(V5,),
                                        params=[("command", "sh"), ("command", "-c"),
                                                ("command", f"echo $$ > {marker}; exec sleep 60"), ("stdout", "true")])
                for _ in range(100):
                    if marker.exists() and marker.read_text().strip():
                        break
                    await asyncio.sleep(0.05)
                pid = int(marker.read_text())
                await ws.close()
            for _ in range(100):
                try:
                    if " Z " in Path(f"/proc/{pid}/stat").read_text():   # a zombie is gone too
                        break
                except (FileNotFoundError, ProcessLookupError):   # reaped between open and read
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"exec'd process {pid} outlived its client")
        finally:
            await runner.cleanup()
    run(main, tmp_path)
