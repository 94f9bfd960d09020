"""Pure facts about a Deployment and its ReplicaSets, as upstream's
`deployment/util`: the pod-template hash, template equality ignoring that
hash, revisions and the annotations the controller keeps on ReplicaSets,
maxSurge/maxUnavailable resolved against the replica count, and the orders
ReplicaSets are sorted in.  No I/O; objects are JSON dicts as on the wire.

Neighbours: rollout.py (scaling decisions) and
status.py (status and conditions) use these; controller.py acts.
"""
from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Sequence
from typing import Any

from apimachinery import meta
from apimachinery.labels import SelectorError, selector_from_label_selector

Obj = dict[str, Any]

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# never copied from a Deployment to its ReplicaSets (nor back by `rollout undo`)
SKIPPED_ANNOTATIONS = frozenset({LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO})
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # upstream's rand.SafeEncodeString: no vowels, no 0/1/3
_PERCENT = re.compile(r"^([0-9]+)%$")


# -- the pod-template hash ----------------------------------------------------------
def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(s: str) -> str:
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in s)


def template_hash(template: Obj, collision_count: int | None) -> str:
    """FNV-32a over the template, then the collision count as 8 little-endian bytes (as upstream's
    ComputeHash), printed in decimal and encoded with the safe alphabet.  Upstream hashes a Go `spew`
    dump of the typed struct; we hash the template's canonical JSON (sorted keys, empty values
    dropped), so the value differs from a real cluster's but is as stable and of the same form."""
    data = json.dumps(_pruned(template), sort_keys=True, separators=(",", ":")).encode()
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return safe_encode(str(fnv32a(data)))


def _pruned(v: Any) -> Any:
    """Drop null, "" and empty containers: Go's typed structs (and upstream's semantic equality,
    which takes nil and empty slices and maps as equal) cannot tell them from absent."""
    if isinstance(v, dict):
        out = {k: _pruned(x) for k, x in v.items()}
        return {k: x for k, x in out.items() if x not in (None, "", {}, [])}
    if isinstance(v, list):
        return [_pruned(x) for x in v]
    return v


def without_hash(template: Obj | None) -> Obj:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return _pruned(t)


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    return without_hash(a) == without_hash(b)


# -- reading ReplicaSets and Deployments -------------------------------------------
def spec_replicas(obj: Obj | None) -> int:
    if obj is None:
        return 0
    r = (obj.get("spec") or {}).get("replicas")
    return 1 if r is None else int(r)


