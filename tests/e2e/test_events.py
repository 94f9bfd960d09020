"""Events end to end (issue 9, defect 1): the shared EventRecorder against a
real `coracle master` process, read back with the real kubectl. A flood of
identical events is one Event whose count `kubectl describe` shows as
`(xN over ...)`; similar events are combined; `--event-ttl` expires them."""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_kubectl_master import POD, Master  # noqa: E402

from apimachinery.client import Client  # noqa: E402
from apimachinery.events import EventRecorder  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]
REPO = Path(__file__).resolve().parents[2]


class TTLMaster(Master):
    """test_kubectl_master's Master (its kubectl and stop), started here with --event-ttl."""

    def __init__(self, tmp: Path, ttl: str):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        self.tmp, self.kubeconfig, self.cache = tmp, str(tmp / "kubeconfig"), str(tmp / "kube-cache")
        self.log = open(tmp / "master.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "coracle.cli", "master", "--store", f"sqlite:///{tmp}/state.db",
             "--port", str(self.port), "--kubeconfig", self.kubeconfig, "--event-ttl", ttl,
             "--components", "apiserver"], cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: _healthy(self), 15, f"master did not start:\n{tmp / 'master.log'}")


def _healthy(m: Master) -> bool:
    if m.proc.poll() is not None:
        raise RuntimeError((m.tmp / "master.log").read_text())
    try:
        return httpx.get(m.url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("crt-events"), components="apiserver")
    try:
        yield m
    finally:
        assert m.stop() == 0, (m.tmp / "master.log").read_text()


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    return r.stdout


def events_about(m: Master, name: str) -> list[dict[str, Any]]:
    out = ok(m.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"))
    return json.loads(out)["items"]


def test_a_flood_of_identical_events_is_one_event_with_a_count(master: Master) -> None:
    ok(master.kubectl("apply", "-f", "-", input=POD.format(app="crt-flood").replace("crt-web", "crt-flood")))
    pod = httpx.get(f"{master.url}/api/v1/namespaces/default/pods/crt-flood").json()
    message = 'Failed to pull image "crt-nosuch:1": not found'

    async def flood() -> EventRecorder:
        async with Client(master.url) as client:
            rec = EventRecorder(client, "kubelet", host="crt-node")
            for _ in range(2000):
                rec.event(pod, "Warning", "Failed", message)
            assert await rec.flush(20)
            await rec.close()
            return rec
    rec = asyncio.run(flood())
    assert rec.written == 25 and rec.dropped == 0  # the spam filter's burst; the rest only counted

    (ev,) = events_about(master, "crt-flood")
    assert ev["count"] == 25 and ev["series"]["count"] == 25 and ev["message"] == message
    assert ev["source"] == {"component": "kubelet", "host": "crt-node"}
    assert ev["involvedObject"]["uid"] == pod["metadata"]["uid"]
    table = ok(master.kubectl("get", "events", "--field-selector", "involvedObject.name=crt-flood"))
    assert len([line for line in table.splitlines() if "Failed" in line and "pod/crt-flood" in line]) == 1, table
    described = ok(master.kubectl("describe", "pod", "crt-flood"))
    lines = [line for line in described.split("Events:")[1].splitlines() if "Failed" in line]
    assert len(lines) == 1, described
    assert re.search(r"\(x25 over \d+s\)", lines[0]) and "kubelet" in lines[0] and message in lines[0], lines[0]
    listed = ok(master.kubectl("events", "--for", "pod/crt-flood"))  # kubectl events reads series
    assert re.search(r"\(x25 over \d+s\)\s+Warning\s+Failed\s+Pod/crt-flood", listed), listed
    v1 = httpx.get(f"{master.url}/apis/events.k8s.io/v1/namespaces/default/events/{ev['metadata']['name']}").json()
    assert v1["deprecatedCount"] == 25 and v1["series"]["count"] == 25


def test_similar_events_are_combined(master: Master) -> None:
    other = {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "crt-similar", "namespace": "default", "uid": "crt-similar-uid"}}

    async def similar() -> None:
        async with Client(master.url) as client:
            rec = EventRecorder(client, "kubelet", host="crt-node")
            for i in range(12):
                rec.event(other, "Warning", "BackOff", f"Back-off restarting container c{i}")
            assert await rec.flush(20)
            await rec.close()
    asyncio.run(similar())
    evs = events_about(master, "crt-similar")
    combined = [e for e in evs if e["message"].startswith("(combined from similar events): ")]
    assert len(evs) == 10 and len(combined) == 1, [e["message"] for e in evs]
    assert combined[0]["count"] == 3 and combined[0]["message"].endswith("c11")
    assert "(combined from similar events)" in ok(master.kubectl("get", "events"))


def test_event_ttl_expires_events(tmp_path: Path) -> None:
    m = TTLMaster(tmp_path, "3s")
    try:
        ok(m.kubectl("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "crt-short-lived"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
            "reason": "Test", "message": "gone soon", "type": "Normal"})))
        created = time.monotonic()
        assert "gone soon" in ok(m.kubectl("get", "events"))
        wait_for(lambda: m.kubectl("get", "event", "crt-short-lived").returncode != 0, 30,
                 "the event outlived --event-ttl 3s")
        assert time.monotonic() - created >= 2  # not before its time (timestamps are whole seconds)
        assert "NotFound" in m.kubectl("get", "event", "crt-short-lived").stderr
    finally:
        assert m.stop() == 0, (m.tmp / "master.log").read_text()
