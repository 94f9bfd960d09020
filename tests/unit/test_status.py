"""Unit tests for nodeagent.pod.status: phase, container states, conditions, back-off."""
from __future__ import annotations

import pytest

from apimachinery import meta
from nodeagent.pod import backoff, status
from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord

NOW = 1_700_000_000.0
W, R, X = ContainerState.WAITING, ContainerState.RUNNING, ContainerState.EXITED


def pod(policy: str = "Always", names: tuple[str, ...] = ("a",), st: dict | None = None) -> dict:
    return {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"restartPolicy": policy, "containers": [{"name": n, "image": "busybox"} for n in names]},
            "status": st if st is not None else {"qosClass": "BestEffort"}}


def cr(name: str = "a", state: ContainerState = R, **kw) -> ContainerRecord:
    base = {"runtime_id": f"u1-{name}", "started_at": "2023-11-14T22:13:20Z"} if state is not W else {}
    return ContainerRecord(name=name, state=state, **{**base, **kw})


def rec(*containers: ContainerRecord, ip: str = "10.244.0.5", **kw) -> PodRecord:
    return PodRecord(uid="u1", namespace="ns", name="p", ip=ip, started_at="2023-11-14T22:13:00Z",
                     containers={c.name: c for c in containers}, **kw)


def exited(code: int, name: str = "a", **kw) -> ContainerRecord:
    return cr(name, X, exit_code=code, finished_at="2023-11-14T22:13:30Z",
              reason=kw.pop("reason", "Completed" if code == 0 else "Error"), **kw)


@pytest.mark.parametrize("policy,codes,phase", [
    ("Never", [0], "Succeeded"), ("Never", [1], "Failed"), ("Never", [0, 2], "Failed"),
    ("OnFailure", [0], "Succeeded"), ("OnFailure", [1], "Running"), ("OnFailure", [0, 1], "Running"),
    ("OnFailure", [0, 0], "Succeeded"),
    ("Always", [0], "Running"), ("Always", [1], "Running"),
])
def test_phase_by_policy_and_exit_codes(policy, codes, phase):
    names = tuple(f"c{i}" for i in range(len(codes)))
    r = rec(*[exited(code, n) for n, code in zip(names, codes)])
    assert status.phase(pod(policy, names), r) == phase


def test_phase_pending_and_running():
    assert status.phase(pod(), None) == "Pending"
    assert status.phase(pod(), rec()) == "Pending"
    assert status.phase(pod(), rec(cr("a", W, reason="ErrImagePull"))) == "Pending"
    assert status.phase(pod(), rec(cr("a"))) == "Running"
    assert status.phase(pod("Never", ("a", "b")), rec(cr("a"), exited(0, "b"))) == "Running"
    # a container waiting to restart after an exit keeps the pod Running
    assert status.phase(pod(), rec(cr("a", W, attempt=2))) == "Running"


def test_should_restart():
    assert status.should_restart("Always", 0) and status.should_restart("Always", 1)
    assert status.should_restart("OnFailure", 3) and not status.should_restart("OnFailure", 0)
    assert not status.should_restart("Never", 1)


