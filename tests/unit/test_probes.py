"""Unit tests for nodeagent.pod.probes: thresholds, handlers against loopback servers, the prober's tasks."""
from __future__ import annotations

import asyncio
import socket

import pytest

from nodeagent.pod import probes
from nodeagent.pod.probes import PodProber, ProbeSpec, ProbeState


def test_spec_defaults_and_values():
    assert ProbeSpec.of({"name": "c"}, "livenessProbe") is None
    s = ProbeSpec.of({"livenessProbe": {"exec": {"command": ["true"]}}}, "livenessProbe")
    assert (s.initial_delay, s.period, s.timeout, s.success_threshold, s.failure_threshold) == (0, 10, 1, 1, 3)
    s = ProbeSpec.of({"readinessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 2, "periodSeconds": 3,
                                         "timeoutSeconds": 4, "successThreshold": 2, "failureThreshold": 5}},
                     "readinessProbe")
    assert (s.initial_delay, s.period, s.timeout, s.success_threshold, s.failure_threshold) == (2, 3, 4, 2, 5)


def test_thresholds_count_consecutive_outcomes():
    spec = ProbeSpec("readinessProbe", {}, success_threshold=2, failure_threshold=3)
    st = probes.initial("readinessProbe")
    assert st.result is False and probes.initial("livenessProbe").result is True
    st = probes.record(spec, st, True)
    assert st.result is False          # one success of two
    st = probes.record(spec, st, True)
    assert st.result is True
    for _ in range(2):
        st = probes.record(spec, st, False)
    assert st.result is True           # two failures of three
    st = probes.record(spec, st, True)  # a success resets the failure count
    assert st == ProbeState(True, 1, 0)
    for _ in range(3):
        st = probes.record(spec, st, False)
    assert st.result is False and st.failures == 3


def test_named_port():
    c = {"ports": [{"name": "http", "containerPort": 8080}]}
    assert probes.resolve_port("http", c) == 8080 and probes.resolve_port(81, c) == 81
    with pytest.raises(ValueError):
        probes.resolve_port("nope", c)


async def _never(rid, argv, timeout):
    raise AssertionError("exec not expected")


def test_tcp_and_http_handlers_against_loopback():
    async def go():
        async def handle(r, w):
            line = await r.readline()
            while (await r.readline()) not in (b"\r\n", b""):
                pass
            code = b"200 OK" if b"/healthz" in line else b"500 Oops"
            w.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await w.drain()
            w.close()
        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
        s.close()
        c = {"name": "c", "ports": [{"name": "web", "containerPort": port}]}
        res = [await probes.run_handler({"tcpSocket": {"port": "web"}}, c, "127.0.0.1", "r", 1, _never),
               await probes.run_handler({"tcpSocket": {"port": closed}}, c, "127.0.0.1", "r", 1, _never),
               await probes.run_handler({"httpGet": {"port": port, "path": "/healthz"}}, c, "127.0.0.1", "r", 1, _never),
               await probes.run_handler({"httpGet": {"port": port, "path": "/bad"}}, c, "127.0.0.1", "r", 1, _never),
               await probes.run_handler({"httpGet": {"port": closed}}, c, "127.0.0.1", "r", 1, _never)]
        srv.close()
        await srv.wait_closed()
        return res
    assert asyncio.run(go()) == [True, False, True, False, False]


def test_exec_handler_uses_exit_code():
    seen = []

    async def ex(rid, argv, timeout):
        seen.append((rid, argv, timeout))
        return 0 if argv == ["ok"] else 1
    ok = asyncio.run(probes.run_handler({"exec": {"command": ["ok"]}}, {}, "", "rid-1", 2, ex))
    bad = asyncio.run(probes.run_handler({"exec": {"command": ["no"]}}, {}, "", "rid-1", 2, ex))
    assert ok and not bad and seen[0] == ("rid-1", ["ok"], 2)


def test_prober_readiness_liveness_and_startup_gate():
    results = {"ready": 1, "live": 0, "start": 1}
    calls: list[str] = []

    async def ex(rid, argv, timeout):
        calls.append(argv[0])
        return results[argv[0]]
    c = {"name": "c",
         "startupProbe": {"exec": {"command": ["start"]}, "periodSeconds": 0.02, "failureThreshold": 100},
         "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 0.02},
         "livenessProbe": {"exec": {"command": ["live"]}, "periodSeconds": 0.02, "failureThreshold": 2}}

    async def go():
        changes = []
        p = PodProber(lambda: changes.append(1), ex)
        p.ensure(c, 0, "10.0.0.1", "rid")
        await _until(lambda: calls.count("start") >= 3)
        v0 = p.view(c, 0)
        assert set(calls) == {"start"}             # startup gates the others
        results["start"] = 0
        await _until(lambda: p.view(c, 0).started)
        v1 = p.view(c, 0)
        results["ready"] = 0
        await _until(lambda: p.view(c, 0).ready)
        v2 = p.view(c, 0)
        results["live"] = 1
        await _until(lambda: p.view(c, 0).liveness_failed)
        v3 = p.view(c, 0)
        p.ensure(c, 1, "10.0.0.1", "rid")          # a new instance starts over
        v4 = p.view(c, 1)
        p.stop()
        return v0, v1, v2, v3, v4, changes
    v0, v1, v2, v3, v4, changes = asyncio.run(go())
    assert not v0.started and not v0.ready and not v0.liveness_failed
    assert v1.started and not v1.ready and not v1.liveness_failed
    assert v2.ready and not v2.liveness_failed
    assert v3.ready and v3.liveness_failed
    assert not v4.started and not v4.ready and not v4.liveness_failed
    assert len(changes) >= 3


def test_prober_initial_delay():
    """No probe runs before initialDelaySeconds (timed from ensure, so a slow machine cannot fail it)."""
    calls: list[float] = []

    async def ex(rid, argv, timeout):
        calls.append(asyncio.get_running_loop().time())
        return 0
    c = {"name": "c", "readinessProbe": {"exec": {"command": ["x"]}, "initialDelaySeconds": 0.3,
                                         "periodSeconds": 0.02}}

    async def go():
        p = PodProber(lambda: None, ex)
        t0 = asyncio.get_running_loop().time()
        p.ensure(c, 0, "", "rid")
        assert not p.view(c, 0).ready
        await _until(lambda: p.view(c, 0).ready)
        p.stop()
        return calls[0] - t0
    assert asyncio.run(go()) >= 0.3 - 0.01


async def _until(cond, timeout: float = 10.0) -> None:
    """Wait for cond() with a deadline (the prober's own timers run meanwhile)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)
