"""The Deployment controller's pure parts: the pod-template hash and template
equality, fenceposts with upstream's rounding, revision annotations, the
rolling-update, proportional-scaling, Recreate and cleanup decisions, and
the status with its Available and Progressing conditions."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from master.controllers.deployment import rollout as plan
from master.controllers.deployment import status as ds
from master.controllers.deployment import model as du

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
Obj = dict[str, Any]


def deploy(replicas: int = 10, surge: Any = "25%", unavailable: Any = "25%", strategy: str = "RollingUpdate",
           generation: int = 1, status: Obj | None = None, **spec: Any) -> Obj:
    st: Obj = {"type": strategy}
    if strategy == "RollingUpdate":
        st["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": generation},
            "spec": {"replicas": replicas, "strategy": st, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}},
                     "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, **spec},
            "status": status or {}}


def rs(name: str, replicas: int, available: int | None = None, created: str = "2026-01-01T00:00:00Z",
       revision: int | None = None, desired: int | None = None, max_replicas: int | None = None,
       actual: int | None = None, image: str = "busybox:1") -> Obj:
    ann = {}
    if revision is not None:
        ann[du.REVISION] = str(revision)
    if desired is not None:
        ann[du.DESIRED_REPLICAS] = str(desired)
    if max_replicas is not None:
        ann[du.MAX_REPLICAS] = str(max_replicas)
    avail = replicas if available is None else available
    return {"metadata": {"name": name, "uid": f"{name}-uid", "creationTimestamp": created, "annotations": ann,
                         "generation": 1},
            "spec": {"replicas": replicas, "template": {
                "metadata": {"labels": {"app": "web", du.HASH_LABEL: name}},
                "spec": {"containers": [{"name": "c", "image": image}]}}},
            "status": {"replicas": replicas if actual is None else actual, "readyReplicas": avail,
                       "availableReplicas": avail, "observedGeneration": 1}}


def test_hash_is_upstream_shaped_stable_and_moved_by_collision_count() -> None:
    t = deploy()["spec"]["template"]
    h = du.template_hash(t, None)
    assert h == du.template_hash({**t, "metadata": {"labels": {"app": "web"}, "annotations": {}}}, None)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert du.template_hash(t, 1) != h and du.template_hash(t, 1) != du.template_hash(t, 2)
    assert du.safe_encode("0123456789") == "456789bcdf"
    assert du.fnv32a(b"") == 0x811C9DC5 and du.fnv32a(b"a") == 0xE40C292C


def test_equal_ignore_hash() -> None:
    a = rs("web-abc", 1)["spec"]["template"]
    b = deploy()["spec"]["template"]
    assert du.equal_ignore_hash(a, b)
    b["metadata"]["creationTimestamp"] = None  # what a Go client marshals into a template
    assert du.equal_ignore_hash(a, b)
    b["spec"]["containers"][0]["image"] = "busybox:2"
    assert not du.equal_ignore_hash(a, b)


@pytest.mark.parametrize("replicas,surge,unavail,want", [
    (10, "25%", "25%", (3, 2)),     # surge rounds up, unavailable down
    (4, "25%", "25%", (1, 1)),
    (3, "0%", "10%", (0, 1)),       # both round to 0: unavailable becomes 1
    (5, 2, 0, (2, 0)),
    (1, "100%", "50%", (1, 0)),
])
def test_fenceposts(replicas: int, surge: Any, unavail: Any, want: tuple[int, int]) -> None:
    assert du.fenceposts(deploy(replicas, surge, unavail)) == want


def test_max_unavailable_is_capped_and_zero_for_recreate() -> None:
    assert du.max_unavailable(deploy(2, 0, 5)) == 2
    assert du.max_unavailable(deploy(0, 1, 1)) == 0
    assert du.max_unavailable(deploy(3, strategy="Recreate")) == 0 and du.max_surge(deploy(3, strategy="Recreate")) == 0


def test_new_rs_annotations_revision_history_and_copy() -> None:
    d = deploy(3)
    d["metadata"]["annotations"] = {"kubernetes.io/change-cause": "v2", du.LAST_APPLIED: "{}", du.REVISION: "9"}
    r = rs("web-a", 0)
    assert du.set_new_rs_annotations(d, r, 1, exists=False)
    ann = r["metadata"]["annotations"]
    assert ann == {"kubernetes.io/change-cause": "v2", du.REVISION: "1", du.DESIRED_REPLICAS: "3",
                   du.MAX_REPLICAS: "4"}
    assert not du.set_new_rs_annotations(d, r, 1, exists=True)  # nothing new: no write
    assert du.set_new_rs_annotations(d, r, 3, exists=True)     # a rollback to this template
    assert ann[du.REVISION] == "3" and ann[du.REVISION_HISTORY] == "1"
    du.set_new_rs_annotations(d, r, 5, exists=True)
    assert ann[du.REVISION] == "5" and ann[du.REVISION_HISTORY] == "1,3"
    ann[du.REVISION_HISTORY] = ",".join(["1234567"] * 250)  # 1999 chars: the oldest entries go
    du.set_new_rs_annotations(d, r, 6, exists=True)
    assert ann[du.REVISION_HISTORY].endswith(",5") and len(ann[du.REVISION_HISTORY]) <= 2000


def test_rolling_update_steps() -> None:
    d = deploy(10)
    old, new = rs("old", 10, revision=1), rs("new", 0, created="2026-01-02T00:00:00Z")
    assert plan.find_new(d, [old, new]) is not None
    assert plan.reconcile_new(d, [old, new], new) == 3          # 10 + 25% surge
    new = rs("new", 3, available=0, created="2026-01-02T00:00:00Z")
    # 13 pods, 8 must stay available, 3 new ones unavailable: 2 old ones may go
    assert plan.reconcile_old(d, [old, new], [old], new) == [plan.Scale("old", 8)]
    assert plan.reconcile_new(d, [rs("old", 8), new], new) == 5
    # unhealthy old replicas go first, then available ones, oldest ReplicaSet first
    older = rs("older", 2, available=0, created="2025-12-01T00:00:00Z")
    new = rs("new", 3, created="2026-01-02T00:00:00Z")
    ops = plan.reconcile_old(d, [older, rs("old", 8), new], [older, rs("old", 8)], new)
    assert ops == [plan.Scale("older", 0), plan.Scale("old", 5)]
    lagging = rs("old", 3, available=4)  # status not caught up with a scale-down: never scaled back up
    d4, new = deploy(4, surge=1, unavailable=1), rs("new", 2, created="2026-01-02T00:00:00Z")
    # of its 4 available pods only 3 stay (its spec): 3 + 2 new, so 2 may go and 3 stay available
    assert plan.reconcile_old(d4, [lagging, new], [lagging], new) == [plan.Scale("old", 1)]
    # the sync after a scale-down of old to 2, before its status shows it: old's 3 available count as
    # 2, and with 1 new one available nothing more may go (counting 3 took old to 1: 2 available)
    lagging, new = rs("old", 2, available=3), rs("new", 2, available=1, created="2026-01-02T00:00:00Z")
    assert plan.reconcile_old(d4, [lagging, new], [lagging], new) == []
    assert plan.reconcile_new(d, [rs("new", 10)], rs("new", 10)) is None
    assert plan.reconcile_new(d, [rs("new", 12)], rs("new", 12)) == 10


def test_scaling_event_and_proportional_scale() -> None:
    d = deploy(20)
    old = rs("old", 8, revision=1, desired=10, max_replicas=13)
    new = rs("new", 5, revision=2, desired=10, max_replicas=13, created="2026-01-02T00:00:00Z")
    assert plan.is_scaling_event(d, new, [old]) and not plan.is_scaling_event(deploy(10), new, [old])
    ops = plan.scale(d, new, [old])  # 25 allowed: 12 more spread 8:5
    assert {o.name: o.replicas for o in ops} == {"old": 15, "new": 10} and all(o.refresh for o in ops)
    ops = plan.scale(deploy(5), new, [old])  # down to 5+2 surge: older first on ties, leftovers to the largest
    sizes = {o.name: o.replicas for o in ops}
    assert sum(sizes.values()) == 7 and sizes["old"] >= sizes["new"]
    assert {o.name: o.replicas for o in plan.scale(deploy(0), new, [old])} == {"old": 0, "new": 0}
    # one active ReplicaSet takes the whole count; none active: the newest
    assert plan.scale(deploy(4), rs("new", 2), [rs("old", 0)]) == [plan.Scale("new", 4)]
    assert plan.scale(deploy(4), None, [rs("a", 0), rs("b", 0, created="2026-02-01T00:00:00Z")]) == [plan.Scale("b", 4)]
    # a saturated new ReplicaSet drains the old ones
    sat = rs("new", 4, desired=4)
    assert plan.scale(deploy(4), sat, [rs("o1", 1), rs("o2", 2)]) == [plan.Scale("o1", 0), plan.Scale("o2", 0)]


def test_recreate_waits_for_old_pods() -> None:
    new, old = rs("new", 0), rs("old", 0, actual=0)
    pod = {"metadata": {"ownerReferences": [{"uid": "old-uid", "controller": True}]}, "status": {"phase": "Running"}}
    assert plan.old_pods_running(new, [old], [pod])
    assert not plan.old_pods_running(new, [old], [{**pod, "status": {"phase": "Succeeded"}}])
    assert plan.old_pods_running(new, [rs("old", 0, actual=1)], [])
    assert not plan.old_pods_running(None, [old], [])


def test_cleanup_victims() -> None:
    d = deploy(3, revisionHistoryLimit=1)
    olds = [rs("r1", 0, revision=1), rs("r2", 0, revision=2), rs("r3", 0, revision=3), rs("busy", 1, revision=0)]
    assert [r["metadata"]["name"] for r in plan.cleanup_victims(d, olds)] == ["r1", "r2"]  # busy holds replicas
    unobserved = rs("r0", 0, revision=0)
    unobserved["metadata"]["generation"] = 2
    assert "r0" not in [r["metadata"]["name"] for r in plan.cleanup_victims(d, [unobserved, *olds])]
    assert plan.cleanup_victims(deploy(3, revisionHistoryLimit=du.MAX_INT32), olds) == []


def test_status_counts_and_conditions() -> None:
    d = deploy(3, unavailable=1, generation=2)
    old, new = rs("old", 1, revision=1), rs("new", 3, available=1, revision=2)
    st = ds.rollout_status([old, new], new, d, NOW)
    assert {k: v for k, v in st.items() if k != "conditions"} == {
        "observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "readyReplicas": 2,
        "availableReplicas": 2, "unavailableReplicas": 2}
    assert ds.get_condition(st, "Available")["reason"] == "MinimumReplicasAvailable"  # type: ignore[index]
    prog = ds.get_condition(st, "Progressing")
    assert prog is not None and prog["reason"] == "ReplicaSetUpdated" and 'ReplicaSet "new"' in prog["message"]
    d["status"] = st
    later = NOW + dt.timedelta(seconds=30)
    done = ds.rollout_status([rs("old", 0, actual=0), rs("new", 3)], rs("new", 3), d, later)
    prog = ds.get_condition(done, "Progressing")
    assert prog is not None and prog["reason"] == "NewReplicaSetAvailable"
    assert prog["lastTransitionTime"] == ds.stamp(NOW) and prog["lastUpdateTime"] == ds.stamp(later)
    assert "unavailableReplicas" not in done and ds.complete(d, done)
    # no progress past the deadline: ProgressDeadlineExceeded
    d["status"] = st
    stuck = ds.rollout_status([old, new], new, d, NOW + dt.timedelta(seconds=601))
    prog = ds.get_condition(stuck, "Progressing")
    assert prog is not None and (prog["status"], prog["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert ds.recheck_after(d, st, NOW + dt.timedelta(seconds=100)) == pytest.approx(500.5)
    low = ds.calculate([rs("new", 3, available=1)], None, deploy(3, surge=0, unavailable=1), NOW)
    assert ds.get_condition(low, "Available")["status"] == "False"  # type: ignore[index]


def test_paused_and_new_rs_conditions() -> None:
    d = deploy(3, paused=True)
    st = ds.paused_condition(d, NOW)
    assert st is not None and ds.get_condition(st, "Progressing")["reason"] == "DeploymentPaused"  # type: ignore[index]
    d["status"] = st
    assert ds.paused_condition(d, NOW) is None
    d["spec"]["paused"] = False
    st = ds.paused_condition(d, NOW)
    assert st is not None and ds.get_condition(st, "Progressing")["reason"] == "DeploymentResumed"  # type: ignore[index]
    st = ds.progress_on_new_rs(deploy(), "web-x", True, NOW)
    assert st is not None and ds.get_condition(st, "Progressing")["message"] == 'Created new replica set "web-x"'  # type: ignore[index]
    st = ds.progress_on_new_rs(deploy(), "web-x", False, NOW)
    assert st is not None and ds.get_condition(st, "Progressing")["reason"] == "FoundNewReplicaSet"  # type: ignore[index]
    assert ds.progress_on_new_rs(deploy(progressDeadlineSeconds=du.MAX_INT32), "web-x", True, NOW) is None


def test_claim_decisions() -> None:
    d = deploy(2)
    mine = rs("a", 1)
    mine["metadata"]["ownerReferences"] = [du.owner_ref(d)]
    mine["metadata"]["labels"] = {"app": "web"}
    assert plan.claim(d, mine) is plan.Claim.OURS
    assert plan.claim(d, {**mine, "metadata": {**mine["metadata"], "labels": {"app": "x"}}}) is plan.Claim.RELEASE
    orphan = {"metadata": {"name": "o", "labels": {"app": "web"}}}
    assert plan.claim(d, orphan) is plan.Claim.ADOPT
    assert plan.claim(d, {"metadata": {**orphan["metadata"], "deletionTimestamp": "x"}}) is plan.Claim.IGNORE
    theirs = {"metadata": {"labels": {"app": "web"}, "ownerReferences": [{"uid": "other", "controller": True}]}}
    assert plan.claim(d, theirs) is plan.Claim.IGNORE
    gone = {**d, "metadata": {**d["metadata"], "deletionTimestamp": "x"}}
    assert plan.claim(gone, orphan) is plan.Claim.IGNORE and plan.claim(gone, mine) is plan.Claim.OURS


def test_new_replicaset_shape() -> None:
    d = deploy(4, minReadySeconds=5)
    new = plan.new_replicaset(d, [rs("old", 4)], 2)
    h = du.template_hash(d["spec"]["template"], None)
    assert new["metadata"]["name"] == f"web-{h}" and new["metadata"]["labels"] == {"app": "web", du.HASH_LABEL: h}
    assert new["spec"]["selector"]["matchLabels"] == {"app": "web", du.HASH_LABEL: h}
    assert new["spec"]["template"]["metadata"]["labels"][du.HASH_LABEL] == h
    assert du.HASH_LABEL not in d["spec"]["template"]["metadata"]["labels"]  # the Deployment is untouched
    assert new["spec"]["replicas"] == 1 and new["spec"]["minReadySeconds"] == 5  # 4 + 1 surge - 4 running
    assert new["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert new["metadata"]["annotations"][du.REVISION] == "2"
    assert plan.new_replicaset(deploy(4, strategy="Recreate"), [], 1)["spec"]["replicas"] == 4
