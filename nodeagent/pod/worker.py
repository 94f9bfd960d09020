"""Pod workers: one asyncio task per pod UID serialises that pod's syncs.

A sync only dispatches: read the desired pod (informer cache) and the local
record, observe (exits the shims wrote, failed liveness probes), ask the pure
`plan` (nodeagent.pod.plan) what to do, let the actor (nodeagent.pod.actor)
do it, and requeue.  It is level-triggered and safe to run twice.  A failed
sync is retried with back-off (nodeagent.pod.backoff); one pod never blocks
another.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from apimachinery.client import Client
from nodeagent.pod import phases, podlog
from nodeagent.pod import plan as P
from nodeagent.pod.actor import PodActor
from nodeagent.pod.backoff import SYNC_RETRY
from nodeagent.pod.events import PodEvents, Recorder
from nodeagent.pod.host import PodHost
from nodeagent.pod.record import ContainerState
from nodeagent.pod.status_manager import StatusManager

log = logging.getLogger("coracle.agent.worker")
Obj = dict[str, Any]


class PodWorkers:
    def __init__(self, host: PodHost, client: Client, desired: Callable[[str], Obj | None], recorder: Recorder):
        self.host, self.client, self.desired = host, client, desired
        self.clock = host.clock
        self.status = StatusManager(client, host.host_ip, self.clock.now)
        self.actor = PodActor(host, client, PodEvents(recorder), self.status, self.update, self.update_after,
                              self.clock)
        self._pending: set[str] = set()
        self._tasks: dict[str, asyncio.Task] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._seen: dict[str, phases.Mark] = {}  # uid -> when first heard of, until its record exists

    # -- dispatch ----------------------------------------------------------
    def update(self, uid: str) -> None:
        """Sync uid soon (coalesced: one pending sync per uid).  Safe to call from any coroutine."""
        self._pending.add(uid)
        if uid not in self._seen:
            self._seen[uid] = phases.mark(self.clock)
        if uid not in self._tasks:
            self._tasks[uid] = asyncio.get_running_loop().create_task(self._run(uid))

    def update_after(self, uid: str, delay: float) -> None:
        """Sync uid after delay seconds; replaces an earlier timer of that uid."""
        old = self._timers.pop(uid, None)
        if old is not None:
            old.cancel()
        self._timers[uid] = asyncio.get_running_loop().call_later(max(delay, 0.0), self.update, uid)

    async def _run(self, uid: str) -> None:
        failures = 0
        try:
            while uid in self._pending:
                self._pending.discard(uid)
                try:
                    await self.sync(uid)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # retried with back-off; the pod never blocks others
                    plog = podlog.for_pod(log, self.host.node_name, uid, self.desired(uid))
                    plog.warning("sync of pod %s failed: %s", uid, e, exc_info=log.isEnabledFor(logging.DEBUG))
                    failures = SYNC_RETRY.next_count(failures)
                    self.update_after(uid, SYNC_RETRY.delay(failures))
        finally:
            self._tasks.pop(uid, None)

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self.actor.stop()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- the sync ----------------------------------------------------------
    async def sync(self, uid: str) -> None:
        """observe -> plan -> act for one pod.  Raises on a failed step; never run concurrently for one uid."""
        host = self.host
        pod = self.desired(uid)
        rec = host.records.load(uid)
        if pod is not None and rec is not None and not rec.finished and not pod["metadata"].get("deletionTimestamp"):
            spec = pod["spec"]
            for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
                cr = rec.containers.get(c["name"])
                if cr is not None and cr.state is ContainerState.RUNNING:
                    await asyncio.to_thread(host.check_exit, rec, c["name"], c)
        obs = P.Observed(record=rec, sandbox_exists=pod is None and host.sandbox.exists(uid),
                         liveness_failed=self.actor.liveness_failed(pod, rec) if pod is not None else frozenset())
        actions = P.plan(pod, obs, self.clock.now())
        await self.actor.act(uid, pod, rec, actions, self._seen.get(uid))
        if pod is None or rec is not None or any(isinstance(a, P.CreateRecord) for a in actions):
            self._seen.pop(uid, None)