def status_int(obj: Obj | None, field: str) -> int:
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def annotations_of(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def revision(rs: Obj) -> int:
    """The revision annotation; 0 when missing or malformed (upstream logs and skips those)."""
    try:
        return int(annotations_of(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(rss: list[Obj]) -> int:
    return max((revision(rs) for rs in rss), default=0)


def controller_ref(obj: Obj) -> Obj | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def owner_ref(d: Obj) -> Obj:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta.name(d), "uid": meta.uid(d),
            "controller": True, "blockOwnerDeletion": True}


def selector_matches(d: Obj, labels: dict[str, str] | None) -> bool:
    """An empty or invalid selector matches nothing here (upstream refuses to select everything)."""
    sel = (d.get("spec") or {}).get("selector") or {}
    if not (sel.get("matchLabels") or sel.get("matchExpressions")):
        return False
    try:
        return selector_from_label_selector(sel).matches(labels or {})
    except SelectorError:
        return False


def active(rss: Sequence[Obj | None]) -> list[Obj]:
    return [rs for rs in rss if rs is not None and spec_replicas(rs) > 0]


def sum_spec(rss: Sequence[Obj | None]) -> int:
    return sum(spec_replicas(rs) for rs in rss if rs is not None)


def sum_status(rss: Sequence[Obj | None], field: str) -> int:
    return sum(status_int(rs, field) for rs in rss if rs is not None)


# -- orders ---------------------------------------------------------------------------
def _created(rs: Obj) -> tuple[str, str]:
    return rs.get("metadata", {}).get("creationTimestamp") or "", meta.name(rs)


def by_creation(rss: list[Obj], newest_first: bool = False) -> list[Obj]:
    return sorted(rss, key=_created, reverse=newest_first)


def by_revision(rss: list[Obj]) -> list[Obj]:
    return sorted(rss, key=lambda rs: (revision(rs), _created(rs)))


def by_size(rss: list[Obj], newer_first_on_ties: bool) -> list[Obj]:
    """Largest first; among equals newer first (scaling up) or older first (scaling down)."""
    ordered = by_creation(rss, newest_first=newer_first_on_ties)
    return sorted(ordered, key=lambda rs: -spec_replicas(rs))


# -- maxSurge / maxUnavailable ----------------------------------------------------------
def scaled_value(v: Any, total: int, round_up: bool) -> int:
    """An int-or-percent against `total`: percentages round up (surge) or down (unavailable)."""
    if v is None:
        return 0
    if isinstance(v, int):
        return v
    m = _PERCENT.match(str(v))
    if m is None:
        if str(v).isdigit():
            return int(v)
        raise ValueError(f"invalid value for IntOrString: {v!r}")
    n = int(m.group(1)) * total
    return -(-n // 100) if round_up else n // 100


def rolling(d: Obj) -> Obj | None:
    strategy = (d.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return None
    return strategy.get("rollingUpdate") or {}


def fenceposts(d: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as upstream's ResolveFenceposts: both zero after rounding means
    maxUnavailable 1, so a rollout can always progress."""
    ru = rolling(d) or {}
    desired = spec_replicas(d)
    surge = scaled_value(ru.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(ru.get("maxUnavailable", 0), desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(d: Obj) -> int:
    return fenceposts(d)[0] if rolling(d) is not None else 0


def max_unavailable(d: Obj) -> int:
    desired = spec_replicas(d)
    if rolling(d) is None or desired == 0:
        return 0
    return min(fenceposts(d)[1], desired)


# -- annotations ----------------------------------------------------------------------------
def copy_annotations(d: Obj, rs: Obj) -> bool:
    """Copy the Deployment's annotations (but the skipped ones) onto `rs`; True when any changed."""
    ann = meta.meta(rs).setdefault("annotations", {})
    changed = False
    for k, v in annotations_of(d).items():
        if k in SKIPPED_ANNOTATIONS or ann.get(k) == v:
            continue
        ann[k] = v
        changed = True
    return changed


def set_replicas_annotations(rs: Obj, desired: int, maximum: int) -> bool:
    ann = meta.meta(rs).setdefault("annotations", {})
    changed = False
    for k, v in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if ann.get(k) != v:
            ann[k] = v
            changed = True
    return changed


def replicas_annotations_stale(rs: Obj, desired: int, maximum: int) -> bool:
    ann = annotations_of(rs)
    return ann.get(DESIRED_REPLICAS) != str(desired) or ann.get(MAX_REPLICAS) != str(maximum)


def set_new_rs_annotations(d: Obj, rs: Obj, new_revision: int, exists: bool) -> bool:
    """Upstream's SetNewReplicaSetAnnotations: copy the Deployment's annotations, raise the revision,
    and when an existing revision is raised (a rollback to this template) remember the old one in
    revision-history, trimmed from the front to 2000 characters."""
    changed = copy_annotations(d, rs)
    ann = meta.meta(rs).setdefault("annotations", {})
    old = ann.get(REVISION)
    try:
        old_int = int(old) if old else 0
    except ValueError:
        return False
    if old_int < new_revision:
        ann[REVISION] = str(new_revision)
        changed = True
        if old is not None:
            history = ann.get(REVISION_HISTORY, "")
            if not history:
                ann[REVISION_HISTORY] = old
            else:
                parts = history.split(",")
                total, start = len(history) + len(old) + 1, 0
                while total > MAX_REVISION_HISTORY_CHARS and start < len(parts):
                    total -= len(parts[start]) + 1
                    start += 1
                if total <= MAX_REVISION_HISTORY_CHARS:
                    ann[REVISION_HISTORY] = ",".join(parts[start:] + [old])
    if not exists:
        desired = spec_replicas(d)
        if set_replicas_annotations(rs, desired, desired + max_surge(d)):
            changed = True
    return changed


def max_replicas_annotation(rs: Obj) -> int | None:
    try:
        return int(annotations_of(rs)[MAX_REPLICAS])
    except (KeyError, ValueError):
        return None


def round_half_away(x: float) -> int:
    """Go's math.Round."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def has_progress_deadline(d: Obj) -> bool:
    v = (d.get("spec") or {}).get("progressDeadlineSeconds")
    return v is not None and v != MAX_INT32


def has_revision_history_limit(d: Obj) -> bool:
    v = (d.get("spec") or {}).get("revisionHistoryLimit")
    return v is not None and v != MAX_INT32
