"""apimachinery.client.retry_on_conflict: the one retry-on-conflict helper, for clients and for the
API server's own read-modify-writes (which retry errors.StaleWrite only)."""
from __future__ import annotations

import asyncio

import pytest

from apimachinery import kinds
from apimachinery.client import StatusError, is_conflict, retry_on_conflict, retry_on_conflict_async
from master.apiserver import errors
from master.apiserver.registry import Registry
from master.store import open_store

CONFLICT = StatusError(409, {"reason": "Conflict", "message": "the object has been modified"})
EXISTS = StatusError(409, {"reason": "AlreadyExists", "message": "exists"})


def flaky(failures: list[BaseException], result: str = "ok"):  # type: ignore[no-untyped-def]
    calls = []

    def fn() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return result
    return fn, calls


def test_retries_conflicts_until_success() -> None:
    fn, calls = flaky([CONFLICT, CONFLICT])
    assert retry_on_conflict(fn, attempts=5) == "ok" and len(calls) == 3


def test_gives_up_after_attempts_with_the_last_error() -> None:
    fn, calls = flaky([CONFLICT] * 10)
    with pytest.raises(StatusError):
        retry_on_conflict(fn, attempts=3)
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    for err in (EXISTS, StatusError(404, {"reason": "NotFound"}), ValueError("x")):
        fn, calls = flaky([err])
        with pytest.raises(type(err)):
            retry_on_conflict(fn)
        assert len(calls) == 1
    assert is_conflict(CONFLICT) and not is_conflict(EXISTS)
    with pytest.raises(ValueError):
        retry_on_conflict(lambda: None, attempts=0)


def test_async_variant() -> None:
    fn, calls = flaky([CONFLICT])

    async def afn() -> str:
        return fn()
    assert asyncio.run(retry_on_conflict_async(afn)) == "ok" and len(calls) == 2


def test_the_api_server_retries_only_stale_writes() -> None:
    cms = kinds.lookup("", "v1", "configmaps")
    assert cms is not None
    stale, named = errors.stale_write(cms, "c"), errors.conflict(cms, "c", errors.MODIFIED)
    assert stale.code == named.code == 409 and stale.status() == named.status()  # the client sees one answer
    fn, calls = flaky([stale])
    assert retry_on_conflict(fn, 16, retriable=errors.is_stale_write) == "ok" and len(calls) == 2
    fn, calls = flaky([named])
    with pytest.raises(errors.APIError):
        retry_on_conflict(fn, 16, retriable=errors.is_stale_write)
    assert len(calls) == 1


def test_a_patch_that_loses_a_race_is_applied_to_the_newer_object() -> None:
    store = open_store("sqlite://:memory:")
    reg = Registry(store)
    ns, cms = kinds.lookup("", "v1", "namespaces"), kinds.lookup("", "v1", "configmaps")
    assert ns is not None and cms is not None
    reg.create(ns, None, {"metadata": {"name": "default"}})
    reg.create(cms, "default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    real_get, raced = reg.get, []

    def get(res, n, name):  # type: ignore[no-untyped-def]
        obj = real_get(res, n, name)
        if res is cms and not raced:  # another writer lands between the patch's read and its write
            raced.append(1)
            reg.update(cms, "default", "c", {**real_get(cms, "default", "c"), "data": {"a": "1", "b": "2"}})
        return obj
    reg.get = get  # type: ignore[method-assign]
    new, created = reg.patch(cms, "default", "c", "application/merge-patch+json", {"data": {"z": "9"}})
    assert not created and new["data"] == {"a": "1", "b": "2", "z": "9"}
    store.close()
