"""The Deployment controller against a real API server on loopback.  No
ReplicaSet controller runs: a small simulator in the test copies each
ReplicaSet's spec.replicas into its status (all ready and available) unless
the test freezes it, so rollouts move exactly as the test lets them."""
from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import Client, StatusError  # noqa: E402
from master.controllers.deployment import model as du  # noqa: E402
from master.controllers.deployment.controller import DeploymentController  # noqa: E402

DEPLOY = kinds.lookup("apps", "v1", "deployments")
RS = kinds.lookup("apps", "v1", "replicasets")
assert DEPLOY and RS
Obj = dict[str, Any]


def deployment(name: str, replicas: int = 3, image: str = "busybox:1", **spec: Any) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image, "command": ["sleep", "1d"]}]}},
                     **spec}}


class Sim:
    """Stands in for the ReplicaSet controller: status follows spec, except for frozen names."""

    def __init__(self, client: Client):
        self.client, self.frozen = client, set[str]()

    async def run(self) -> None:
        assert RS is not None
        while True:
            for rs in (await self.client.list(RS, "default"))["items"]:
                if "*" in self.frozen or rs["metadata"]["name"] in self.frozen:
                    continue
                n = rs["spec"]["replicas"]
                want = {"replicas": n, "fullyLabeledReplicas": n, "readyReplicas": n, "availableReplicas": n,
                        "observedGeneration": rs["metadata"]["generation"]}
                if {k: rs["status"].get(k, 0) for k in want} != want:
                    try:
                        await self.client.update(RS, "default", {**rs, "status": want}, "status")
                    except StatusError:
                        pass
            await asyncio.sleep(0.03)


