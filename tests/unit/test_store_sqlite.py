"""SQLite-only store tests (prefix arithmetic, restart, URLs); the Store
contract itself runs on both backends in tests/integration/test_store_contract.py."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from master.store import (
    Compacted,
    Store,
    open_store,
)
from master.store.sqlite import prefix_end


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = "sqlite://:memory:" if request.param == "memory" else f"sqlite://{tmp_path}/db.sqlite"
    s = open_store(url)
    try:
        yield s
    finally:
        s.close()










def test_prefix_end() -> None:
    assert prefix_end("/a/") == "/a0"
    assert prefix_end("") is None
    assert prefix_end("a\U0010ffff") == "b"














def test_survives_restart(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path}/sub/dir/db.sqlite"
    s = open_store(url)
    try:
        s.create("/r/a", b"1")
        s.create("/r/b", b"2")
        s.update("/r/a", b"3")
        s.delete("/r/b")
        s.compact(2)
    finally:
        s.close()
    s = open_store(url)
    try:
        assert s.current_revision() == 4 and s.compact_revision() == 2
        assert s.get("/r/a").value == b"3"  # type: ignore[union-attr]
        assert s.get("/r/b") is None
        assert s.create("/r/c", b"4") == 5
        with pytest.raises(Compacted):
            s.events_since(1)
    finally:
        s.close()


def test_open_store_rejects_unknown_scheme() -> None:
    with pytest.raises(ValueError):
        open_store("mysql://x")


