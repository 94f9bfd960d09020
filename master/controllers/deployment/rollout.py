"""The Deployment controller's scaling decisions, pure: which ReplicaSet is
the new one, how far a rolling update may scale it up and the old ones down
(maxSurge/maxUnavailable), proportional scaling when the Deployment's size
changes mid-rollout, Recreate's order, and which old ReplicaSets the
revision history limit lets go.  As upstream's rolling.go, recreate.go,
sync.go; each function returns sizes and controller.py carries them out.

Neighbours: model.py (facts), status.py (status).
"""
from __future__ import annotations

import copy
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from apimachinery import meta
from master.controllers.deployment.model import (
    DESIRED_REPLICAS, HASH_LABEL, Obj, active, annotations_of, by_creation, by_revision, by_size, equal_ignore_hash,
    has_revision_history_limit, max_replicas_annotation, max_surge, max_unavailable, round_half_away, rolling,
    scaled_value, selector_matches, set_new_rs_annotations, spec_replicas, status_int, sum_spec, sum_status,
    template_hash, controller_ref, owner_ref)


@dataclass(frozen=True, slots=True)
class Scale:
    """Set `name` to `replicas`.  `refresh`: write even at the same size when the
    desired/max-replicas annotations are stale (proportional scaling does)."""
    name: str
    replicas: int
    refresh: bool = False


class Claim(enum.Enum):
    OURS = "ours"          # controlled by this Deployment and matching its selector
    RELEASE = "release"    # controlled by it but no longer matching: drop our ownerReference
    ADOPT = "adopt"        # an orphan that matches: add our controller reference
    IGNORE = "ignore"      # someone else's, not matching, or being deleted


def claim(d: Obj, rs: Obj) -> Claim:
    """Upstream's ControllerRefManager for one ReplicaSet of the Deployment's namespace."""
    deleting = bool(d.get("metadata", {}).get("deletionTimestamp"))
    match, ref = selector_matches(d, meta.labels(rs)), controller_ref(rs)
    if ref is not None:
        if ref.get("uid") != meta.uid(d):
            return Claim.IGNORE
        if match:
            return Claim.OURS
        return Claim.IGNORE if deleting else Claim.RELEASE
    if deleting or not match or rs.get("metadata", {}).get("deletionTimestamp"):
        return Claim.IGNORE
    return Claim.ADOPT


