"""Container probes and lifecycle hooks: liveness, readiness and startup
probes (exec, httpGet, tcpSocket) and the postStart/preStop handlers.

Pure parts: `ProbeSpec.of` (a container's probe with upstream's defaults) and
`record` (thresholds: successThreshold consecutive successes flip a result to
True, failureThreshold consecutive failures to False).  Driving parts:
`run_handler` (one attempt, bounded by timeoutSeconds; network probes connect
to the POD IP, reachable from the host over the node bridge) and `PodProber`,
one asyncio task per (container instance, probe kind) that calls back the pod
worker (nodeagent.pod.worker) when a result changes.  Exec handlers run
`runc exec` through `runc_exec`, the one function to switch to Runc.exec.
"""
from __future__ import annotations

import asyncio
import subprocess
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

import httpx

Obj = dict[str, Any]
KINDS = ("startupProbe", "livenessProbe", "readinessProbe")
# exec handler: (runtime id, argv, timeout seconds) -> exit code (non-zero also on timeout)
ExecFn = Callable[[str, list[str], float], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    kind: str
    handler: Obj
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def of(cls, c: Obj, kind: str) -> ProbeSpec | None:
        p = c.get(kind)
        if not p:
            return None
        return cls(kind, p, float(p.get("initialDelaySeconds", 0)), float(p.get("periodSeconds", 10) or 10),
                   float(p.get("timeoutSeconds", 1) or 1), int(p.get("successThreshold", 1) or 1),
                   int(p.get("failureThreshold", 3) or 3))


@dataclass(frozen=True, slots=True)
class ProbeState:
    result: bool            # startup/readiness start False, liveness starts True (as kubelet)
    successes: int = 0
    failures: int = 0


def initial(kind: str) -> ProbeState:
    return ProbeState(result=kind == "livenessProbe")


def record(spec: ProbeSpec, st: ProbeState, ok: bool) -> ProbeState:
    """The state after one attempt: thresholds count consecutive equal outcomes."""
    if ok:
        n = st.successes + 1
        return replace(st, successes=n, failures=0, result=True if n >= spec.success_threshold else st.result)
    n = st.failures + 1
    return replace(st, failures=n, successes=0, result=False if n >= spec.failure_threshold else st.result)


def resolve_port(port: Any, c: Obj) -> int:
    """A number, or the name of one of the container's ports."""
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ValueError(f"unknown port name {port!r}")


async def runc_exec(root: str, rid: str, argv: list[str], timeout: float, binary: str = "runc") -> int:
    """`runc exec` one command; its exit code, 1 on timeout or runc error."""
    proc = await asyncio.create_subprocess_exec(binary, "--root", root, "exec", rid, *argv,
                                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return 1


async def run_handler(handler: Obj, c: Obj, pod_ip: str, rid: str, timeout: float, exec_fn: ExecFn) -> bool:
    """One attempt of an exec/httpGet/tcpSocket handler; any error is a failure."""
    try:
        if "exec" in handler:
            return await exec_fn(rid, list(handler["exec"].get("command") or []), timeout) == 0
        if "tcpSocket" in handler:
            t = handler["tcpSocket"]
            _r, w = await asyncio.wait_for(
                asyncio.open_connection(t.get("host") or pod_ip, resolve_port(t["port"], c)), timeout)
            w.close()
            return True
        if "httpGet" in handler:
            h = handler["httpGet"]
            scheme = str(h.get("scheme", "HTTP")).lower()
            url = f"{scheme}://{h.get('host') or pod_ip}:{resolve_port(h['port'], c)}{h.get('path') or '/'}"
            headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.32")
            async with httpx.AsyncClient(verify=False, timeout=timeout) as cl:
                r = await cl.get(url, headers=headers)
            return 200 <= r.status_code < 400
    except (OSError, ValueError, asyncio.TimeoutError, httpx.HTTPError):
        return False
    return False


@dataclass(frozen=True, slots=True)
class ProbeView:
    """What status and the worker read: readiness, startup done, liveness failed."""
    ready: bool = True
    started: bool = True
    liveness_failed: bool = False


class PodProber:
    """The probe tasks of one pod.  `ensure` is idempotent; results reset per container instance."""

    def __init__(self, on_change: Callable[[], None], exec_fn: ExecFn) -> None:
        self.on_change, self.exec_fn = on_change, exec_fn
        self._tasks: dict[tuple[str, str], tuple[int, asyncio.Task]] = {}
        self._state: dict[tuple[str, str], tuple[int, ProbeState]] = {}

    def ensure(self, c: Obj, attempt: int, pod_ip: str, rid: str) -> None:
        """Probe tasks for a running container instance (attempt); replaces those of an older one."""
        for kind in KINDS:
            spec = ProbeSpec.of(c, kind)
            key = (c["name"], kind)
            cur = self._tasks.get(key)
            if spec is None or (cur and cur[0] == attempt):
                continue
            if cur:
                cur[1].cancel()
            self._state[key] = (attempt, initial(kind))
            self._tasks[key] = (attempt, asyncio.get_running_loop().create_task(
                self._loop(c, spec, attempt, pod_ip, rid)))

    def forget(self, name: str) -> None:
        """The container is not running: stop its probes."""
        for kind in KINDS:
            t = self._tasks.pop((name, kind), None)
            if t:
                t[1].cancel()
            self._state.pop((name, kind), None)

    def _get(self, name: str, kind: str, attempt: int) -> ProbeState | None:
        s = self._state.get((name, kind))
        return s[1] if s and s[0] == attempt else None

    def view(self, c: Obj, attempt: int) -> ProbeView:
        name = c["name"]
        started = True
        if c.get("startupProbe"):
            s = self._get(name, "startupProbe", attempt)
            started = bool(s and s.result)
        ready = started
        if ready and c.get("readinessProbe"):
            r = self._get(name, "readinessProbe", attempt)
            ready = bool(r and r.result)
        live = self._get(name, "livenessProbe", attempt)
        failed = bool(c.get("livenessProbe")) and live is not None and not live.result
        startup = self._get(name, "startupProbe", attempt)
        if startup is not None and not startup.result and startup.failures >= (ProbeSpec.of(c, "startupProbe")
                                                                               or ProbeSpec("", {})).failure_threshold:
            failed = True  # a startup probe that gives up kills the container as liveness does
        return ProbeView(ready, started, failed)

    async def _loop(self, c: Obj, spec: ProbeSpec, attempt: int, pod_ip: str, rid: str) -> None:
        name = c["name"]
        await asyncio.sleep(spec.initial_delay)
        while True:
            gated = spec.kind != "startupProbe" and c.get("startupProbe") and not self.view(c, attempt).started
            if not gated:
                ok = await run_handler(spec.handler, c, pod_ip, rid, spec.timeout, self.exec_fn)
                old = self._get(name, spec.kind, attempt)
                if old is None:
                    return
                new = record(spec, old, ok)
                self._state[(name, spec.kind)] = (attempt, new)
                if new.result != old.result or (spec.kind == "startupProbe" and not ok
                                                 and new.failures >= spec.failure_threshold):
                    self.on_change()
                if spec.kind == "startupProbe" and new.result:
                    return  # startup succeeded: it never runs again for this instance
            await asyncio.sleep(spec.period)

    def stop(self) -> None:
        for _a, t in self._tasks.values():
            t.cancel()
        self._tasks.clear()
        self._state.clear()
