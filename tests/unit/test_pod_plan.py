"""nodeagent.pod.plan, branch by branch: the pure decisions of a pod sync."""
from __future__ import annotations

from typing import Any

import pytest

from nodeagent.pod import plan as P
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord

NOW = 1_000_000.0
UID = "plan-uid"
Obj = dict[str, Any]


def pod(policy: str = "Always", containers: tuple[str, ...] = ("main",), inits: tuple[str, ...] = (),
        **meta: Any) -> Obj:
    return {"metadata": {"name": "p", "namespace": "default", "uid": UID, **meta},
            "spec": {"restartPolicy": policy,
                     "containers": [{"name": n, "image": "busybox"} for n in containers],
                     "initContainers": [{"name": n, "image": "busybox"} for n in inits]}}


def rec(**containers: ContainerRecord) -> PodRecord:
    return PodRecord(uid=UID, namespace="default", name="p", ip="10.0.0.2", containers=dict(containers))


def running(name: str, attempt: int = 0) -> ContainerRecord:
    return ContainerRecord(name, attempt=attempt, state=ContainerState.RUNNING, pid=42, started_at="t")


def exited(name: str, code: int, backoff_until: float = 0.0) -> ContainerRecord:
    return ContainerRecord(name, state=ContainerState.EXITED, exit_code=code, started_at="t", finished_at="t",
                           backoff_until=backoff_until, backoff_step=1)


def waiting(name: str, reason: str = "", **kw: Any) -> ContainerRecord:
    return ContainerRecord(name, reason=reason, **kw)


def plan(p: Obj | None, r: PodRecord | None, **obs: Any) -> list[P.Action]:
    return P.plan(p, P.Observed(record=r, **obs), NOW)


def test_gone_pod_with_something_left_is_torn_down_and_forgotten():
    assert plan(None, rec()) == [P.TearDown(keep_record=False), P.Forget()]
    assert plan(None, None, sandbox_exists=True) == [P.TearDown(keep_record=False), P.Forget()]


def test_gone_pod_with_nothing_left_is_only_forgotten():
    assert plan(None, None) == [P.Forget()]


def test_deletion_terminates_whatever_the_record_says():
    p = pod(deletionTimestamp="2024-01-01T00:00:00Z")
    assert plan(p, None) == [P.Terminate()]
    assert plan(p, rec(main=running("main"))) == [P.Terminate()]
    assert plan(p, rec(main=exited("main", 0))) == [P.Terminate()]


def test_first_sight_creates_the_record_then_builds_and_starts():
    assert plan(pod(containers=("a", "b")), None) == [
        P.CreateRecord(), P.EnsureSandbox(), P.StartContainer("a"), P.StartContainer("b"), P.WriteStatus()]


def test_running_pod_only_keeps_its_status():
    assert plan(pod(), rec(main=running("main"))) == [P.EnsureSandbox(), P.WriteStatus()]


def test_finished_pod_only_writes_its_status():
    r = rec(main=exited("main", 0))
    r.finished = True
    assert plan(pod("Never"), r) == [P.WriteStatus()]


@pytest.mark.parametrize("policy,code,restart", [
    ("Always", 0, True), ("Always", 1, True),
    ("OnFailure", 0, False), ("OnFailure", 3, True),
    ("Never", 0, False), ("Never", 1, False)])
def test_restart_policy(policy: str, code: int, restart: bool):
    actions = plan(pod(policy, containers=("main", "side")), rec(main=exited("main", code), side=running("side")))
    assert (P.RestartContainer("main") in actions) is restart
    assert not any(isinstance(a, P.StartContainer) for a in actions)


@pytest.mark.parametrize("policy,code,phase_done", [("Never", 0, True), ("Never", 1, True), ("OnFailure", 0, True),
                                                    ("OnFailure", 1, False), ("Always", 0, False)])
def test_all_exited_for_good_tears_down_keeping_the_record(policy: str, code: int, phase_done: bool):
    actions = plan(pod(policy), rec(main=exited("main", code)))
    assert (actions == [P.TearDown(keep_record=True), P.WriteStatus()]) is phase_done


def test_restart_waits_out_the_back_off():
    actions = plan(pod(), rec(main=exited("main", 1, backoff_until=NOW + 20)))
    assert actions == [P.EnsureSandbox(), P.WaitUntil("main", NOW + 20), P.WriteStatus()]


def test_back_off_over_restarts():
    actions = plan(pod(), rec(main=exited("main", 1, backoff_until=NOW)))
    assert actions == [P.EnsureSandbox(), P.RestartContainer("main"), P.WriteStatus()]


def test_liveness_failure_kills_only_that_container():
    r = rec(main=running("main"), side=running("side"))
    actions = plan(pod(containers=("main", "side")), r, liveness_failed=frozenset({"main"}))
    assert actions == [P.EnsureSandbox(), P.KillContainer("main"), P.WriteStatus()]


def test_liveness_of_a_container_not_running_is_ignored():
    actions = plan(pod(), rec(main=exited("main", 1, backoff_until=NOW + 5)), liveness_failed=frozenset({"main"}))
    assert not any(isinstance(a, P.KillContainer) for a in actions)


