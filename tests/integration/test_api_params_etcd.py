"""tests/unit/test_api_params.py again, with its API server on a real etcd (see etcd_suite)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from etcd_suite import *  # noqa: E402,F401,F403
from test_api_params import *  # noqa: E402,F401,F403
from etcd_suite import etcd, srv  # noqa: E402,F401,F811  (after the unit module's: these win)
