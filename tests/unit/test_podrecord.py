"""Unit tests for nodeagent.pod.record: the on-disk pod record and container state machine."""
from __future__ import annotations

import os

import pytest

from nodeagent.pod.record import ContainerRecord, ContainerState, PodRecord, RecordStore

W, R, X = ContainerState.WAITING, ContainerState.RUNNING, ContainerState.EXITED


def sample() -> PodRecord:
    r = PodRecord(uid="crt-u1", namespace="ns", name="p", cgroup="coracle/burstable/podcrt-u1", ip="10.250.0.3",
                  host_veth="vethabc", netns="/run/ns/crt-u1/net", started_at="2024-01-01T00:00:00Z")
    r.containers["a"] = ContainerRecord("a", attempt=2, state=R, runtime_id="crt-u1-a", pid=42,
                                        exit_code=None, last_terminated={"exitCode": 1, "reason": "Error"},
                                        backoff_until=12.5, backoff_step=3)
    r.containers["b"] = ContainerRecord("b", state=X, exit_code=0, reason="Completed")
    return r


def test_round_trip(tmp_path):
    store = RecordStore(str(tmp_path))
    r = sample()
    store.save(r)
    back = store.load("crt-u1")
    assert back == r
    assert back is not None and back.containers["a"].state is ContainerState.RUNNING
    assert isinstance(back.containers["b"].state, ContainerState)
    assert store.uids() == ["crt-u1"] and store.load_all() == [r]
    assert store.load("missing") is None


def test_save_is_atomic(tmp_path):
    store = RecordStore(str(tmp_path))
    r = sample()
    store.save(r)
    assert sorted(os.listdir(store.pod_dir("crt-u1"))) == ["record.json"]  # no temp file left
    r.ip = "10.250.0.99"
    r.containers["a"].last_terminated = {"bad": object()}  # json.dump fails half-way through
    with pytest.raises(TypeError):
        store.save(r)
    back = store.load("crt-u1")
    assert back is not None and back.ip == "10.250.0.3"  # the old record survives intact


@pytest.mark.parametrize("text", ['{"uid": "crt-u1", "namespace": "ns", "na', "", "[]", '{"uid": "x"}',
                                  '{"uid": "x", "namespace": "", "name": "", "bogus": 1}'])
def test_torn_or_foreign_file_is_absent(tmp_path, text):
    store = RecordStore(str(tmp_path))
    os.makedirs(store.pod_dir("crt-u1"))
    with open(os.path.join(store.pod_dir("crt-u1"), "record.json"), "w") as f:
        f.write(text)
    assert store.load("crt-u1") is None
    assert store.load_all() == []


def test_paths(tmp_path):
    store = RecordStore(str(tmp_path))
    assert store.container_dir("u", "c") == os.path.join(str(tmp_path), "pods", "u", "containers", "c")
    assert store.log_path("u", "c", 3) == os.path.join(str(tmp_path), "pods", "u", "logs", "c", "3.log")
    assert RecordStore(str(tmp_path / "none")).uids() == []


@pytest.mark.parametrize("frm,to", [(W, R), (W, W), (R, X), (X, W), (X, R), (X, X)])
def test_valid_transitions(frm, to):
    c = ContainerRecord("a", state=frm)
    c.transition(to)
    assert c.state is to


@pytest.mark.parametrize("frm,to", [(W, X), (R, W), (R, R)])
def test_invalid_transitions_raise(frm, to):
    c = ContainerRecord("a", state=frm)
    with pytest.raises(ValueError, match="invalid transition"):
        c.transition(to)
    assert c.state is frm
