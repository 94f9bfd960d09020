"""The scheduling loop: informers for pods and nodes, a work queue of
unscheduled pods, `fit.place` to choose, `pods/binding` to bind.

A pod that fits nowhere gets `PodScheduled=False` (reason Unschedulable) and
an event, and is tried again when a node changes or after a back-off.  Binds
not yet seen in the pod informer are kept as "assumed" so a burst of pods does
not overcommit a node.
"""
from __future__ import annotations

import asyncio
import logging

from apimachinery import kinds, logs, meta
from apimachinery.client import Client, StatusError
from apimachinery.events import EventRecorder
from apimachinery.informer import Informer
from apimachinery.workqueue import WorkQueue
from master.scheduler import fit

log = logging.getLogger("coracle.scheduler")
PODS = kinds.lookup("", "v1", "pods")
NODES = kinds.lookup("", "v1", "nodes")
NAME = "default-scheduler"


def _pending(pod: dict) -> bool:
    spec = pod.get("spec", {})
    return (not spec.get("nodeName") and spec.get("schedulerName", NAME) == NAME
            and not pod["metadata"].get("deletionTimestamp")
            and pod.get("status", {}).get("phase", "Pending") == "Pending")


class Scheduler:
    def __init__(self, client: Client, recorder: EventRecorder | None = None):
        """`recorder`: the scheduler's event recorder (default: one of its own, closed when run ends)."""
        assert PODS and NODES
        self.client = client
        self._own_recorder = recorder is None
        self.recorder = recorder if recorder is not None else EventRecorder(client, NAME)
        self.pods = Informer(client, PODS)
        self.nodes = Informer(client, NODES)
        self.queue = WorkQueue(base_delay=0.5, max_delay=30.0)
        self.assumed: dict[str, dict] = {}   # pod key -> pod with nodeName set, until the informer shows it
        self.pods.add_handlers(on_add=self._pod_changed, on_update=lambda _o, n: self._pod_changed(n))
        self.nodes.add_handlers(on_add=lambda _n: self._requeue_all(), on_update=self._node_changed)

    def _pod_changed(self, pod: dict) -> None:
        key = meta.key(pod)
        if pod.get("spec", {}).get("nodeName"):
            self.assumed.pop(key, None)
        elif _pending(pod):
            self.queue.add(key)

    def _node_changed(self, old: dict, new: dict) -> None:
        if old.get("spec") != new.get("spec") or meta.get_condition(old, "Ready") != meta.get_condition(new, "Ready") \
                or old.get("status", {}).get("allocatable") != new.get("status", {}).get("allocatable"):
            self._requeue_all()

    def _requeue_all(self) -> None:
        for pod in self.pods.list():
            if _pending(pod):
                self.queue.add(meta.key(pod))

    async def run(self, workers: int = 1) -> None:
        tasks = [asyncio.create_task(self.pods.run()), asyncio.create_task(self.nodes.run())]
        try:
            await self.pods.synced.wait()
            await self.nodes.synced.wait()
            self._requeue_all()
            await asyncio.gather(*(self._worker() for _ in range(workers)))
        finally:
            for t in tasks:
                t.cancel()
            if self._own_recorder:
                await self.recorder.close()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                await self.schedule_one(key)
            except Exception as e:  # requeue with back-off; never let the loop die
                log.warning("scheduling %s failed: %s", key, e)
                self.queue.add_rate_limited(key)
            finally:
                self.queue.done(key)

    async def schedule_one(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None or not _pending(pod) or key in self.assumed:
            self.queue.forget(key)
            return
        all_pods = self.pods.list() + list(self.assumed.values())
        node, why = fit.place(pod, self.nodes.list(), fit.usage_by_node(all_pods))
        ns, name = meta.namespace(pod), meta.name(pod)
        if node is None:
            await self._unschedulable(pod, why)
            self.queue.add_rate_limited(key)  # back-off grows until the pod fits (forget below)
            return
        self.queue.forget(key)
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name, "namespace": ns},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        assert PODS is not None
        assumed = dict(pod, spec=dict(pod["spec"], nodeName=node))
        self.assumed[key] = assumed
        try:
            await self.client.post_subresource(PODS, ns, name, "binding", binding)
        except StatusError as e:
            self.assumed.pop(key, None)
            if e.code in (404, 409):
                return  # deleted or bound by someone else
            raise
        log.info("bound to node %s", node, extra=logs.pod_fields(ns, name, meta.uid(pod)))
        self.recorder.event(pod, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}")

    async def _unschedulable(self, pod: dict, why: str) -> None:
        cond = meta.get_condition(pod, "PodScheduled")
        if cond and cond.get("status") == "False" and cond.get("message") == why:
            return  # nothing changed: no write, no event
        assert PODS is not None
        conditions = meta.set_condition(list(pod.get("status", {}).get("conditions") or []), "PodScheduled",
                                        "False", "Unschedulable", why)
        try:
            await self.client.patch(PODS, meta.namespace(pod), meta.name(pod),
                                    {"status": {"conditions": conditions}}, "merge", "status")
        except StatusError as e:
            if e.code != 404:
                raise
            return
        self.recorder.event(pod, "Warning", "FailedScheduling", why)
