"""ServiceAccount rules: no status, no generation; secret and image-pull
secret references need names."""
from __future__ import annotations

from master.apiserver.resources import Causes, Obj, Strategy, register


@register("serviceaccounts")
class ServiceAccountStrategy(Strategy):
    has_status = False
    tracks_generation = False

    def validate(self, obj: Obj) -> Causes:
        causes: Causes = []
        for field in ("secrets", "imagePullSecrets"):
            for i, ref in enumerate(obj.get(field) or []):
                if not isinstance(ref, dict) or not ref.get("name"):
                    causes.append((f"{field}[{i}].name", "Required value"))
        return causes
