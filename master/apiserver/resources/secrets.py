"""Secret rules: type Opaque by default, `stringData` merged into `data`
(base64) and dropped, data values valid base64, keys as for ConfigMaps, the
keys each built-in type requires, type immutable, and `immutable: true`."""
from __future__ import annotations

import base64

from master.apiserver.resources import Causes, Obj, Strategy, register
from master.apiserver.resources.configmaps import MAX_SIZE, b64_error, immutable_causes, key_error

SA_NAME = "kubernetes.io/service-account.name"
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def merge_string_data(obj: Obj) -> None:
    """upstream's conversion: stringData wins over data for the same key, then goes away."""
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = obj.get("data")
        if not isinstance(data, dict):
            data = obj["data"] = {}
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()


@register("secrets")
class SecretStrategy(Strategy):
    has_status = False
    tracks_generation = False

    def prepare_create(self, obj: Obj) -> None:
        obj.setdefault("type", "Opaque")
        merge_string_data(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        super().prepare_update(new, old)
        new.setdefault("type", "Opaque")
        merge_string_data(new)

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        data = obj.get("data") or {}
        if not isinstance(data, dict):
            return [("data", "Invalid value: must be a map of base64 strings")]
        size = 0
        for k, v in data.items():
            err = key_error(k)
            if err:
                causes.append((f"data[{k}]", f'Invalid value: "{k}": {err}'))
            err = b64_error(v)
            if err:
                causes.append((f"data[{k}]", f"Invalid value: {err}"))
            else:
                size += len(base64.b64decode(v))
        if size > MAX_SIZE:
            causes.append(("data", f"Too long: must have at most {MAX_SIZE} bytes"))
        stype = obj.get("type", "Opaque")
        for key in REQUIRED_KEYS.get(stype, ()):
            if key not in data:
                causes.append((f"data[{key}]", "Required value"))
        if stype == "kubernetes.io/service-account-token":
            if not ((obj.get("metadata") or {}).get("annotations") or {}).get(SA_NAME):
                causes.append((f"metadata.annotations[{SA_NAME}]", "Required value"))
        if stype == "kubernetes.io/basic-auth" and "username" not in data and "password" not in data:
            causes.append(("data[username]", "Required value"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> Causes:
        causes = self.validate(new)
        if new.get("type", "Opaque") != old.get("type", "Opaque"):
            causes.append(("type", f'Invalid value: "{new.get("type")}": field is immutable'))
        return causes + immutable_causes(new, old, ("data",))
