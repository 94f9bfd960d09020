"""Printers for rbac.authorization.k8s.io: roles (name and creation time) and
bindings (role, users, groups, service accounts).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from master.apiserver.printers.cells import CREATED_AT_COLUMNS, created_at_row
from master.apiserver.printers.table import AGE_COL, NAME_COL, Obj, column, obj_age, obj_name, register


def binding_row(b: Obj, now: dt.datetime) -> list[Any]:
    ref = b.get("roleRef") or {}
    users, groups, sas = [], [], []
    for s in b.get("subjects") or []:
        if s.get("kind") == "User":
            users.append(s.get("name", ""))
        elif s.get("kind") == "Group":
            groups.append(s.get("name", ""))
        elif s.get("kind") == "ServiceAccount":
            sas.append(f"{s.get('namespace', '')}:{s.get('name', '')}")
    return [obj_name(b), f"{ref.get('kind', '')}/{ref.get('name', '')}", obj_age(b, now),
            ", ".join(users), ", ".join(groups), ", ".join(sas)]


BINDING_COLUMNS = [
    NAME_COL,
    column("Role", "RoleRef is the role being bound."),
    AGE_COL,
    column("Users", "Users in the binding.", 1),
    column("Groups", "Groups in the binding.", 1),
    column("ServiceAccounts", "ServiceAccounts in the binding.", 1),
]


register({
    "roles": (CREATED_AT_COLUMNS, created_at_row),
    "clusterroles": (CREATED_AT_COLUMNS, created_at_row),
    "rolebindings": (BINDING_COLUMNS, binding_row),
    "clusterrolebindings": (BINDING_COLUMNS, binding_row),
})
