"""Pod workers: one asyncio task per pod UID serialises that pod's syncs.

`sync(uid)` is level-triggered and safe to run twice: it reads the desired
pod (informer cache) and the local record, and moves the node towards it:
build, start, notice exits, restart by policy with back-off, terminate
gracefully on deletion, tear down, and write the status only when it
changed.  Kernel work runs in threads through `PodHost`.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any, Callable

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from nodeagent.pod.host import PodHost
from nodeagent.pod.record import ContainerState, PodRecord
from nodeagent.pod.probes import PodProber, ProbeView, run_handler
from nodeagent.pod.status import init_done, init_policy, pod_status, should_restart

log = logging.getLogger("coracle.agent.worker")
PODS = kinds.lookup("", "v1", "pods")
EVENTS = kinds.lookup("", "v1", "events")
HOOK_TIMEOUT = 30.0
Obj = dict[str, Any]


class PodWorkers:
    def __init__(self, host: PodHost, client: Client, desired: Callable[[str], Obj | None]):
        self.host, self.client, self.desired = host, client, desired
        self._pending: set[str] = set()
        self._tasks: dict[str, asyncio.Task] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._probers: dict[str, PodProber] = {}
        # uid -> (last status written, resourceVersion of the pod it was written over): while the
        # informer still shows that resourceVersion it has not seen the write yet
        self._posted: dict[str, tuple[Obj, str]] = {}

    # -- dispatch ----------------------------------------------------------
    def update(self, uid: str) -> None:
        self._pending.add(uid)
        if uid not in self._tasks:
            self._tasks[uid] = asyncio.get_running_loop().create_task(self._run(uid))

    def update_after(self, uid: str, delay: float) -> None:
        old = self._timers.pop(uid, None)
        if old is not None:
            old.cancel()
        self._timers[uid] = asyncio.get_running_loop().call_later(max(delay, 0.0), self.update, uid)

    async def _run(self, uid: str) -> None:
        delay = 0.2
        try:
            while uid in self._pending:
                self._pending.discard(uid)
                try:
                    await self.sync(uid)
                    delay = 0.2
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # retried with back-off; the pod never blocks others
                    log.warning("sync of pod %s failed: %s", uid, e, exc_info=log.isEnabledFor(logging.DEBUG))
                    self.update_after(uid, delay)
                    delay = min(delay * 2, 10.0)
        finally:
            self._tasks.pop(uid, None)

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for uid in list(self._probers):
            self._forget_probes(uid)
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- the sync ----------------------------------------------------------
    async def sync(self, uid: str) -> None:
        host = self.host
        pod = self.desired(uid)
        rec = host.records.load(uid)
        if pod is None:
            if rec is not None or host.sandbox.exists(uid):
                await self._teardown(uid, rec, keep_record=False)
            self._posted.pop(uid, None)
            return
        if pod["metadata"].get("deletionTimestamp"):
            await self._terminate(pod, rec)
            return
        if rec is None:
            md = pod["metadata"]
            rec = PodRecord(uid=uid, namespace=md.get("namespace", ""), name=md["name"])
            await asyncio.to_thread(host.records.save, rec)
        if rec.finished:
            await self._write_status(pod, rec)
            return
        await asyncio.to_thread(host.ensure_sandbox, pod, rec)
        policy = pod["spec"].get("restartPolicy", "Always")
        initialized = True
        for c in pod["spec"].get("initContainers") or []:  # in order, each to completion
            if not init_done(rec.containers.get(c["name"])):
                await self._sync_container(pod, rec, c, init_policy(policy))
            if not init_done(rec.containers.get(c["name"])):
                initialized = False
                break
        if initialized:
            for c in pod["spec"].get("containers") or []:
                await self._sync_container(pod, rec, c, policy)
        self._sync_probes(pod, rec)
        status = pod_status(pod, rec, host.host_ip, time.time(), probes=self._views(pod, rec))
        if status["phase"] in ("Succeeded", "Failed"):
            self._forget_probes(uid)
            errs = await self._teardown(uid, rec, keep_record=True)
            if not errs:
                rec.finished = True
                await asyncio.to_thread(host.records.save, rec)
        await self._write_status(pod, rec)

    async def _sync_container(self, pod: Obj, rec: PodRecord, c: Obj, policy: str) -> None:
        """One container towards running: notice its exit, kill it on a failed liveness probe, restart
        it by policy after its back-off, or start it (then its postStart hook)."""
        host, uid, name = self.host, rec.uid, c["name"]
        cr = rec.containers.get(name)
        if cr is not None and cr.state is ContainerState.RUNNING:
            if self._prober(uid).view(c, cr.attempt).liveness_failed:
                await self.event(pod, "Normal", "Killing", f"Container {name} failed liveness probe, will be restarted")
                await self._stop_container(pod, rec, c, self._grace(pod))
            elif not await asyncio.to_thread(host.check_exit, rec, name, c):
                return
            cr = rec.containers[name]
        now = time.time()
        if cr is not None and cr.state is ContainerState.EXITED:
            if not should_restart(policy, cr.exit_code or 0):
                return
            if cr.backoff_until > now:
                self.update_after(uid, cr.backoff_until - now)
                return
            await asyncio.to_thread(host.prepare_restart, rec, name)
        warnings = await asyncio.to_thread(host.start_container, pod, rec, c)
        for w in warnings:
            await self.event(pod, "Warning", "LimitClamped", w)
        cr = rec.containers[name]
        if cr.state is ContainerState.RUNNING:
            await self.event(pod, "Normal", "Started", f"Started container {name}")
            hook = (c.get("lifecycle") or {}).get("postStart")
            if hook and not await run_handler(hook, c, rec.ip, cr.runtime_id, HOOK_TIMEOUT, host.exec_in):
                await self.event(pod, "Warning", "FailedPostStartHook", f"PostStartHook failed for container {name}")
                await self._stop_container(pod, rec, c, self._grace(pod))
        elif cr.state is ContainerState.WAITING and cr.reason in ("ErrImagePull", "ImagePullBackOff"):
            await self.event(pod, "Warning", "Failed", f"Failed to pull image \"{c.get('image')}\": {cr.message}")
            self.update_after(uid, min(host.backoff_base * 2, 60.0))
        elif cr.state is ContainerState.WAITING and cr.reason:
            await self.event(pod, "Warning", "Failed", f"Error: {cr.reason}: {cr.message}")
            self.update_after(uid, host.backoff_base)

    # -- probes ------------------------------------------------------------
    def _prober(self, uid: str) -> PodProber:
        p = self._probers.get(uid)
        if p is None:
            p = self._probers[uid] = PodProber(lambda: self.update(uid), self.host.exec_in)
        return p

    def _sync_probes(self, pod: Obj, rec: PodRecord) -> None:
        prober = self._prober(rec.uid)
        for c in pod["spec"].get("containers") or []:
            cr = rec.containers.get(c["name"])
            if cr is not None and cr.state is ContainerState.RUNNING:
                prober.ensure(c, cr.attempt, rec.ip, cr.runtime_id)
            else:
                prober.forget(c["name"])

    def _views(self, pod: Obj, rec: PodRecord) -> dict[str, ProbeView]:
        prober = self._prober(rec.uid)
        return {c["name"]: prober.view(c, rec.containers[c["name"]].attempt)
                for c in pod["spec"].get("containers") or [] if c["name"] in rec.containers}

    def _forget_probes(self, uid: str) -> None:
        p = self._probers.pop(uid, None)
        if p is not None:
            p.stop()

    # -- stopping ----------------------------------------------------------
    @staticmethod
    def _grace(pod: Obj) -> float:
        grace = pod["metadata"].get("deletionGracePeriodSeconds")
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        return float(grace)

    async def _stop_container(self, pod: Obj, rec: PodRecord, c: Obj, grace: float) -> None:
        """preStop hook, SIGTERM, wait out the grace period (the hook's time counts), SIGKILL; returns once
        the exit is recorded (or 5 s after SIGKILL)."""
        host, name = self.host, c["name"]
        cr = rec.containers.get(name)
        if cr is None or cr.state is not ContainerState.RUNNING:
            return
        deadline = time.monotonic() + grace
        hook = (c.get("lifecycle") or {}).get("preStop")
        if hook:
            ok = await run_handler(hook, c, rec.ip, cr.runtime_id, max(grace, 0.1), host.exec_in)
            if not ok:
                await self.event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed for container {name}")
        if not await asyncio.to_thread(host.check_exit, rec, name, c):
            await asyncio.to_thread(host.signal_container, rec, name, signal.SIGTERM)
            if await self._wait_exit(rec, c, deadline):
                return
            await asyncio.to_thread(host.signal_container, rec, name, signal.SIGKILL)
            await self._wait_exit(rec, c, time.monotonic() + 5)

    async def _wait_exit(self, rec: PodRecord, c: Obj, deadline: float) -> bool:
        while True:
            if await asyncio.to_thread(self.host.check_exit, rec, c["name"], c):
                return True
            if rec.containers[c["name"]].state is not ContainerState.RUNNING:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def _terminate(self, pod: Obj, rec: PodRecord | None) -> None:
        """Graceful stop of every running container at once; tear down; then remove the API object."""
        uid = meta.uid(pod)
        self._forget_probes(uid)
        if rec is not None and not rec.finished:
            spec = pod["spec"]
            running = [c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
                       if (cr := rec.containers.get(c["name"])) is not None and cr.state is ContainerState.RUNNING]
            grace = self._grace(pod)
            await asyncio.gather(*(self._stop_container(pod, rec, c, grace) for c in running))
        errs = await self._teardown(uid, rec, keep_record=False)
        if errs:
            raise RuntimeError("; ".join(errs))
        assert PODS is not None
        try:
            await self.client.delete(PODS, meta.namespace(pod), meta.name(pod), grace_period=0, uid=uid)
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        self._posted.pop(uid, None)

    async def _teardown(self, uid: str, rec: PodRecord | None, keep_record: bool) -> list[str]:
        self._forget_probes(uid)
        errs = await asyncio.to_thread(self.host.teardown, uid, rec, keep_record)
        for e in errs:
            log.warning("teardown of pod %s: %s", uid, e)
        return errs

    async def _write_status(self, pod: Obj, rec: PodRecord) -> None:
        assert PODS is not None
        uid = meta.uid(pod)
        current = pod.get("status") or {}
        posted, base_rv = self._posted.get(uid, ({}, ""))
        # a stale cache (still the resourceVersion we wrote over): keep transition times from what
        # we wrote and do not write it again; a newer pod whose status someone else changed
        # gets ours written back
        stale = bool(posted) and base_rv == meta.resource_version(pod)
        views = self._views(pod, rec)
        status = pod_status(pod, rec, self.host.host_ip, time.time(), old=posted if stale else current, probes=views)
        if status == current or (stale and status == posted):
            return
        body = dict(pod, status=status)
        for _ in range(5):
            try:
                await self.client.update(PODS, meta.namespace(pod), body, subresource="status")
                self._posted[uid] = (status, meta.resource_version(body))
                return
            except StatusError as e:
                if e.code == 404:
                    return
                if e.code != 409:
                    raise
                fresh = await self.client.get(PODS, meta.namespace(pod), meta.name(pod))
                if meta.uid(fresh) != uid:
                    return
                status = pod_status(fresh, rec, self.host.host_ip, time.time(), old=fresh.get("status") or {},
                                    probes=views)
                body = dict(fresh, status=status)

    async def event(self, pod: Obj, etype: str, reason: str, message: str) -> None:
        assert EVENTS is not None
        now = meta.now_rfc3339()
        ns = meta.namespace(pod)
        ev = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": f"{meta.name(pod)}.", "namespace": ns},
              "involvedObject": {"kind": "Pod", "namespace": ns, "name": meta.name(pod), "uid": meta.uid(pod),
                                 "apiVersion": "v1"},
              "reason": reason, "message": message, "type": etype,
              "source": {"component": "kubelet", "host": self.host.node_name},
              "firstTimestamp": now, "lastTimestamp": now, "count": 1,
              "reportingComponent": "kubelet", "reportingInstance": self.host.node_name}
        try:
            await self.client.create(EVENTS, ns, ev)
        except (StatusError, OSError) as e:
            log.debug("event not recorded: %s", e)
