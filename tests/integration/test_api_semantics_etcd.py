"""tests/unit/test_api_semantics.py again, with its API server on a real etcd (see etcd_suite)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from etcd_suite import *  # noqa: E402,F401,F403
from test_api_semantics import *  # noqa: E402,F401,F403
from etcd_suite import etcd, srv  # noqa: E402,F401,F811  (after the unit module's: these win)


def test_fifty_writers_lose_no_update_on_etcd(etcd) -> None:  # type: ignore[no-untyped-def]
    from test_api_conflicts import fifty_writers
    fifty_writers(etcd.store_url(f"/crt-{__import__('uuid').uuid4().hex[:8]}"))
