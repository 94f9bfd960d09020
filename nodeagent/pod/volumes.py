"""Which of a pod's volumes this node can build, decided purely.

SUPPORTED_TYPES is the one list of the volume types the agent builds; it is
empty until the volumes subsystem lands (nodeagent/volumes/), which adds each
type here as it builds it.  A container that mounts a volume of any other type
does not start (the plan, nodeagent.pod.plan, keeps it Waiting with
CreateContainerConfigError), so no pod runs without a volume it asked for.
"""
from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
SUPPORTED_TYPES: frozenset[str] = frozenset()


def volume_type(volume: Obj) -> str:
    """The source of a volume: its one key besides `name` (emptyDir, configMap, ...); "" when none."""
    return next((k for k in volume if k != "name"), "")


def unsupported(spec: Obj, supported: frozenset[str] | None = None) -> dict[str, str]:
    """Volume name -> why this node cannot build it, for each volume of the pod spec it cannot build."""
    supported = SUPPORTED_TYPES if supported is None else supported
    out = {}
    for v in spec.get("volumes") or []:
        kind = volume_type(v)
        if kind not in supported:
            name = v.get("name", "")
            what = f"volume type {kind}" if kind else "a volume with no type"
            out[name] = f"volume \"{name}\": {what} is not supported on this node yet"
    return out


def refusal(container: Obj, problems: dict[str, str]) -> str | None:
    """Why the container cannot start (the first volume it mounts that is not built), or None."""
    for m in container.get("volumeMounts") or []:
        if m.get("name", "") in problems:
            return problems[m["name"]]
    return None
