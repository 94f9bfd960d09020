"""RBAC rules (rbac.authorization.k8s.io/v1): names are path segments (so
`system:controller:x` is fine), rules need verbs and either resources with
apiGroups or (cluster roles only) nonResourceURLs; bindings need a roleRef,
which never changes, and subjects of a known kind."""
from __future__ import annotations

from master.apiserver.resources import Causes, Obj, Strategy, register

RBAC_GROUP = "rbac.authorization.k8s.io"


def validate_path_segment(value: str) -> str | None:
    if value in (".", ".."):
        return f"may not be '{value}'"
    for bad in ("/", "%"):
        if bad in value:
            return f"may not contain '{bad}'"
    return None


def _rules(obj: Obj, cluster: bool) -> Causes:
    causes: Causes = []
    for i, r in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        if not r.get("verbs"):
            causes.append((f"{path}.verbs", "Required value: verbs must contain at least one value"))
        if r.get("nonResourceURLs"):
            if not cluster:
                causes.append((f"{path}.nonResourceURLs", "Invalid value: namespaced rules cannot apply to non-resource URLs"))
            elif r.get("resources") or r.get("apiGroups"):
                causes.append((f"{path}.nonResourceURLs", "Invalid value: rules cannot apply to both regular resources and non-resource URLs"))
        else:
            if not r.get("resources"):
                causes.append((f"{path}.resources", "Required value: resource rules must supply at least one resource"))
            if r.get("apiGroups") is None:
                causes.append((f"{path}.apiGroups", "Required value: resource rules must supply at least one api group"))
    return causes


def _default_binding(obj: Obj) -> None:
    ref = obj.get("roleRef")
    if isinstance(ref, dict):
        ref.setdefault("apiGroup", RBAC_GROUP)
    for s in obj.get("subjects") or []:
        if isinstance(s, dict) and "apiGroup" not in s:
            s["apiGroup"] = "" if s.get("kind") == "ServiceAccount" else RBAC_GROUP
        if isinstance(s, dict) and s.get("apiGroup") == "":
            del s["apiGroup"]


def _binding(obj: Obj, cluster: bool) -> Causes:
    causes: Causes = []
    ref = obj.get("roleRef") or {}
    kinds = ("ClusterRole",) if cluster else ("Role", "ClusterRole")
    if ref.get("kind") not in kinds:
        causes.append(("roleRef.kind", f'Unsupported value: "{ref.get("kind", "")}": supported values: '
                                       + ", ".join(f'"{k}"' for k in kinds)))
    if ref.get("apiGroup") != RBAC_GROUP:
        causes.append(("roleRef.apiGroup", f'Unsupported value: "{ref.get("apiGroup", "")}": supported values: "{RBAC_GROUP}"'))
    if not ref.get("name"):
        causes.append(("roleRef.name", "Required value"))
    for i, s in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        kind = s.get("kind")
        if kind not in ("ServiceAccount", "User", "Group"):
            causes.append((f"{path}.kind", f'Unsupported value: "{kind}": supported values: "Group", "ServiceAccount", "User"'))
        if not s.get("name"):
            causes.append((f"{path}.name", "Required value"))
        if kind == "ServiceAccount" and cluster and not s.get("namespace"):
            causes.append((f"{path}.namespace", "Required value"))
    return causes


def _role_ref_immutable(new: Obj, old: Obj) -> Causes:
    if new.get("roleRef") != old.get("roleRef"):
        return [("roleRef", f"Invalid value: {new.get('roleRef')}: cannot change roleRef")]
    return []


class _RBAC(Strategy):
    has_status = False
    tracks_generation = False
    name_check = staticmethod(validate_path_segment)
    cluster = False


@register("roles", RBAC_GROUP)
class RoleStrategy(_RBAC):
    def validate(self, obj: Obj) -> Causes:
        return _rules(obj, self.cluster)


@register("clusterroles", RBAC_GROUP)
class ClusterRoleStrategy(RoleStrategy):
    cluster = True


@register("rolebindings", RBAC_GROUP)
class RoleBindingStrategy(_RBAC):
    def prepare_create(self, obj: Obj) -> None:
        _default_binding(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        _default_binding(new)

    def validate(self, obj: Obj) -> Causes:
        return _binding(obj, self.cluster)

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        return self.validate(new) + _role_ref_immutable(new, old)


@register("clusterrolebindings", RBAC_GROUP)
class ClusterRoleBindingStrategy(RoleBindingStrategy):
    cluster = True