def test_waiting_container_is_started_again():
    for reason in ("", "ContainerCreating", "CreateContainerConfigError", "RunContainerError"):
        assert P.StartContainer("main") in plan(pod(), rec(main=waiting("main", reason)))


def test_init_containers_run_one_at_a_time_in_order():
    p = pod(inits=("i1", "i2"))
    assert plan(p, rec()) == [P.EnsureSandbox(), P.StartContainer("i1", init=True), P.WriteStatus()]
    assert plan(p, rec(i1=running("i1"))) == [P.EnsureSandbox(), P.WriteStatus()]
    assert plan(p, rec(i1=exited("i1", 0))) == [P.EnsureSandbox(), P.StartContainer("i2", init=True), P.WriteStatus()]
    assert plan(p, rec(i1=exited("i1", 0), i2=exited("i2", 0))) == [
        P.EnsureSandbox(), P.StartContainer("main"), P.WriteStatus()]


def test_failed_init_container_is_retried_unless_never():
    for policy in ("Always", "OnFailure"):
        actions = plan(pod(policy, inits=("i1", "i2")), rec(i1=exited("i1", 1)))
        assert actions == [P.EnsureSandbox(), P.RestartContainer("i1", init=True), P.WriteStatus()]
        actions = plan(pod(policy, inits=("i1",)), rec(i1=exited("i1", 1, backoff_until=NOW + 1)))
        assert actions == [P.EnsureSandbox(), P.WaitUntil("i1", NOW + 1), P.WriteStatus()]


def test_failed_init_container_under_never_fails_the_pod():
    assert plan(pod("Never", inits=("i1", "i2")), rec(i1=exited("i1", 2))) == [
        P.TearDown(keep_record=True), P.WriteStatus()]


def test_app_containers_wait_for_every_init():
    actions = plan(pod(inits=("i1",)), rec(i1=running("i1")))
    assert not any(isinstance(a, (P.StartContainer, P.RestartContainer)) and a.name == "main" for a in actions)


def test_actions_are_frozen_values():
    a = P.StartContainer("main")
    with pytest.raises(AttributeError):
        a.name = "other"  # type: ignore[misc]
    assert a == P.StartContainer("main") and hash(a) == hash(P.StartContainer("main"))


def test_failed_pull_waits_out_its_back_off_for_that_image_only():
    r = rec(main=waiting("main", "ErrImagePull", image="busybox", pull_failures=1, pull_backoff_until=NOW + 10))
    assert plan(pod(), r) == [P.EnsureSandbox(), P.PullBackOff("main", NOW + 10), P.WriteStatus()]
    r.containers["main"].reason = "ImagePullBackOff"
    assert P.PullBackOff("main", NOW + 10) in plan(pod(), r)
    r.containers["main"].pull_backoff_until = NOW
    assert P.StartContainer("main") in plan(pod(), r)           # back-off over: pull again
    r.containers["main"].pull_backoff_until = NOW + 10
    r.containers["main"].image = "other:1"                      # the spec names another image now
    assert P.StartContainer("main") in plan(pod(), r)


def _with_volumes(mounts: dict[str, list[str]], vols: list[Obj], inits: tuple[str, ...] = ()) -> Obj:
    p = pod(containers=tuple(mounts), inits=inits)
    for c in p["spec"]["containers"] + p["spec"]["initContainers"]:
        c["volumeMounts"] = [{"name": v, "mountPath": f"/{v}"} for v in mounts.get(c["name"], [])]
    p["spec"]["volumes"] = vols
    return p


def test_container_mounting_a_volume_the_node_does_not_build_is_refused():
    p = _with_volumes({"main": ["cfg"], "side": []}, [{"name": "cfg", "configMap": {"name": "cm"}}])
    msg = 'volume "cfg": volume type configMap is not supported on this node yet'
    assert plan(p, rec()) == [P.EnsureSandbox(), P.RefuseContainer("main", "CreateContainerConfigError", msg),
                              P.StartContainer("side"), P.WriteStatus()]


def test_unmounted_unsupported_volume_refuses_nothing():
    p = _with_volumes({"main": []}, [{"name": "scratch", "emptyDir": {}}])
    assert P.StartContainer("main") in plan(p, rec())


def test_init_container_with_an_unsupported_volume_holds_the_pod():
    p = _with_volumes({"main": []}, [{"name": "data", "hostPath": {"path": "/x"}}], inits=("i1",))
    p["spec"]["initContainers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/d"}]
    actions = plan(p, rec())
    assert [type(a) for a in actions] == [P.EnsureSandbox, P.RefuseContainer, P.WriteStatus]
    assert "volume type hostPath" in actions[1].message  # type: ignore[union-attr]


def test_supported_types_is_the_one_list(monkeypatch: pytest.MonkeyPatch):
    from nodeagent.pod import volumes
    p = _with_volumes({"main": ["scratch"]}, [{"name": "scratch", "emptyDir": {}}])
    assert isinstance(plan(p, rec())[1], P.RefuseContainer)
    monkeypatch.setattr(volumes, "SUPPORTED_TYPES", frozenset({"emptyDir"}))
    assert plan(p, rec())[1] == P.StartContainer("main")
    assert volumes.volume_type({"name": "x"}) == "" and "no type" in volumes.unsupported({"volumes": [{"name": "x"}]})["x"]
