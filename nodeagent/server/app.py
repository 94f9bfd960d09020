"""The agent's HTTP server (the kubelet port), for the API server's proxy:
container logs (`pods/log`), exec and attach (v5/v4.channel.k8s.io WebSocket),
port-forward (SPDY/3.1 tunnelled in a WebSocket), and health.

Logs are CRI-format files written by csrc/coracle-shim and read with
nodeagent.runtime.crilog; exec sessions live in nodeagent.server.exec, port-forward in
nodeagent.server.portforward.  Pods are found by namespace/name in the on-disk
records (nodeagent.pod.record).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from nodeagent.runtime import crilog
from nodeagent.server import exec as execs
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord, RecordStore
from nodeagent.server.portforward import PROTOCOL as PF_PROTOCOL
from nodeagent.server.portforward import PortForwardSession, netns_connector
from nodeagent.runtime.runc import ContainerRuntime, RuncError


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.Response(body=json.dumps(body).encode(), status=code, content_type="application/json")


def since_ns(query: dict[str, str] | object, now_ns: int) -> int | None:
    """sinceSeconds / sinceTime of a logs query -> unix ns, or None."""
    q = query if isinstance(query, dict) else dict(query)  # type: ignore[call-overload]
    if "sinceSeconds" in q:
        return now_ns - int(q["sinceSeconds"]) * 1_000_000_000
    if "sinceTime" in q:
        t = crilog.parse_time(q["sinceTime"])
        if t is None:
            raise ValueError(f"sinceTime {q['sinceTime']!r} is not RFC3339")
        return t
    return None


class AgentServer:
    def __init__(self, records: RecordStore, runtime: ContainerRuntime | None = None):
        self.records, self.runtime = records, runtime
        self.app = web.Application()
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)
        self.app.router.add_get("/exec/{ns}/{pod}/{container}", self.exec)
        self.app.router.add_get("/attach/{ns}/{pod}/{container}", self.attach)
        self.app.router.add_get("/portForward/{ns}/{pod}", self.port_forward)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _find(self, ns: str, name: str) -> PodRecord | None:
        found = [r for r in self.records.load_all() if r.namespace == ns and r.name == name]
        return max(found, key=lambda r: r.started_at) if found else None

    async def _container(self, request: web.Request) -> tuple[PodRecord, ContainerRecord] | web.Response:
        ns, name, cname = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        rec = await asyncio.to_thread(self._find, ns, name)
        if rec is None:
            return _status(404, "NotFound", f'pod "{name}" not found on this node')
        cr = rec.containers.get(cname)
        if cr is None:
            return _status(400, "BadRequest", f'container "{cname}" in pod "{name}" is waiting to start: ContainerCreating')
        return rec, cr

    # -- logs ----------------------------------------------------------------
    async def logs(self, request: web.Request) -> web.StreamResponse:
        found = await self._container(request)
        if isinstance(found, web.Response):
            return found
        rec, cr = found
        name, cname, q = rec.name, cr.name, request.query
        if cr.state is ContainerState.WAITING and cr.attempt == 0 and not cr.started_at:
            why = cr.reason or "ContainerCreating"
            return _status(400, "BadRequest", f'container "{cname}" in pod "{name}" is waiting to start: {why}')
        attempt = cr.attempt
        if q.get("previous") == "true":
            if attempt == 0:
                return _status(400, "BadRequest", f'previous terminated container "{cname}" in pod "{name}" not found')
            attempt -= 1
        try:
            since = since_ns(q, time.time_ns())
            tail = int(q.get("tailLines", "-1"))
            limit = int(q["limitBytes"]) if "limitBytes" in q else None
        except ValueError as e:
            return _status(400, "BadRequest", str(e))
        timestamps = q.get("timestamps") == "true"
        path = self.records.log_path(rec.uid, cname, attempt)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            raw = b""
        data = crilog.read_log(raw, timestamps=timestamps, since_ns=since, tail=tail)
        if limit is not None:
            data = data[:limit]
        follow = q.get("follow") == "true" and q.get("previous") != "true"
        if not follow:
            return web.Response(body=data, content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(data)
        with contextlib.suppress(ConnectionError):
            async for entries in self._follow(rec.uid, cname, attempt, path, len(raw)):
                await resp.write(crilog.render(entries, timestamps=timestamps))
        return resp

    async def _follow(self, uid: str, cname: str, attempt: int, path: str,
                      offset: int) -> AsyncIterator[list[crilog.LogEntry]]:
        """New log entries after `offset`, until the container instance stops (then what is left)."""
        decoder = crilog.LogDecoder()
        while True:
            chunk = b""
            with contextlib.suppress(FileNotFoundError):
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            if chunk:
                offset += len(chunk)
                if entries := decoder.feed(chunk):
                    yield entries
                continue
            now = await asyncio.to_thread(self.records.load, uid)
            c = now.containers.get(cname) if now else None
            if c is None or c.state is not ContainerState.RUNNING or c.attempt != attempt:
                # the shim writes the last lines before the exit file: one more read catches them
                with contextlib.suppress(FileNotFoundError):
                    with open(path, "rb") as f:
                        f.seek(offset)
                        rest = decoder.feed(f.read()) + decoder.flush()
                        if rest:
                            yield rest
                return
            await asyncio.sleep(0.2)

    # -- exec and attach -----------------------------------------------------
    async def exec(self, request: web.Request) -> web.StreamResponse:
        found = await self._container(request)
        if isinstance(found, web.Response):
            return found
        rec, cr = found
        try:
            opts = execs.parse_options(request.query)
        except ValueError as e:
            return _status(400, "BadRequest", str(e))
        ws = web.WebSocketResponse(protocols=execs.PROTOCOLS, max_msg_size=0, autoping=True)
        await ws.prepare(request)
        session = execs.ExecSession(ws, [], opts, protocol=ws.ws_protocol)
        try:
            if cr.state is not ContainerState.RUNNING or not cr.runtime_id or self.runtime is None:
                raise RuncError("exec", cr.runtime_id, f'container {cr.name} is not running in pod {rec.name}')
            session.argv = self.runtime.exec_argv(cr.runtime_id, list(opts.command), tty=opts.tty)
            await session.run()
        except RuncError as e:
            await session.send(execs.ERROR, json.dumps(execs.error_status(e.message)).encode())
        finally:
            await ws.close()
        return ws

    async def attach(self, request: web.Request) -> web.StreamResponse:
        """Output-only attach: the container's output from now on (stdin and tty attach are not served)."""
        found = await self._container(request)
        if isinstance(found, web.Response):
            return found
        rec, cr = found
        ws = web.WebSocketResponse(protocols=execs.PROTOCOLS, max_msg_size=0)
        await ws.prepare(request)
        path = self.records.log_path(rec.uid, cr.name, cr.attempt)
        session = execs.ExecSession(ws, [], execs.ExecOptions(("attach",)))
        try:
            if cr.state is not ContainerState.RUNNING:
                await session.send(execs.ERROR, json.dumps(execs.error_status(
                    f"cannot attach to container {cr.name}: it is not running")).encode())
                return ws
            start = os.path.getsize(path) if os.path.exists(path) else 0
            follow = self._follow(rec.uid, cr.name, cr.attempt, path, start)
            closed = asyncio.create_task(_until_closed(ws))
            async for entries in follow:
                for e in entries:
                    await session.send(execs.STDERR if e.stream == "stderr" else execs.STDOUT, e.text)
                if closed.done():
                    break
            closed.cancel()
            if not ws.closed:
                await session.send(execs.ERROR, json.dumps(execs.exit_status(0)).encode())
        except ConnectionError:
            pass
        finally:
            await ws.close()
        return ws

    # -- port-forward --------------------------------------------------------
    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["pod"]
        rec = await asyncio.to_thread(self._find, ns, name)
        if rec is None or rec.finished:
            return _status(404, "NotFound", f'pod "{name}" not found on this node')
        ws = web.WebSocketResponse(protocols=(PF_PROTOCOL,), max_msg_size=0)
        await ws.prepare(request)
        session = PortForwardSession(ws.send_bytes, netns_connector(rec.netns))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    await session.feed(msg.data)
                if session.closed.is_set():
                    break
        finally:
            await session.close()
            await ws.close()
        return ws


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for _msg in ws:
        pass