def new_replicaset(d: Obj, olds: list[Obj], revision: int) -> Obj:
    """The ReplicaSet for the Deployment's template: `<name>-<hash>`, the hash label on its labels,
    selector and template, controlled by the Deployment, sized by new_rs_replicas, annotated."""
    template = copy.deepcopy(d["spec"]["template"])
    h = template_hash(template, (d.get("status") or {}).get("collisionCount"))
    template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
    selector = copy.deepcopy(d["spec"]["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = h
    rs: Obj = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": f"{meta.name(d)}-{h}", "namespace": meta.namespace(d),
                            "ownerReferences": [owner_ref(d)], "labels": dict(template["metadata"]["labels"])},
               "spec": {"replicas": 0, "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                        "selector": selector, "template": template}}
    rs["spec"]["replicas"] = new_rs_replicas(d, [*olds, rs], rs)
    set_new_rs_annotations(d, rs, revision, exists=False)
    return rs


def find_new(d: Obj, rss: list[Obj]) -> Obj | None:
    """The oldest ReplicaSet whose template is the Deployment's (ignoring the hash label)."""
    template = (d.get("spec") or {}).get("template")
    for rs in by_creation(rss):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def split_old(rss: list[Obj], new: Obj | None) -> list[Obj]:
    new_uid = meta.uid(new) if new is not None else None
    return [rs for rs in rss if meta.uid(rs) != new_uid]


def new_rs_replicas(d: Obj, all_rss: Sequence[Obj | None], new: Obj) -> int:
    """How many replicas the new ReplicaSet may have now (upstream's NewRSNewReplicas)."""
    desired = spec_replicas(d)
    ru = rolling(d)
    if ru is None:
        return desired
    surge = scaled_value(ru.get("maxSurge", 0), desired, True)
    current, max_total = sum_spec(all_rss), desired + surge
    if current >= max_total:
        return spec_replicas(new)
    return spec_replicas(new) + min(max_total - current, desired - spec_replicas(new))


def reconcile_new(d: Obj, all_rss: Sequence[Obj | None], new: Obj) -> int | None:
    """The new ReplicaSet's next size in a rolling update, None when it stays."""
    desired, have = spec_replicas(d), spec_replicas(new)
    if have == desired:
        return None
    target = desired if have > desired else new_rs_replicas(d, all_rss, new)
    return None if target == have else target


def reconcile_old(d: Obj, all_rss: Sequence[Obj | None], olds: list[Obj], new: Obj) -> list[Scale]:
    """Scale old ReplicaSets down as far as maxUnavailable allows: first their unhealthy
    replicas (oldest ReplicaSet first), then available ones while enough stay available."""
    olds = [copy.deepcopy(rs) for rs in active(list(olds))]
    if sum_spec(list(olds)) == 0:
        return []
    min_available = spec_replicas(d) - max_unavailable(d)
    new_unavailable = spec_replicas(new) - status_int(new, "availableReplicas")
    max_scaled_down = sum_spec(all_rss) - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    ops: list[Scale] = []
    cleaned = 0
    for rs in by_creation(olds):
        if cleaned >= max_scaled_down:
            break
        have, avail = spec_replicas(rs), status_int(rs, "availableReplicas")
        if have == 0 or have <= avail:  # no unhealthy replicas (avail > have: status lags a scale-down;
            continue                     # upstream fails the sync there, we just skip the ReplicaSet)
        down = min(max_scaled_down - cleaned, have - avail)
        rs["spec"]["replicas"] = have - down
        ops.append(Scale(meta.name(rs), have - down))
        cleaned += down
    # An available pod of a ReplicaSet scaled below it is about to go: count at most spec.replicas of
    # each, or a status that lags a scale-down lets two syncs take the same pods and break maxUnavailable.
    available = sum(min(spec_replicas(rs), status_int(rs, "availableReplicas")) for rs in [*olds, new])
    if available > min_available:
        budget, done = available - min_available, 0
        for rs in by_creation(olds):
            if done >= budget:
                break
            have = spec_replicas(rs)
            if have == 0:
                continue
            down = min(have, budget - done)
            rs["spec"]["replicas"] = have - down
            ops.append(Scale(meta.name(rs), have - down))
            done += down
    return ops


def is_scaling_event(d: Obj, new: Obj | None, olds: list[Obj]) -> bool:
    """An active ReplicaSet was sized for another replica count than the Deployment's."""
    for rs in active([*olds, new]):
        want = annotations_of(rs).get(DESIRED_REPLICAS)
        if want is not None and want.lstrip("-").isdigit() and int(want) != spec_replicas(d):
            return True
    return False


def is_saturated(d: Obj, rs: Obj | None) -> bool:
    if rs is None:
        return False
    try:
        desired = int(annotations_of(rs).get(DESIRED_REPLICAS, ""))
    except ValueError:
        return False
    n = spec_replicas(d)
    return spec_replicas(rs) == n and desired == n and status_int(rs, "availableReplicas") == n


def active_or_latest(new: Obj | None, olds: list[Obj]) -> Obj | None:
    """The only active ReplicaSet; with none active, the new one or else the newest old one."""
    if new is None and not olds:
        return None
    olds = by_creation(olds, newest_first=True)
    live = active([*olds, new])
    if not live:
        return new if new is not None else olds[0]
    return live[0] if len(live) == 1 else None


def _fraction(d: Obj, rs: Obj) -> int:
    desired = spec_replicas(d)
    if desired == 0:
        return -spec_replicas(rs)
    before = max_replicas_annotation(rs)
    if not before:
        before = status_int(d, "replicas")
    if not before:
        return 0
    return round_half_away(spec_replicas(rs) * (desired + max_surge(d)) / before) - spec_replicas(rs)


def _proportion(d: Obj, rs: Obj, to_add: int, added: int) -> int:
    if spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    frac, allowed = _fraction(d, rs), to_add - added
    return min(frac, allowed) if to_add > 0 else max(frac, allowed)


def scale(d: Obj, new: Obj | None, olds: list[Obj]) -> list[Scale]:
    """Upstream's `scale`: a paused Deployment or a replica-count change.  One active ReplicaSet
    takes the whole count; a saturated new one drains the old; otherwise (RollingUpdate) the
    difference is spread over the active ReplicaSets in proportion to their size."""
    desired = spec_replicas(d)
    only = active_or_latest(new, olds)
    if only is not None:
        return [] if spec_replicas(only) == desired else [Scale(meta.name(only), desired)]
    if is_saturated(d, new):
        return [Scale(meta.name(rs), 0) for rs in active(list(olds))]
    if rolling(d) is None:
        return []
    live = active([*olds, new])
    allowed = desired + max_surge(d) if desired > 0 else 0
    to_add = allowed - sum_spec(list(live))
    if to_add > 0:
        live = by_size(live, newer_first_on_ties=True)
    elif to_add < 0:
        live = by_size(live, newer_first_on_ties=False)
    sizes: dict[str, int] = {}
    added = 0
    for rs in live:
        p = _proportion(d, rs, to_add, added) if to_add else 0
        sizes[meta.name(rs)] = spec_replicas(rs) + p
        added += p
    ops = []
    for i, rs in enumerate(live):
        size = sizes[meta.name(rs)]
        if i == 0 and to_add:
            size = max(size + to_add - added, 0)
        ops.append(Scale(meta.name(rs), size, refresh=True))
    return ops


def old_pods_running(new: Obj | None, olds: list[Obj], pods: list[Obj]) -> bool:
    """Recreate waits until no old ReplicaSet counts a pod and no pod of one is still not terminal."""
    if sum_status(list(olds), "replicas") > 0:
        return True
    old_uids = {meta.uid(rs) for rs in olds} - ({meta.uid(new)} if new is not None else set())
    for pod in pods:
        ref = next((r for r in pod.get("metadata", {}).get("ownerReferences") or [] if r.get("controller")), None)
        if ref is None or ref.get("uid") not in old_uids:
            continue
        if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
            return True
    return False


def cleanup_victims(d: Obj, olds: list[Obj]) -> list[Obj]:
    """Old ReplicaSets beyond revisionHistoryLimit, lowest revision first, that are fully scaled
    down and observed so (never one with replicas or being deleted)."""
    if not has_revision_history_limit(d):
        return []
    alive = [rs for rs in olds if not rs.get("metadata", {}).get("deletionTimestamp")]
    extra = len(alive) - int(d["spec"]["revisionHistoryLimit"])
    out = []
    for rs in by_revision(alive)[:max(extra, 0)]:
        if status_int(rs, "replicas") or spec_replicas(rs) or \
                int(rs.get("metadata", {}).get("generation") or 0) > status_int(rs, "observedGeneration"):
            continue
        out.append(rs)
    return out
