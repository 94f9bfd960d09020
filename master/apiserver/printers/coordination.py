"""The lease printer (coordination.k8s.io): holder and age.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, register


def lease_row(lease: Obj, now: dt.datetime) -> list[Any]:
    return [obj_name(lease), (lease.get("spec") or {}).get("holderIdentity") or "", obj_age(lease, now)]


LEASE_COLUMNS = [NAME_COL, column("Holder", "HolderIdentity contains the identity of the holder of a current lease."),
                 AGE_COL]


register({
    "leases": (LEASE_COLUMNS, lease_row),
})