async def wait_for(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    for _ in range(400):
        got = await check()
        if got:
            return got
        await asyncio.sleep(0.025)
    raise AssertionError(f"gave up waiting for {what}")


def owned(rss: list[Obj], d: Obj) -> list[Obj]:
    return [r for r in rss if (du.controller_ref(r) or {}).get("uid") == d["metadata"]["uid"]]


async def replicasets(client: Client, d: Obj) -> dict[int, Obj]:
    assert RS is not None
    return {du.revision(r): r for r in owned((await client.list(RS, "default"))["items"], d)}


def cond(d: Obj, ctype: str) -> Obj:
    return next((c for c in d.get("status", {}).get("conditions") or [] if c["type"] == ctype), {})


def run_with(test: Callable[[Client, DeploymentController, Sim], Awaitable[None]],
             clock: Callable[[], dt.datetime] | None = None) -> None:
    async def main(url: str) -> None:
        client = Client(url)
        ctrl = DeploymentController(client, clock=clock) if clock else DeploymentController(client)
        sim = Sim(client)
        tasks = [asyncio.create_task(ctrl.run()), asyncio.create_task(sim.run())]
        try:
            await test(client, ctrl, sim)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.close()

    with ServerThread() as srv:
        asyncio.run(main(srv.url))


def test_rolling_update_history_undo_scale_and_cleanup() -> None:
    async def body(client: Client, ctrl: DeploymentController, sim: Sim) -> None:
        assert DEPLOY is not None and RS is not None
        d = await client.create(DEPLOY, "default", deployment("web", 4))

        async def complete() -> Obj | None:
            got = await client.get(DEPLOY, "default", "web")
            st = got.get("status", {})
            ok = (st.get("observedGeneration") == got["metadata"]["generation"] and st.get("updatedReplicas") == 4
                  and st.get("replicas") == 4 and st.get("availableReplicas") == 4
                  and cond(got, "Progressing").get("reason") == "NewReplicaSetAvailable")
            return got if ok else None

        got = await wait_for(complete, "the first rollout")
        assert cond(got, "Available")["status"] == "True" and cond(got, "Available")["reason"] == "MinimumReplicasAvailable"
        assert got["metadata"]["annotations"][du.REVISION] == "1"
        first = (await replicasets(client, d))[1]
        h = first["metadata"]["labels"][du.HASH_LABEL]
        assert first["metadata"]["name"] == f"web-{h}"
        assert first["spec"]["selector"]["matchLabels"] == {"app": "web", du.HASH_LABEL: h}
        assert first["spec"]["template"]["metadata"]["labels"][du.HASH_LABEL] == h
        ref = first["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "Deployment" and ref["controller"] and ref["blockOwnerDeletion"]
        assert first["metadata"]["annotations"][du.DESIRED_REPLICAS] == "4"
        assert first["metadata"]["annotations"][du.MAX_REPLICAS] == "5"

        # a new template: a second ReplicaSet, and no step breaks maxSurge 1 / maxUnavailable 1
        sizes: list[tuple[int, int]] = []

        def watch_sizes(_old: Obj, _new: Obj) -> None:
            rss = owned(ctrl.replicasets.list(), d)
            sizes.append((sum(r["spec"]["replicas"] for r in rss), sum(r["status"].get("availableReplicas", 0)
                                                                       for r in rss)))
        ctrl.replicasets.add_handlers(on_update=watch_sizes)
        await client.patch(DEPLOY, "default", "web", {"metadata": {"annotations": {"kubernetes.io/change-cause": "v2"}},
                                                      "spec": {"template": {"spec": {"containers": [
                                                          {"name": "c", "image": "busybox:2"}]}}}}, "strategic")
        got = await wait_for(complete, "the second rollout")
        assert got["metadata"]["annotations"][du.REVISION] == "2"
        rss = await replicasets(client, d)
        assert set(rss) == {1, 2} and rss[1]["spec"]["replicas"] == 0 and rss[2]["spec"]["replicas"] == 4
        assert rss[2]["metadata"]["annotations"]["kubernetes.io/change-cause"] == "v2"
        assert sizes and max(s for s, _ in sizes) <= 5 and min(a for _, a in sizes) >= 3

        # kubectl rollout undo: the JSON patch it sends, with revision 1's template
        tmpl = rss[1]["spec"]["template"]
        del tmpl["metadata"]["labels"][du.HASH_LABEL]
        await client.patch(DEPLOY, "default", "web", [
            {"op": "replace", "path": "/spec/template", "value": tmpl},
            {"op": "replace", "path": "/metadata/annotations", "value": {du.REVISION: "2"}}], "json")
        got = await wait_for(complete, "the rollback")
        assert got["metadata"]["annotations"][du.REVISION] == "3"
        rss = await replicasets(client, d)
        assert set(rss) == {2, 3} and rss[3]["metadata"]["name"] == first["metadata"]["name"]
        assert rss[3]["metadata"]["annotations"][du.REVISION_HISTORY] == "1"
        assert rss[3]["spec"]["replicas"] == 4 and rss[2]["spec"]["replicas"] == 0

        # kubectl scale: the one active ReplicaSet takes the count, annotations follow
        await client.patch(DEPLOY, "default", "web", {"spec": {"replicas": 6}}, subresource="scale")

        async def scaled() -> bool:
            r = (await replicasets(client, d))[3]
            return r["spec"]["replicas"] == 6 and r["metadata"]["annotations"][du.DESIRED_REPLICAS] == "6"
        await wait_for(scaled, "scale to 6")

        # revisionHistoryLimit 0: the drained ReplicaSet goes
        await client.patch(DEPLOY, "default", "web", {"spec": {"revisionHistoryLimit": 0}})
        await wait_for(lambda: _only(client, d, {3}), "cleanup of old revisions")

    run_with(body)


async def _only(client: Client, d: Obj, revisions: set[int]) -> bool:
    return set(await replicasets(client, d)) == revisions


def test_recreate_scales_down_before_creating() -> None:
    async def body(client: Client, ctrl: DeploymentController, sim: Sim) -> None:
        assert DEPLOY is not None and RS is not None
        d = await client.create(DEPLOY, "default", deployment("rec", 2, strategy={"type": "Recreate"}))
        first = await wait_for(lambda: _rs_at(client, d, 1, 2, available=2), "revision 1 at 2 replicas")
        sim.frozen.add(first["metadata"]["name"])  # its pods "keep running"
        await client.patch(DEPLOY, "default", "rec", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "strategic")
        await wait_for(lambda: _rs_at(client, d, 1, 0), "revision 1 scaled to 0")
        await asyncio.sleep(0.3)
        assert set(await replicasets(client, d)) == {1}  # nothing new while old pods run
        sim.frozen.clear()
        await wait_for(lambda: _rs_at(client, d, 2, 2), "revision 2 created at full size")

    run_with(body)


async def _rs_at(client: Client, d: Obj, revision: int, replicas: int, available: int | None = None) -> Obj | None:
    r = (await replicasets(client, d)).get(revision)
    if r is None or r["spec"]["replicas"] != replicas:
        return None
    return r if available is None or r["status"].get("availableReplicas", 0) == available else None


def test_adoption_release_and_pause() -> None:
    async def body(client: Client, ctrl: DeploymentController, sim: Sim) -> None:
        assert DEPLOY is not None and RS is not None
        spec = deployment("adopt", 2)["spec"]
        orphan = {"metadata": {"name": "adopt-orphan", "labels": {"app": "adopt"}},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "adopt"}}, "template": spec["template"]}}
        await client.create(RS, "default", orphan)
        d = await client.create(DEPLOY, "default", deployment("adopt", 2))
        got = await wait_for(lambda: _rs_at(client, d, 1, 2), "the orphan adopted as revision 1")
        assert got["metadata"]["name"] == "adopt-orphan"
        assert len((await client.list(RS, "default"))["items"]) == 1
        # a label change takes it out of the selector: released, and a new ReplicaSet made
        await client.patch(RS, "default", "adopt-orphan", {"metadata": {"labels": {"app": "other"}}})

        async def released() -> bool:
            r = await client.get(RS, "default", "adopt-orphan")
            return not r["metadata"].get("ownerReferences")
        await wait_for(released, "release")
        await wait_for(lambda: _rs_at(client, d, 1, 2), "a fresh revision 1")
        # paused: a template change makes no ReplicaSet; resume rolls it out
        await client.patch(DEPLOY, "default", "adopt", {"spec": {"paused": True}})

        async def paused() -> bool:
            return cond(await client.get(DEPLOY, "default", "adopt"), "Progressing").get("reason") == "DeploymentPaused"
        await wait_for(paused, "the DeploymentPaused condition")
        await client.patch(DEPLOY, "default", "adopt", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:3"}]}}}}, "strategic")
        await asyncio.sleep(0.3)
        assert set(await replicasets(client, d)) == {1}
        await client.patch(DEPLOY, "default", "adopt", {"spec": {"paused": False}})
        await wait_for(lambda: _rs_at(client, d, 2, 2), "revision 2 after resume")

    run_with(body)


def test_progress_deadline_exceeded() -> None:
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]

    async def body(client: Client, ctrl: DeploymentController, sim: Sim) -> None:
        assert DEPLOY is not None
        sim.frozen.add("*")
        d = await client.create(DEPLOY, "default", deployment("slow", 2, progressDeadlineSeconds=30))
        await wait_for(lambda: _rs_at(client, d, 1, 2), "revision 1")  # never becomes available

        async def reason() -> str:
            return cond(await client.get(DEPLOY, "default", "slow"), "Progressing").get("reason", "")
        assert await wait_for(reason, "Progressing") == "NewReplicaSetCreated"
        now[0] += dt.timedelta(seconds=31)
        ctrl.queue.add("default/slow")
        await wait_for(lambda: _is(reason, "ProgressDeadlineExceeded"), "ProgressDeadlineExceeded")
        got = await client.get(DEPLOY, "default", "slow")
        assert cond(got, "Progressing")["status"] == "False"
        assert cond(got, "Available")["reason"] == "MinimumReplicasUnavailable"

    run_with(body, clock=lambda: now[0])


