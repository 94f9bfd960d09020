"""Namespace rules: names are DNS-1123 labels, phase Active until deleted."""
from __future__ import annotations

from apimachinery import meta
from master.apiserver.resources import Obj, Strategy, register


@register("namespaces")
class NamespaceStrategy(Strategy):
    tracks_generation = False
    name_check = staticmethod(meta.validate_dns1123_label)

    def prepare_create(self, obj: Obj) -> None:
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
