"""Ingress rules (networking.k8s.io/v1): a default backend or rules; every
path has a pathType and a backend naming a service port or a resource."""
from __future__ import annotations

from master.apiserver.resources import Causes, Obj, Strategy, register

PATH_TYPES = ("Exact", "Prefix", "ImplementationSpecific")


def _backend_causes(b: Obj, path: str) -> Causes:
    svc, res = b.get("service"), b.get("resource")
    if bool(svc) == bool(res):
        return [(path, "Invalid value: exactly one of service or resource must be specified")]
    if svc:
        causes: Causes = []
        if not svc.get("name"):
            causes.append((f"{path}.service.name", "Required value"))
        port = svc.get("port") or {}
        if bool(port.get("name")) == bool(port.get("number")):
            causes.append((f"{path}.service.port", "Invalid value: port name or number is required"))
        return causes
    return []


@register("ingresses", "networking.k8s.io")
class IngressStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        obj.setdefault("spec", {})
        obj["status"] = {"loadBalancer": {}}

    def validate(self, obj: Obj) -> Causes:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return [("spec", "Required value")]
        causes: Causes = []
        if not spec.get("rules") and not spec.get("defaultBackend"):
            causes.append(("spec.rules", "Required value: either `defaultBackend` or `rules` must be specified"))
        if spec.get("defaultBackend"):
            causes += _backend_causes(spec["defaultBackend"], "spec.defaultBackend")
        for i, rule in enumerate(spec.get("rules") or []):
            for j, p in enumerate(((rule.get("http") or {}).get("paths")) or []):
                where = f"spec.rules[{i}].http.paths[{j}]"
                if p.get("pathType") not in PATH_TYPES:
                    causes.append((f"{where}.pathType", "Required value: pathType must be specified" if not p.get("pathType")
                                   else f'Unsupported value: "{p["pathType"]}": supported values: "Exact", "ImplementationSpecific", "Prefix"'))
                if p.get("pathType") in ("Exact", "Prefix") and not str(p.get("path", "")).startswith("/"):
                    causes.append((f"{where}.path", f'Invalid value: "{p.get("path", "")}": must be an absolute path'))
                causes += _backend_causes(p.get("backend") or {}, f"{where}.backend")
        return causes
