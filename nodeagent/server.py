"""The agent's HTTP server (the kubelet port): container logs for the API
server's `pods/log` proxy, and health.  Exec, port-forward and stats come
with later issues.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections import deque

from aiohttp import web

from nodeagent.podrecord import ContainerState, PodRecord, RecordStore


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    return web.Response(body=json.dumps(body).encode(), status=code, content_type="application/json")


def tail_lines(data: bytes, n: int) -> bytes:
    if n < 0:
        return data
    lines = deque(data.splitlines(keepends=True), maxlen=n)
    return b"".join(lines)


class AgentServer:
    def __init__(self, records: RecordStore):
        self.records = records
        self.app = web.Application()
        self.app.router.add_get("/healthz", self.healthz)
        self.app.router.add_get("/containerLogs/{ns}/{pod}/{container}", self.logs)

    async def healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok")

    def _find(self, ns: str, name: str) -> PodRecord | None:
        found = [r for r in self.records.load_all() if r.namespace == ns and r.name == name]
        return max(found, key=lambda r: r.started_at) if found else None

    async def logs(self, request: web.Request) -> web.StreamResponse:
        ns, name, cname = request.match_info["ns"], request.match_info["pod"], request.match_info["container"]
        q = request.query
        rec = await asyncio.to_thread(self._find, ns, name)
        if rec is None:
            return _status(404, "NotFound", f'pod "{name}" not found on this node')
        cr = rec.containers.get(cname)
        if cr is None or (cr.state is ContainerState.WAITING and cr.attempt == 0 and not cr.started_at):
            why = cr.reason if cr and cr.reason else "ContainerCreating"
            return _status(400, "BadRequest", f'container "{cname}" in pod "{name}" is waiting to start: {why}')
        attempt = cr.attempt
        if q.get("previous") == "true":
            if attempt == 0:
                return _status(400, "BadRequest", f'previous terminated container "{cname}" in pod "{name}" not found')
            attempt -= 1
        path = self.records.log_path(rec.uid, cname, attempt)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            data = b""
        if "tailLines" in q:
            data = tail_lines(data, int(q["tailLines"]))
        if "limitBytes" in q:
            data = data[: int(q["limitBytes"])]
        follow = q.get("follow") == "true" and q.get("previous") != "true"
        if not follow:
            return web.Response(body=data, content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await resp.write(data)
        offset = os.path.getsize(path) if os.path.exists(path) else 0
        try:
            while True:
                await asyncio.sleep(0.2)
                chunk = b""
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        f.seek(offset)
                        chunk = f.read()
                if chunk:
                    offset += len(chunk)
                    await resp.write(chunk)
                    continue
                now = await asyncio.to_thread(self.records.load, rec.uid)
                if now is None or now.containers.get(cname) is None or \
                        now.containers[cname].state is not ContainerState.RUNNING or now.containers[cname].attempt != attempt:
                    break
        except (ConnectionResetError, ConnectionError):
            pass
        return resp
