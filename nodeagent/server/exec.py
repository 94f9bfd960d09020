"""`kubectl exec` on the node: the v5.channel.k8s.io WebSocket protocol
served over a process that the runtime spawns (`runc exec`, see
nodeagent.runtime.runc.Runc.exec_argv).

Wire (v4.channel.k8s.io and v5.channel.k8s.io): messages whose first byte
is the channel - 0 stdin, 1 stdout, 2 stderr, 3 status (a metav1.Status
JSON, sent once at the end), 4 resize (`{"Width":W,"Height":H}`); v5 adds
255 close, whose body names the channel to close (`\\xff\\x00` closes
stdin, so the process reads EOF).  v4 has no close: there a 255 message is
ignored, as upstream's wsstream does.  kubectl sends binary messages; the
official Python client sends text ones (`chr(channel) + data`) unless told
`binary=True`, so a text message's first character is its channel and the
rest goes on as UTF-8 (`frame`).  We always answer in binary messages, which
both clients read.  With a tty, stderr is merged into the terminal.

Query booleans are read as upstream's query conversion reads them: absent is
false, `0` and `false` in any case are false, any other value is true (the
official client sends `true`, kubernetes_asyncio `True`).

The tty: `runc exec --tty` makes the container's pty itself and copies it
to and from its own stdio, which must be a terminal; we give runc the slave
of a pty of our own (os.openpty) and relay the master.  Going through runc's
foreground mode (rather than `--detach --console-socket`) keeps runc our
child, so its exit status is the process's exit code.  A resize sets our
pty's size and sends runc SIGWINCH, which it passes on.

Neighbours: nodeagent.server.app routes the request here; master/apiserver/proxy
relays kubectl's WebSocket to it unchanged.
"""
from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import struct
import termios
import tty as _tty
from dataclasses import dataclass
from typing import Any, Protocol

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)


@dataclass(frozen=True, slots=True)
class ExecOptions:
    command: tuple[str, ...]
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False


def parse_options(query: Any) -> ExecOptions:
    """The exec query (`command=..&command=..&stdin=true&tty=true`) -> options.  `query` is a MultiDict."""
    cmd = tuple(query.getall("command", []))
    if not cmd:
        raise ValueError("you must specify at least one command for the container")
    tty = query_bool(query, "tty")
    return ExecOptions(cmd, stdin=query_bool(query, "stdin"), stdout=query_bool(query, "stdout"),
                       stderr=query_bool(query, "stderr") and not tty, tty=tty)


def query_bool(query: Any, key: str) -> bool:
    """A boolean query parameter as upstream's conversion (Convert_Slice_string_To_bool) reads it:
    absent is false, `0` or `false` in any case false, anything else (`true`, `True`, `1`) true."""
    values = query.getall(key, [])
    if not values:
        return False
    return not (values[0] == "0" or values[0].lower() == "false")


def frame(binary: bool, data: bytes | str) -> tuple[int, bytes] | None:
    """One client message -> (channel, body); None for an empty one or a text channel past 255.

    A binary message's first byte is the channel.  A text message is the Python client's
    `chr(channel) + data`: its first character is the channel, the rest is sent on as UTF-8."""
    if not data:
        return None
    if binary:
        assert isinstance(data, bytes)
        return data[0], data[1:]
    assert isinstance(data, str)
    channel = ord(data[0])
    return (channel, data[1:].encode("utf-8", "surrogateescape")) if channel <= 255 else None


def exit_status(code: int) -> dict[str, Any]:
    """The channel-3 Status for a process that exited with `code` (kubectl prints the cause's code)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def error_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "reason": "InternalError", "message": message}


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """A resize message body -> (width, height); None when malformed or zero."""
    try:
        d = json.loads(payload)
        w, h = int(d.get("Width", 0)), int(d.get("Height", 0))
    except (ValueError, AttributeError, TypeError):
        return None
    return (w, h) if w > 0 and h > 0 else None


def returncode_to_exit(rc: int) -> int:
    """asyncio's returncode (negative for a signal) -> a shell-style exit code."""
    return 128 - rc if rc < 0 else rc


class Channel(Protocol):
    """The side of the WebSocket the session uses (aiohttp's WebSocketResponse fits)."""

    async def send_bytes(self, data: bytes) -> None: ...
    async def receive(self, timeout: float | None = None) -> Any: ...