def test_backoff_delay_doubles_to_cap():
    b = backoff.container_restart(10)
    assert b.delay(0) == 0.0  # first restart immediate
    assert [b.delay(s) for s in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert b.delay(5000) == 300.0


def test_next_backoff_step_resets_after_clean_run():
    b = backoff.container_restart(10)
    assert b.next_count(0, 1) == 1
    assert b.next_count(4, 599.9) == 5
    assert b.next_count(6, 600) == 1


def test_image_pull_and_sync_retry_back_off_as_upstream():
    assert [backoff.IMAGE_PULL.delay(n) for n in range(1, 8)] == [10, 20, 40, 80, 160, 300, 300]
    assert backoff.IMAGE_PULL.next_count(7, 10_000) == 8  # pulls never reset by time alone
    assert [backoff.SYNC_RETRY.delay(n) for n in (1, 2, 3, 10)] == [0.2, 0.4, 0.8, 10.0]


def test_running_container_status():
    s = status.container_status({"name": "a", "image": "busybox"}, cr("a", R, attempt=3, image_id="sha256:ab"), NOW)
    assert s["state"] == {"running": {"startedAt": "2023-11-14T22:13:20Z"}}
    assert s["ready"] and s["started"] and s["restartCount"] == 3
    assert s["containerID"] == "runc://u1-a" and s["imageID"] == "sha256:ab" and s["lastState"] == {}


def test_crashloop_backoff_waiting_with_last_terminated():
    c = exited(1, backoff_until=NOW + 20, attempt=2)
    s = status.pod_status(pod("Always"), rec(c), "192.0.2.1", NOW)["containerStatuses"][0]
    assert s["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert "back-off 20s" in s["state"]["waiting"]["message"] and "pod=p_ns(u1)" in s["state"]["waiting"]["message"]
    term = s["lastState"]["terminated"]
    assert term["exitCode"] == 1 and term["reason"] == "Error" and term["containerID"] == "runc://u1-a"
    assert s["restartCount"] == 2 and not s["ready"]
    # back-off over: the exit shows as terminated until the restart happens
    s2 = status.container_status({"name": "a"}, c, NOW + 21)
    assert s2["state"]["terminated"]["exitCode"] == 1


def test_no_crashloop_when_policy_will_not_restart():
    c = exited(0, backoff_until=NOW + 20, attempt=2)
    s = status.pod_status(pod("OnFailure"), rec(c), "192.0.2.1", NOW)["containerStatuses"][0]
    assert s["state"]["terminated"]["reason"] == "Completed"


def test_oomkilled_reason_carried():
    c = exited(137, reason="OOMKilled")
    s = status.pod_status(pod("Never"), rec(c), "h", NOW)
    assert s["phase"] == "Failed"
    assert s["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"
    c.backoff_until, c.last_terminated = NOW + 5, None
    s = status.pod_status(pod("Always"), rec(c), "h", NOW)["containerStatuses"][0]
    assert s["lastState"]["terminated"]["reason"] == "OOMKilled"
    # after the restart the previous instance stays in lastState
    c2 = cr("a", R, attempt=1, last_terminated=status.terminated_state(exited(137, reason="OOMKilled")))
    assert status.container_status({"name": "a"}, c2, NOW)["lastState"]["terminated"]["reason"] == "OOMKilled"


def test_waiting_reason_and_message():
    s = status.container_status({"name": "a"}, cr("a", W, reason="ErrImagePull", message="not here"), NOW)
    assert s["state"] == {"waiting": {"reason": "ErrImagePull", "message": "not here"}}
    assert status.container_status({"name": "a"}, None, NOW)["state"] == {"waiting": {"reason": "ContainerCreating"}}


def conds(st: dict) -> dict[str, dict]:
    return {c["type"]: c for c in st["conditions"]}


def test_conditions_unready_list_and_ready():
    st = status.pod_status(pod("Always", ("a", "b", "c")), rec(cr("a"), cr("b", W), exited(1, "c")), "h", NOW)
    c = conds(st)
    for t in ("Ready", "ContainersReady"):
        assert c[t]["status"] == "False" and c[t]["reason"] == "ContainersNotReady"
        assert c[t]["message"] == "containers with unready status: [b c]"
    assert c["PodScheduled"]["status"] == "True" and c["PodReadyToStartContainers"]["status"] == "True"
    assert [x["type"] for x in st["conditions"]] == ["PodReadyToStartContainers", "Initialized", "Ready",
                                                    "ContainersReady", "PodScheduled"]
    ok = conds(status.pod_status(pod(), rec(cr("a")), "h", NOW))
    assert ok["Ready"]["status"] == "True" and "reason" not in ok["Ready"] and "message" not in ok["Ready"]


def test_pod_completed_condition():
    st = status.pod_status(pod("Never"), rec(exited(0), finished=True), "h", NOW)
    c = conds(st)
    assert st["phase"] == "Succeeded"
    assert c["Ready"]["status"] == "False" and c["Ready"]["reason"] == "PodCompleted"
    assert c["ContainersReady"]["reason"] == "PodCompleted" and "message" not in c["Ready"]
    assert c["PodReadyToStartContainers"]["status"] == "False"


def test_last_transition_time_kept_when_unchanged():
    first = status.pod_status(pod(), rec(cr("a")), "h", NOW)
    later = status.pod_status(pod(st=first), rec(cr("a")), "h", NOW + 3600)
    assert later == first  # nothing changed: equal, so the write is skipped
    t0 = meta.get_condition({"status": first}, "Ready")["lastTransitionTime"]
    changed = status.pod_status(pod(st=first), rec(exited(1, backoff_until=NOW + 9000)), "h", NOW + 3600)
    ready = meta.get_condition({"status": changed}, "Ready")
    assert ready["status"] == "False" and ready["lastTransitionTime"] != t0
    assert meta.get_condition({"status": changed}, "PodScheduled")["lastTransitionTime"] == \
        meta.get_condition({"status": first}, "PodScheduled")["lastTransitionTime"]


def test_ips_restart_count_and_start_time():
    st = status.pod_status(pod(), rec(cr("a", attempt=4)), "192.0.2.9", NOW)
    assert st["podIP"] == "10.244.0.5" and st["podIPs"] == [{"ip": "10.244.0.5"}]
    assert st["hostIP"] == "192.0.2.9" and st["hostIPs"] == [{"ip": "192.0.2.9"}]
    assert st["containerStatuses"][0]["restartCount"] == 4
    assert st["startTime"] == "2023-11-14T22:13:00Z" and st["qosClass"] == "BestEffort"
    none = status.pod_status(pod(), rec(ip=""), "h", NOW)
    assert "podIP" not in none and none["phase"] == "Pending"
    assert conds(none)["PodReadyToStartContainers"]["status"] == "False"


def test_init_container_statuses_and_initialized_condition():
    p = pod()
    p["spec"]["initContainers"] = [{"name": "i1", "image": "busybox"}, {"name": "i2", "image": "busybox"}]
    st = status.pod_status(p, rec(exited(0, "i1"), cr("i2")), "192.0.2.1", NOW)
    assert st["phase"] == "Pending"
    assert [s["ready"] for s in st["initContainerStatuses"]] == [True, False]
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["Initialized"]["status"] == "False" and conds["Initialized"]["message"].endswith("[i2]")
    assert st["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    st = status.pod_status(p, rec(exited(0, "i1"), exited(0, "i2"), cr("a")), "192.0.2.1", NOW)
    assert st["phase"] == "Running" and {c["type"]: c["status"] for c in st["conditions"]}["Initialized"] == "True"
    p["spec"]["restartPolicy"] = "Never"
    assert status.phase(p, rec(exited(0, "i1"), exited(2, "i2"))) == "Failed"
    p["spec"]["restartPolicy"] = "OnFailure"
    assert status.phase(p, rec(exited(0, "i1"), exited(2, "i2"))) == "Pending"


def test_probe_view_sets_ready_and_started():
    from nodeagent.pod.probes import ProbeView
    st = status.pod_status(pod(), rec(cr("a")), "192.0.2.1", NOW, probes={"a": ProbeView(ready=False, started=True)})
    cs = st["containerStatuses"][0]
    assert not cs["ready"] and cs["started"]
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "False"
    st = status.pod_status(pod(), rec(cr("a")), "192.0.2.1", NOW, probes={"a": ProbeView(ready=False, started=False)})
    assert not st["containerStatuses"][0]["started"]
