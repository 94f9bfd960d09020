"""The unit suite's shared API server: `srv`, an in-process API server on a
fresh in-memory SQLite store, one per module.  tests/integration/*_etcd.py
run the same modules' tests with etcd_suite's `srv` (on etcd) instead."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread  # noqa: E402


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread() as s:
        yield s