class ExecSession:
    """One exec: spawn argv, relay the channels, report the exit status.  Not reusable."""

    def __init__(self, ws: Channel, argv: list[str], opts: ExecOptions, protocol: str | None = V5) -> None:
        self.ws, self.argv, self.opts = ws, argv, opts
        self.can_close = protocol == V5   # the 255 close message is v5's
        self._lock = asyncio.Lock()
        self._proc: asyncio.subprocess.Process | None = None
        self._master = -1
        self._early: Any = None   # a client message read before the process started

    async def send(self, channel: int, data: bytes) -> None:
        async with self._lock:
            await self.ws.send_bytes(bytes([channel]) + data)

    async def run(self) -> int | None:
        """Returns the exit code, or None if the process could not start or the client left."""
        try:
            code = await (self._run_tty() if self.opts.tty else self._run_pipes())
        except OSError as e:
            await self.send(ERROR, json.dumps(error_status(f"cannot run {self.argv[0]}: {e}")).encode())
            return None
        if code is not None:
            await self.send(ERROR, json.dumps(exit_status(code)).encode())
        return code

    async def _run_pipes(self) -> int | None:
        pipe, null = asyncio.subprocess.PIPE, asyncio.subprocess.DEVNULL
        proc = self._proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=pipe if self.opts.stdin else null, stdout=pipe if self.opts.stdout else null,
            stderr=pipe if self.opts.stderr else null, start_new_session=True)
        pumps = [asyncio.create_task(self._pump(s, ch)) for s, ch in ((proc.stdout, STDOUT), (proc.stderr, STDERR))
                 if s is not None]
        return await self._wait(pumps)

    async def _pump(self, stream: asyncio.StreamReader, channel: int) -> None:
        while chunk := await stream.read(32768):
            await self.send(channel, chunk)

    async def _run_tty(self) -> int | None:
        master, slave = os.openpty()
        self._master = master
        try:
            _tty.setraw(slave)
            # kubectl sends the terminal size first: apply it before runc starts, since runc
            # copies our size to the container's pty once at start and a SIGWINCH sent before
            # it installs its handler is lost
            with contextlib.suppress(asyncio.TimeoutError):
                first = await self.ws.receive(timeout=0.5)
                self._early = first
                got = _client_frame(first)
                if got is not None and got[0] == RESIZE:
                    self._resize(got[1], signal_runc=False)
                    self._early = None
            self._proc = await asyncio.create_subprocess_exec(*self.argv, stdin=slave, stdout=slave, stderr=slave,
                                                              start_new_session=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        try:
            return await self._wait([asyncio.create_task(self._pump_pty(master))])
        finally:
            os.close(master)

    async def _pump_pty(self, master: int) -> None:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(master, ready.set)
        try:
            while True:
                await ready.wait()
                ready.clear()
                try:
                    chunk = os.read(master, 32768)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: every slave fd is closed, runc is gone
                    return
                if not chunk:
                    return
                await self.send(STDOUT, chunk)
        finally:
            loop.remove_reader(master)

    async def _wait(self, pumps: list[asyncio.Task]) -> int | None:
        assert self._proc is not None
        proc = self._proc
        reader = asyncio.create_task(self._read_client())
        done: asyncio.Future[Any] = asyncio.gather(*pumps, proc.wait())
        waiters: list[asyncio.Future[Any]] = [reader, done]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if done.done() and done.exception() is None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            return returncode_to_exit(proc.returncode if proc.returncode is not None else 0)
        # the client went away: runc passes the signal on to the process (a hang-up for a
        # terminal, which interactive shells obey; SIGTERM otherwise); kill runc if it lingers
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGHUP if self.opts.tty else signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(done), 3)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            for p in pumps:
                p.cancel()
        return None

    async def _read_client(self) -> None:
        """Client messages until it closes: stdin, close-stdin, resize."""
        from aiohttp import WSMsgType
        assert self._proc is not None
        stdin = self._proc.stdin
        while True:
            msg, self._early = (self._early, None) if self._early is not None else (await self.ws.receive(), None)
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            got = _client_frame(msg)
            if got is None:
                continue
            ch, body = got
            if ch == STDIN and self.opts.stdin:
                if self.opts.tty:
                    await asyncio.to_thread(_write_all, self._master, body)
                elif stdin is not None and not stdin.is_closing():
                    stdin.write(body)
                    with contextlib.suppress(ConnectionError):
                        await stdin.drain()
            elif ch == CLOSE and self.can_close and body[:1] == bytes([STDIN]):
                if stdin is not None:
                    stdin.close()
                elif self.opts.tty:
                    await asyncio.to_thread(_write_all, self._master, b"\x04")  # ^D: EOF on a terminal
            elif ch == RESIZE and self.opts.tty:
                self._resize(body)

    def _resize(self, body: bytes, signal_runc: bool = True) -> None:
        size = parse_resize(body)
        if size:
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
            if signal_runc and self._proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.send_signal(signal.SIGWINCH)


def _client_frame(msg: Any) -> tuple[int, bytes] | None:
    """An aiohttp message -> (channel, body), None for anything but a non-empty data message."""
    from aiohttp import WSMsgType
    if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
        return None
    return frame(msg.type is WSMsgType.BINARY, msg.data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select
            select.select([], [fd], [], 1.0)
            continue
        view = view[n:]
