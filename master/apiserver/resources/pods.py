"""Pod rules: upstream's defaults, validation of the fields Coracle
implements, immutability of the spec (but container images), QoS class."""
from __future__ import annotations

import copy

from typing import Any

from apimachinery import meta
from apimachinery.client import retry_on_conflict
from apimachinery.kinds import lookup
from apimachinery.quantity import QuantityError, parse_quantity
from master.apiserver import errors
from master.apiserver.resources import Causes, Objects, Obj, Strategy, register

PODS = lookup("", "v1", "pods")

RESTART_POLICIES = ("Always", "OnFailure", "Never")


def qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, from requests and limits as upstream computes it."""
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    any_set = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for r in ("cpu", "memory"):
            if r not in lim or parse_quantity(req.get(r, lim[r])) != parse_quantity(lim[r]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _default_container(c: Obj) -> None:
    image = c.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
    c.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    res = c.setdefault("resources", {})
    lim = res.get("limits") or {}
    if lim:
        req = res.setdefault("requests", {})
        for k, v in lim.items():
            req.setdefault(k, v)
    for p in c.get("ports") or []:
        p.setdefault("protocol", "TCP")


def _validate_container(c: Obj, path: str, names: set[str]) -> Causes:
    causes: Causes = []
    name = c.get("name", "")
    if not name:
        causes.append((f"{path}.name", "Required value"))
    else:
        err = meta.validate_dns1123_label(name)
        if err:
            causes.append((f"{path}.name", f'Invalid value: "{name}": {err}'))
        elif name in names:
            causes.append((f"{path}.name", f'Duplicate value: "{name}"'))
        names.add(name)
    if not c.get("image"):
        causes.append((f"{path}.image", "Required value"))
    res = c.get("resources") or {}
    parsed: dict[str, dict[str, object]] = {}
    for part in ("limits", "requests"):
        for k, v in (res.get(part) or {}).items():
            try:
                parsed.setdefault(part, {})[k] = parse_quantity(v)
            except (QuantityError, ValueError, TypeError):
                causes.append((f"{path}.resources.{part}[{k}]", f'Invalid value: "{v}": must be a quantity'))
    for k, req in parsed.get("requests", {}).items():
        lim = parsed.get("limits", {}).get(k)
        if lim is not None and req > lim:  # type: ignore[operator]
            causes.append((f"{path}.resources.requests", f'Invalid value: "{res["requests"][k]}": must be less than or equal to {k} limit of {res["limits"][k]}'))
    for i, e in enumerate(c.get("env") or []):
        if not e.get("name"):
            causes.append((f"{path}.env[{i}].name", "Required value"))
    return causes


@register("pods")
class PodStrategy(Strategy):
    tracks_generation = False

    def prepare_create(self, obj: Obj) -> None:
        spec = self._default(obj)
        status: Obj = {"phase": "Pending"}
        try:
            status["qosClass"] = qos_class(spec)
        except (QuantityError, ValueError, TypeError, AttributeError):
            pass  # validation reports the bad quantity
        obj["status"] = status

    def deletion_grace(self, obj: Obj, options: Obj) -> int | None:
        """Upstream's pod strategy CheckGracefulDeleteAndUpdate: an unscheduled or finished pod goes at
        once; else the options' grace, the spec's terminationGracePeriodSeconds, 30."""
        if not obj.get("spec", {}).get("nodeName"):
            return 0  # never scheduled: nothing to stop
        if obj.get("status", {}).get("phase") in ("Succeeded", "Failed") and options.get("gracePeriodSeconds") is None:
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = obj.get("spec", {}).get("terminationGracePeriodSeconds", 30)
        # upstream: a grace of 0 from a client means "as soon as possible", kept at 1 so the node still cleans up
        if grace == 0 and options.get("gracePeriodSeconds") == 0 and not obj["metadata"].get("deletionTimestamp"):
            return 1
        return int(grace)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        # upstream defaults every write, so a PUT of a minimal manifest (kubectl replace) compares equal
        super().prepare_update(new, old)
        self._default(new)

    @staticmethod
    def _default(obj: Obj) -> Obj:
        spec = obj.setdefault("spec", {})
        if not isinstance(spec, dict):
            return spec
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        for c in list(spec.get("containers") or []) + list(spec.get("initContainers") or []):
            if isinstance(c, dict):
                _default_container(c)
        return spec

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes: Causes = []
        containers = spec.get("containers")
        if not containers:
            causes.append(("spec.containers", "Required value"))
        names: set[str] = set()
        for field in ("initContainers", "containers"):
            for i, c in enumerate(spec.get(field) or []):
                if not isinstance(c, dict):
                    causes.append((f"spec.{field}[{i}]", "Invalid value: must be an object"))
                    continue
                causes += _validate_container(c, f"spec.{field}[{i}]", names)
        rp = spec.get("restartPolicy")
        if rp not in RESTART_POLICIES:
            causes.append(("spec.restartPolicy", f'Unsupported value: "{rp}": supported values: "Always", "OnFailure", "Never"'))
        grace = spec.get("terminationGracePeriodSeconds")
        if grace is not None and (not isinstance(grace, int) or grace < 0):
            causes.append(("spec.terminationGracePeriodSeconds", "Invalid value: must be greater than or equal to 0"))
        vols = set()
        for v in spec.get("volumes") or []:
            vols.add(v.get("name"))
        for field in ("initContainers", "containers"):
            for i, c in enumerate(spec.get(field) or []):
                for j, m in enumerate((c.get("volumeMounts") or []) if isinstance(c, dict) else []):
                    if m.get("name") not in vols:
                        causes.append((f"spec.{field}[{i}].volumeMounts[{j}].name", f'Not found: "{m.get("name")}"'))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes = self.validate(new)
        a, b = copy.deepcopy(new.get("spec", {})), copy.deepcopy(old.get("spec", {}))
        for spec in (a, b):
            for field in ("containers", "initContainers"):
                for c in spec.get(field) or []:
                    if isinstance(c, dict):
                        c.pop("image", None)
            spec.pop("activeDeadlineSeconds", None)
            spec.pop("tolerations", None)
        if a.get("nodeName") is None and b.get("nodeName"):
            a["nodeName"] = b["nodeName"]
        if a != b:
            causes.append(("spec", "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
                                   "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds` or `spec.tolerations` (only additions to existing tolerations)"))
        return causes


def bind(objects: Objects, ns: str, name: str, binding: Any) -> None:
    """POST pods/{name}/binding: set spec.nodeName of a pod that has none (the scheduler's write),
    re-reading on a lost race; 409 when the pod is bound already or being deleted."""
    assert PODS is not None
    if not isinstance(binding, dict) or not isinstance(binding.get("target"), dict) \
            or not binding["target"].get("name"):
        raise errors.invalid(PODS, "Binding", name, [("target.name", "Required value")])
    node = binding["target"]["name"]

    def attempt() -> None:
        assert PODS is not None
        pod = objects.get(PODS, ns, name)
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict(PODS, name, "pod is being deleted, cannot be assigned to a host")
        current = pod.get("spec", {}).get("nodeName")
        if current:
            raise errors.conflict(PODS, name, f"pod {name} is already assigned to node \"{current}\"")
        pod["spec"]["nodeName"] = node
        objects.swap(PODS, ns, name, pod)  # no update rules: spec.nodeName is not a client's to change
    retry_on_conflict(attempt, 16, retriable=errors.is_stale_write)
