"""The actor: carries out the actions `nodeagent.pod.plan` decided, one pod at
a time, through the host's drivers (nodeagent.pod.host, in threads), the
probers (nodeagent.pod.probes), the status manager and the event recorder.

Every action is safe to repeat: the host's verbs are idempotent and save the
record before each kernel step.  Waits become requeues (`requeue(uid, delay)`),
and a kill for liveness asks for an immediate re-sync (`wake(uid)`), so that
the next plan restarts the container by its policy.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from apimachinery import kinds, meta
from apimachinery.client import Client, StatusError
from nodeagent.pod import phases, podlog
from nodeagent.pod import plan as P
from nodeagent.pod.clock import Clock, rfc3339
from nodeagent.pod.events import Recorder
from nodeagent.pod.host import PodHost
from nodeagent.pod.probes import PodProber, ProbeView, run_handler
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord
from nodeagent.pod.status_manager import StatusManager

log = logging.getLogger("coracle.agent.worker")
PODS = kinds.lookup("", "v1", "pods")
HOOK_TIMEOUT = 30.0
Obj = dict[str, Any]


def grace_period(pod: Obj) -> float:
    grace = pod["metadata"].get("deletionGracePeriodSeconds")
    if grace is None:
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    return float(grace)


def _spec_container(pod: Obj, name: str) -> Obj:
    spec = pod["spec"]
    return next(c for c in (spec.get("initContainers") or []) + (spec.get("containers") or []) if c["name"] == name)


def _all_running(pod: Obj, rec: PodRecord) -> bool:
    cs = pod["spec"].get("containers") or []
    return bool(cs) and all((cr := rec.containers.get(c["name"])) is not None and cr.state is ContainerState.RUNNING
                            for c in cs)


class PodActor:
    def __init__(self, host: PodHost, client: Client, recorder: Recorder, status: StatusManager,
                 wake: Callable[[str], None], requeue: Callable[[str, float], None],
                 clock: Clock) -> None:
        self.host, self.client, self.recorder, self.status = host, client, recorder, status
        self.wake, self.requeue, self.clock = wake, requeue, clock
        self._probers: dict[str, PodProber] = {}

    def _log(self, uid: str, pod: Obj | None, rec: PodRecord | None = None) -> podlog.PodLogger:
        return podlog.for_pod(log, self.host.node_name, uid, pod, rec)

    async def act(self, uid: str, pod: Obj | None, rec: PodRecord | None, actions: list[P.Action],
                  seen: phases.Mark | None = None) -> None:
        """Carry out `actions` in order (`seen`: when the worker first heard of the pod).  Raises on a
        failed step (the worker retries the sync)."""
        wait: float | None = None
        for a in actions:
            if isinstance(a, P.CreateRecord):
                assert pod is not None
                md = pod["metadata"]
                rec = PodRecord(uid=uid, namespace=md.get("namespace", ""), name=md["name"])
                phases.done(rec, "seen", seen or phases.mark(self.clock), self.clock)
                await asyncio.to_thread(self.host.records.save, rec)
                continue
            if isinstance(a, P.Forget):
                self.status.forget(uid)
                self.forget_probes(uid)
            elif isinstance(a, P.TearDown):
                errs = await self.teardown(uid, rec, a.keep_record)
                if a.keep_record and not errs and rec is not None:
                    rec.finished = True
                    await asyncio.to_thread(self.host.records.save, rec)
            elif isinstance(a, P.Terminate):
                assert pod is not None
                await self.terminate(pod, rec)
            elif isinstance(a, (P.WaitUntil, P.PullBackOff)):
                if isinstance(a, P.PullBackOff):
                    assert pod is not None and rec is not None
                    await self._pull_backoff(pod, rec, _spec_container(pod, a.name))
                wait = a.at if wait is None else min(wait, a.at)
            else:
                assert pod is not None and rec is not None
                await self._pod_action(a, pod, rec)
        if wait is not None:
            self.requeue(uid, wait - self.clock.now())

    async def _pod_action(self, a: P.Action, pod: Obj, rec: PodRecord) -> None:
        host = self.host
        if isinstance(a, P.EnsureSandbox):
            await asyncio.to_thread(host.ensure_sandbox, pod, rec)
        elif isinstance(a, P.StartContainer):
            await self._start(pod, rec, _spec_container(pod, a.name))
        elif isinstance(a, P.RestartContainer):
            await asyncio.to_thread(host.prepare_restart, rec, a.name)
            await self._start(pod, rec, _spec_container(pod, a.name))
        elif isinstance(a, P.RefuseContainer):
            cr = rec.containers.setdefault(a.name, ContainerRecord(a.name))
            if (cr.reason, cr.message) != (a.reason, a.message):  # an event when it starts waiting, not per sync
                cr.reason, cr.message = a.reason, a.message
                await asyncio.to_thread(host.records.save, rec)
                self._log(rec.uid, pod, rec).warning("container %s not started: %s: %s", a.name, a.reason, a.message)
                self.recorder.event(pod, "Warning", "Failed", f"Error: {a.message}")
        elif isinstance(a, P.KillContainer):
            self._log(rec.uid, pod, rec).info("killing container %s: liveness probe failed", a.name)
            self.recorder.event(pod, "Normal", "Killing", f"Container {a.name} failed liveness probe, will be restarted")
            await self.stop_container(pod, rec, _spec_container(pod, a.name), grace_period(pod))
            self.wake(rec.uid)
        elif isinstance(a, P.WriteStatus):
            views: dict[str, ProbeView] = {}
            if not rec.finished:
                self._sync_probes(pod, rec)
                views = self.views(pod, rec)
            first_running = phases.LAST_PHASE not in rec.startup and _all_running(pod, rec)
            m = phases.mark(self.clock)
            if await self.status.write(pod, rec, views) and first_running:
                phases.done(rec, phases.LAST_PHASE, m, self.clock)
                # after the status is out, off the start-up path; not fsynced (a diagnostic)
                await asyncio.to_thread(host.records.save, rec, False)
        else:
            raise TypeError(f"unknown action {a!r}")

    async def _start(self, pod: Obj, rec: PodRecord, c: Obj) -> None:
        """Start one container, then its postStart hook; events for what happened."""
        host, uid, name = self.host, rec.uid, c["name"]
        warnings = await asyncio.to_thread(host.start_container, pod, rec, c)
        for w in warnings:
            self.recorder.event(pod, "Warning", "LimitClamped", w)
        cr = rec.containers[name]
        plog = self._log(uid, pod, rec)
        if cr.state is ContainerState.RUNNING:
            plog.info("started container %s (attempt %d, pid %d)", name, cr.attempt, cr.pid)
            self.recorder.event(pod, "Normal", "Started", f"Started container {name}")
            hook = (c.get("lifecycle") or {}).get("postStart")
            if hook and not await run_handler(hook, c, rec.ip, cr.runtime_id, HOOK_TIMEOUT, host.exec_in):
                self.recorder.event(pod, "Warning", "FailedPostStartHook", f"PostStartHook failed for container {name}")
                await self.stop_container(pod, rec, c, grace_period(pod))
        elif cr.state is ContainerState.WAITING and cr.reason:
            plog.warning("container %s not started: %s: %s", name, cr.reason, cr.message)
        if cr.state is ContainerState.WAITING and cr.reason == "ErrImagePull":
            self.recorder.event(pod, "Warning", "Failed", f"Failed to pull image \"{c.get('image')}\": {cr.message}")
            self.recorder.event(pod, "Warning", "Failed", "Error: ErrImagePull")
            self.wake(uid)  # the next sync shows ImagePullBackOff and waits it out
        elif cr.state is ContainerState.WAITING and cr.reason:
            self.recorder.event(pod, "Warning", "Failed", f"Error: {cr.reason}: {cr.message}")
            self.requeue(uid, host.backoff_base)

    async def _pull_backoff(self, pod: Obj, rec: PodRecord, c: Obj) -> None:
        """ErrImagePull becomes ImagePullBackOff while the pull's back-off runs; one BackOff event per wait."""
        cr = rec.containers[c["name"]]
        if cr.reason == "ImagePullBackOff":
            return
        image = c.get("image", "")
        cr.reason, cr.message = "ImagePullBackOff", f"Back-off pulling image \"{image}\": ErrImagePull: {cr.message}"
        await asyncio.to_thread(self.host.records.save, rec)
        self._log(rec.uid, pod, rec).info("back-off pulling image %s for container %s until %s", image, c["name"],
                                          rfc3339(cr.pull_backoff_until))
        self.recorder.event(pod, "Normal", "BackOff", f"Back-off pulling image \"{image}\"")

    # -- probes ------------------------------------------------------------
    def _prober(self, uid: str) -> PodProber:
        p = self._probers.get(uid)
        if p is None:
            p = self._probers[uid] = PodProber(lambda: self.wake(uid), self.host.exec_in)
        return p

    def liveness_failed(self, pod: Obj, rec: PodRecord | None) -> frozenset[str]:
        """Running containers whose liveness probe failed (no prober yet: none)."""
        prober = self._probers.get(pod["metadata"].get("uid", ""))
        if prober is None or rec is None:
            return frozenset()
        spec = pod.get("spec") or {}
        return frozenset(c["name"] for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
                         if (cr := rec.containers.get(c["name"])) is not None and cr.state is ContainerState.RUNNING
                         and prober.view(c, cr.attempt).liveness_failed)

    def _sync_probes(self, pod: Obj, rec: PodRecord) -> None:
        prober = self._prober(rec.uid)
        for c in pod["spec"].get("containers") or []:
            cr = rec.containers.get(c["name"])
            if cr is not None and cr.state is ContainerState.RUNNING:
                prober.ensure(c, cr.attempt, rec.ip, cr.runtime_id)
            else:
                prober.forget(c["name"])

    def views(self, pod: Obj, rec: PodRecord) -> dict[str, ProbeView]:
        prober = self._prober(rec.uid)
        return {c["name"]: prober.view(c, rec.containers[c["name"]].attempt)
                for c in pod["spec"].get("containers") or [] if c["name"] in rec.containers}

    def forget_probes(self, uid: str) -> None:
        p = self._probers.pop(uid, None)
        if p is not None:
            p.stop()

    def stop(self) -> None:
        for uid in list(self._probers):
            self.forget_probes(uid)

    # -- stopping ----------------------------------------------------------
    async def stop_container(self, pod: Obj, rec: PodRecord, c: Obj, grace: float) -> None:
        """preStop hook, SIGTERM, wait out the grace period (the hook's time counts), SIGKILL; returns once
        the exit is recorded (or 5 s after SIGKILL).  The grace period runs on the injected clock's
        monotonic time (a FakeClock's only moves when the test advances it); exits are polled every 50 ms."""
        host, name = self.host, c["name"]
        cr = rec.containers.get(name)
        if cr is None or cr.state is not ContainerState.RUNNING:
            return
        deadline = self.clock.monotonic() + grace
        hook = (c.get("lifecycle") or {}).get("preStop")
        if hook:
            ok = await run_handler(hook, c, rec.ip, cr.runtime_id, max(grace, 0.1), host.exec_in)
            if not ok:
                self.recorder.event(pod, "Warning", "FailedPreStopHook", f"PreStopHook failed for container {name}")
        if not await asyncio.to_thread(host.check_exit, rec, name, c):
            await asyncio.to_thread(host.signal_container, rec, name, signal.SIGTERM)
            if await self._wait_exit(rec, c, deadline):
                return
            await asyncio.to_thread(host.signal_container, rec, name, signal.SIGKILL)
            await self._wait_exit(rec, c, self.clock.monotonic() + 5)

    async def _wait_exit(self, rec: PodRecord, c: Obj, deadline: float) -> bool:
        while True:
            if await asyncio.to_thread(self.host.check_exit, rec, c["name"], c):
                return True
            if rec.containers[c["name"]].state is not ContainerState.RUNNING:
                return True
            if self.clock.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    async def terminate(self, pod: Obj, rec: PodRecord | None) -> None:
        """Graceful stop of every running container at once; tear down; then remove the API object."""
        uid = meta.uid(pod)
        self.forget_probes(uid)
        self._log(uid, pod, rec).info("stopping pod %s (deletion requested, grace %ss)", uid, grace_period(pod))
        if rec is not None and not rec.finished:
            spec = pod["spec"]
            running = [c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
                       if (cr := rec.containers.get(c["name"])) is not None and cr.state is ContainerState.RUNNING]
            grace = grace_period(pod)
            await asyncio.gather(*(self.stop_container(pod, rec, c, grace) for c in running))
        errs = await self.teardown(uid, rec, keep_record=False)
        if errs:
            raise RuntimeError("; ".join(errs))
        assert PODS is not None
        try:
            await self.client.delete(PODS, meta.namespace(pod), meta.name(pod), grace_period=0, uid=uid)
        except StatusError as e:
            if e.code not in (404, 409):
                raise
        self.status.forget(uid)

    async def teardown(self, uid: str, rec: PodRecord | None, keep_record: bool) -> list[str]:
        self.forget_probes(uid)
        plog = self._log(uid, None, rec)
        errs = await asyncio.to_thread(self.host.teardown, uid, rec, keep_record)
        for e in errs:
            plog.warning("teardown of pod %s: %s", uid, e)
        if not errs:
            plog.info("pod %s torn down%s", uid, " (finished; record and logs kept)" if keep_record else "")
        return errs
