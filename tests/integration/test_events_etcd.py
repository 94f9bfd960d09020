"""tests/unit/test_events_recorder.py and test_events_ttl.py again, with their
API server on a real etcd (see etcd_suite): the recorder's creates and patches
and the TTL sweep's deletes on the other store."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from etcd_suite import *  # noqa: E402,F401,F403
from test_events_recorder import *  # noqa: E402,F401,F403
from test_events_ttl import *  # noqa: E402,F401,F403
from etcd_suite import etcd, srv  # noqa: E402,F401,F811  (after the unit modules': these win)