async def _is(f: Callable[[], Awaitable[str]], want: str) -> bool:
    return await f() == want


def test_hash_collision_bumps_collision_count() -> None:
    async def body(client: Client, ctrl: DeploymentController, sim: Sim) -> None:
        assert DEPLOY is not None and RS is not None
        d = await client.create(DEPLOY, "default", deployment("col", 1, paused=True))
        taken = f"col-{du.template_hash(d['spec']['template'], None)}"
        other = deployment("other", 1)["spec"]
        await client.create(RS, "default", {"metadata": {"name": taken, "labels": {"app": "other"}}, "spec": other})
        await client.patch(DEPLOY, "default", "col", {"spec": {"paused": False}})
        got = await wait_for(lambda: _rs_at(client, d, 1, 1), "a ReplicaSet under another name")
        assert got["metadata"]["name"] == f"col-{du.template_hash(d['spec']['template'], 1)}" != taken
        assert (await client.get(DEPLOY, "default", "col"))["status"]["collisionCount"] == 1
        assert not (await client.get(RS, "default", taken))["metadata"].get("ownerReferences")

    run_with(body)


def test_scaling_mid_rollout_is_proportional() -> None:
    async def body(client: Client, ctrl: DeploymentController, sim: Sim) -> None:
        assert DEPLOY is not None
        d = await client.create(DEPLOY, "default", deployment("prop", 10))
        await wait_for(lambda: _rs_at(client, d, 1, 10, available=10), "revision 1 available")
        sim.frozen.add("*")  # the rollout stalls: no new pod becomes available
        await client.patch(DEPLOY, "default", "prop", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "busybox:2"}]}}}}, "strategic")
        # 13 pods at most, 8 available at least: the old one gives 2, the new one takes 3 + 2
        await wait_for(lambda: _rs_at(client, d, 2, 5), "revision 2 at maxSurge")
        await wait_for(lambda: _rs_at(client, d, 1, 8), "revision 1 down by maxUnavailable")
        await client.patch(DEPLOY, "default", "prop", {"spec": {"replicas": 20}}, subresource="scale")

        async def spread() -> dict[int, Obj] | None:
            rss = await replicasets(client, d)
            sizes = [r["spec"]["replicas"] for r in rss.values()]
            if sum(sizes) != 25 or any(r["metadata"]["annotations"][du.DESIRED_REPLICAS] != "20" for r in rss.values()):
                return None
            return rss
        rss = await wait_for(spread, "20 + 5 surge spread over both ReplicaSets")
        assert (rss[1]["spec"]["replicas"], rss[2]["spec"]["replicas"]) == (15, 10)  # 12 more spread 8:5
        assert all(r["metadata"]["annotations"][du.MAX_REPLICAS] == "25" for r in rss.values())

    run_with(body)
