"""The event correlator (apimachinery/events_correlator.py), pure, with a fake
clock: the spam filter's token bucket, the aggregation of similar events, the
folding of identical events into one object, and the LRU under them."""
from __future__ import annotations

from typing import Any

from apimachinery.events_correlator import (
    COMBINED, LRU, Correlator, TokenBucket, aggregate_key, event_key, spam_key)


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def ev(name: str = "web", message: str = "boom", reason: str = "Failed", etype: str = "Warning",
       component: str = "kubelet", host: str = "n1", uid: str = "u1", n: int = 0) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{name}.{n:x}", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": name, "uid": uid, "apiVersion": "v1"},
            "reason": reason, "message": message, "type": etype,
            "source": {"component": component, "host": host},
            "firstTimestamp": "2027-01-15T08:00:00Z", "lastTimestamp": "2027-01-15T08:00:00Z", "count": 1,
            "reportingComponent": component, "reportingInstance": host}


def test_lru_evicts_the_least_recently_used() -> None:
    c: LRU[str, int] = LRU(2)
    c.add("a", 1)
    c.add("b", 2)
    assert c.get("a") == 1  # a is now newer than b
    c.add("c", 3)
    assert "b" not in c and c.get("a") == 1 and c.get("c") == 3 and len(c) == 2


def test_token_bucket_starts_full_and_refills_one_token_per_5_minutes() -> None:
    b = TokenBucket(1 / 300, 25, 0.0)
    assert all(b.try_accept(0.0) for _ in range(25))
    assert not b.try_accept(0.0) and not b.try_accept(299.0)
    assert b.try_accept(300.0) and not b.try_accept(300.0)
    assert sum(b.try_accept(10_000_000.0) for _ in range(30)) == 25  # never more than the burst


def test_keys_follow_upstream() -> None:
    a, b = ev(message="one"), ev(message="two")
    assert event_key(a) != event_key(b)  # the message is part of the identity
    assert spam_key(a) == spam_key(b) and aggregate_key(a)[0] == aggregate_key(b)[0]
    assert aggregate_key(a)[1] == "one"
    assert spam_key(a) != spam_key(ev(etype="Normal"))  # upstream's spam key includes the type
    assert spam_key(a) == spam_key(ev(reason="BackOff"))  # ... but not the reason
    assert aggregate_key(a)[0] != aggregate_key(ev(reason="BackOff"))[0]
    assert spam_key(a) != spam_key(ev(host="n2")) and spam_key(a) != spam_key(ev(uid="u2"))


def test_a_new_event_is_created_as_it_is() -> None:
    c = Correlator(Clock())
    e = ev()
    r = c.correlate(e)
    assert not r.skip and r.patch is None and r.event == e and "series" not in r.event


def test_identical_events_patch_one_object_with_count_series_and_first_timestamp() -> None:
    clock = Clock()
    c = Correlator(clock)
    first = c.correlate(ev(n=1))
    assert first.event is not None
    c.update_state(first.key, dict(first.event, metadata=dict(first.event["metadata"], resourceVersion="7")))
    clock.t += 8
    second = ev(n=2)
    second["lastTimestamp"] = "2027-01-15T08:00:08Z"
    second["firstTimestamp"] = "2027-01-15T08:00:08Z"
    r = c.correlate(second)
    assert not r.skip and r.event is not None and r.patch is not None
    assert r.event["metadata"]["name"] == "web.1"  # the first object's name, not the new one's
    assert r.event["count"] == 2 and r.event["firstTimestamp"] == "2027-01-15T08:00:00Z"
    assert r.event["lastTimestamp"] == "2027-01-15T08:00:08Z"
    assert r.patch == {"count": 2, "lastTimestamp": "2027-01-15T08:00:08Z", "message": "boom",
                       "series": {"count": 2, "lastObservedTime": r.event["series"]["lastObservedTime"]}}
    assert r.event["series"]["lastObservedTime"].endswith("Z") and "." in r.event["series"]["lastObservedTime"]
    for i in range(3, 15):
        r = c.correlate(ev(n=i))
    assert r.patch is not None and r.patch["count"] == 14 and r.patch["series"]["count"] == 14
    assert ev(n=0)["metadata"]["name"] == "web.0"  # correlate never changes its argument


def test_events_differing_in_message_are_separate_objects_until_ten_then_combined() -> None:
    clock = Clock()
    c = Correlator(clock)
    results = [c.correlate(ev(message=f"m{i}", n=i)) for i in range(12)]
    assert all(r.patch is None for r in results[:9])  # nine distinct messages: nine objects
    assert [r.event["message"] for r in results[:9] if r.event] == [f"m{i}" for i in range(9)]
    tenth, eleventh = results[9].event, results[10].event
    assert tenth is not None and eleventh is not None
    assert tenth["message"] == COMBINED + "m9" and results[9].patch is None
    assert tenth["count"] == 1 and tenth["metadata"]["name"].startswith("web.")
    assert tenth["involvedObject"]["name"] == "web" and tenth["reason"] == "Failed"
    # the combined event is itself folded: the next similar one patches it
    assert results[10].patch is not None and eleventh["message"] == COMBINED + "m10"
    assert eleventh["metadata"]["name"] == tenth["metadata"]["name"] and eleventh["count"] == 2


def test_similar_events_are_counted_per_ten_minute_window() -> None:
    clock = Clock()
    c = Correlator(clock)
    for i in range(9):
        c.correlate(ev(message=f"m{i}"))
    clock.t += 601  # the window passed: the set of messages starts again
    r = c.correlate(ev(message="m9"))
    assert r.event is not None and r.event["message"] == "m9"


def test_aggregation_is_per_reason_and_object() -> None:
    c = Correlator(Clock())
    for i in range(9):
        c.correlate(ev(message=f"m{i}"))
    r = c.correlate(ev(message="other", reason="BackOff"))
    assert r.event is not None and r.event["message"] == "other"
    r = c.correlate(ev(message="other", name="db", uid="u2"))
    assert r.event is not None and r.event["message"] == "other"


def test_the_spam_filter_lets_25_through_then_one_per_5_minutes_and_counts_all() -> None:
    clock = Clock()
    c = Correlator(clock)
    passed = [r for r in (c.correlate(ev()) for _ in range(100)) if not r.skip]
    assert len(passed) == 25 and [r.event["count"] for r in passed if r.event] == list(range(1, 26))
    clock.t += 299
    assert c.correlate(ev()).skip
    clock.t += 1
    r = c.correlate(ev())
    assert not r.skip and r.patch is not None and r.patch["count"] == 102  # the skipped ones counted
    assert c.correlate(ev()).skip


def test_the_spam_filter_is_per_source_and_object() -> None:
    c = Correlator(Clock())
    for _ in range(25):
        c.correlate(ev())
    assert c.correlate(ev(reason="Other")).skip  # same object and source: same bucket
    assert not c.correlate(ev(name="db", uid="u2")).skip
    assert not c.correlate(ev(host="n2")).skip
    assert not c.correlate(ev(component="default-scheduler")).skip


def test_the_caches_hold_4096_keys() -> None:
    c = Correlator(Clock())
    first = c.correlate(ev(name="p0", uid="p0"))
    for i in range(1, 4097):
        c.correlate(ev(name=f"p{i}", uid=f"p{i}"))
    again = c.correlate(ev(name="p0", uid="p0"))  # forgotten: created anew
    assert first.patch is None and again.patch is None and again.event is not None
    assert again.event["count"] == 1
