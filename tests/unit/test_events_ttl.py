"""Event expiry (master/apiserver/eventttl.py, `coracle master --event-ttl`):
Go durations, the pure choice of what expired (fake clock), and a sweep in a
real in-process API server that removes an old Event and keeps a fresh one
and one whose repeats kept it alive."""
from __future__ import annotations

import asyncio
import datetime as dt
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread

from master.apiserver.eventttl import EventTTL, expired, last_written, parse_duration, sweep_interval
from scripts.coracle import cli

NOW = dt.datetime(2027, 1, 15, 8, 0, 0, tzinfo=dt.timezone.utc).timestamp()


def stamp(seconds_ago: float, micro: bool = False) -> str:
    t = dt.datetime.fromtimestamp(NOW - seconds_ago, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def test_go_durations() -> None:
    assert parse_duration("1h0m0s") == 3600 and parse_duration("1h") == 3600
    assert parse_duration("30m") == 1800 and parse_duration("90s") == 90
    assert parse_duration("1.5h") == 5400 and parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5 and parse_duration("0") == 0 and parse_duration("-2m") == -120
    for bad in ("", "1", "1d", "h", "1h x", "one hour", "1.2.3s"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_master_refuses_a_bad_event_ttl(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["master", "--event-ttl", "1d", "--store", "sqlite://:memory:"]) == 2
    assert "--event-ttl" in capsys.readouterr().err
    assert cli.main(["master", "--event-ttl", "0s", "--store", "sqlite://:memory:"]) == 2


def test_the_sweep_runs_every_tenth_of_the_ttl_at_most_every_minute() -> None:
    assert sweep_interval(3600) == 60 and sweep_interval(300) == 30 and sweep_interval(5) == 1


def ev(name: str, created: float, last: float | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"metadata": {"name": name, "namespace": "default", "resourceVersion": "5",
                                        "creationTimestamp": stamp(created)}, **extra}
    if last is not None:
        out["lastTimestamp"] = stamp(last)
    return out


def test_last_written_is_the_latest_stamp() -> None:
    assert last_written(ev("a", 100)) == NOW - 100
    assert last_written(ev("a", 7200, 10)) == NOW - 10  # a repeat folded in ten seconds ago
    assert last_written(ev("a", 100, 7200)) == NOW - 100  # created with an old lastTimestamp
    assert last_written(ev("a", 7200, series={"lastObservedTime": stamp(5, micro=True)})) == NOW - 5
    assert last_written(ev("a", 7200, eventTime=stamp(3, micro=True))) == NOW - 3
    assert last_written({"metadata": {"name": "x"}}) is None
    assert last_written({"metadata": {"name": "x", "creationTimestamp": "garbage"}}) is None


def test_expired_chooses_what_is_older_than_the_ttl() -> None:
    evs = [ev("old", 3601), ev("fresh", 3599), ev("kept-alive", 9000, 60), ev("stampless", 0)]
    del evs[3]["metadata"]["creationTimestamp"]
    assert expired(evs, NOW, 3600) == [("default", "old", "5")]
    assert [n for _, n, _ in expired(evs, NOW + 3600, 3600)] == ["old", "fresh", "kept-alive"]


@pytest.fixture(scope="module")
def srv() -> Any:
    with ServerThread() as s:
        yield s


def test_the_sweep_deletes_old_events_through_the_api_server(srv: ServerThread) -> None:
    assert srv.server is not None
    registry = srv.server.registry
    http = httpx.Client(base_url=srv.url)
    base = "/api/v1/namespaces/default/events"

    def event(name: str, last: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                "reason": "R", "message": "m", "type": "Normal", "count": 1,
                "firstTimestamp": last, "lastTimestamp": last}

    real_clock = registry.clock
    two_hours_ago = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    registry.clock = lambda: two_hours_ago  # objects created two hours ago
    try:
        assert http.post(base, json=event("ttl-old", two_hours_ago)).status_code == 201
        assert http.post(base, json=event("ttl-repeated", two_hours_ago)).status_code == 201
    finally:
        registry.clock = real_clock
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert http.post(base, json=event("ttl-fresh", now)).status_code == 201
    r = http.patch(f"{base}/ttl-repeated", json={"count": 2, "lastTimestamp": now},
                   headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200
    # the events.k8s.io view of the same store is swept too (one stored form)
    assert http.get("/apis/events.k8s.io/v1/namespaces/default/events/ttl-old").status_code == 200

    sweeper = EventTTL(srv.server, ttl=3600)
    gone = asyncio.run_coroutine_threadsafe(sweeper.sweep(), srv.loop).result(10)
    assert gone == 1
    assert http.get(f"{base}/ttl-old").status_code == 404
    assert http.get("/apis/events.k8s.io/v1/namespaces/default/events/ttl-old").status_code == 404
    assert http.get(f"{base}/ttl-fresh").status_code == 200
    assert http.get(f"{base}/ttl-repeated").status_code == 200
    # an hour on (fake clock), the rest go; a second sweep finds nothing
    later = EventTTL(srv.server, ttl=3600, clock=lambda: dt.datetime.now(dt.timezone.utc).timestamp() + 3700)
    assert asyncio.run_coroutine_threadsafe(later.sweep(), srv.loop).result(10) >= 2
    assert http.get(f"{base}/ttl-fresh").status_code == 404
    assert asyncio.run_coroutine_threadsafe(later.sweep(), srv.loop).result(10) == 0
    http.close()
