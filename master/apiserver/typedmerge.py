"""The merge of an applied configuration into the live object, by type, as
upstream's structured-merge-diff merges: structs and granular maps key by
key, lists of type map item by key, sets by value, and atomic lists, atomic
maps and scalars replaced whole.  Pure; `ssa.apply` calls it, then prunes
what the applier stopped applying (that needs the managers, which live there).
"""
from __future__ import annotations

import copy
from typing import Any

from master.apiserver.fieldset import keyed_items
from master.apiserver.schemas.structure import ASSOCIATIVE, LIST, MAP, SET, STRUCT, UNTYPED, Type


def merge(live: Any, applied: Any, t: Type) -> Any:
    """The applied configuration over the live object, by type: structs and granular maps merge key by
    key, lists of type map merge item by key, sets union, atomic lists and maps and scalars are replaced.
    Inputs are not mutated."""
    return _merge(live, applied, t)


def _merge(live: Any, applied: Any, t: Type) -> Any:
    if isinstance(applied, dict) and not t.atomic and t.shape in (STRUCT, MAP, UNTYPED):
        out = dict(live) if isinstance(live, dict) else {}
        for k, v in applied.items():
            if v is not None:
                out[k] = _merge(out.get(k), v, t.child(k))
        if isinstance(live, dict):  # what the applied config does not name stays, copied
            for k in live.keys() - applied.keys():
                out[k] = copy.deepcopy(live[k])
        return out
    if isinstance(applied, list) and isinstance(live, list) and t.shape == LIST and t.list_type in (SET, ASSOCIATIVE):
        merged = _merge_list(live, applied, t)
        if merged is not None:
            return merged
    return copy.deepcopy(applied)


def _merge_list(lhs: list, rhs: list, t: Type) -> list | None:
    """structured-merge-diff's list merge: items only in the live list keep their places, shared items
    take the applied order, new items go where the applied list puts them."""
    left, right = keyed_items(lhs, t), keyed_items(rhs, t)
    if left is None or right is None:
        return None
    assert t.elem is not None
    lmap, rmap = dict(left), dict(right)
    shared = [el for el, _ in right if el in lmap]
    out: list = []
    done: set[str] = set()

    def take(el: str) -> None:
        done.add(el)
        if t.list_type == ASSOCIATIVE:
            out.append(_merge(lmap.get(el), rmap[el], t.elem))  # type: ignore[arg-type]
        else:
            out.append(copy.deepcopy(rmap[el]))

    nxt = 0
    i = j = 0
    while i < len(left) or j < len(right):
        if i < len(left) and j < len(right):
            el = left[i][0]
            if el == right[j][0]:
                take(el)
                i, j, nxt = i + 1, j + 1, nxt + 1
                continue
            if el in rmap and nxt < len(shared) and shared[nxt] != el:
                i += 1  # a shared item, but not the next one in the applied order
                continue
        if i < len(left):
            el = left[i][0]
            if el not in rmap:
                out.append(copy.deepcopy(left[i][1]))
                i += 1
                continue
            if el in done:
                i += 1
                continue
        if j < len(right):
            el = right[j][0]
            if el not in done:
                take(el)
            j += 1
            if nxt < len(shared) and shared[nxt] == el:
                nxt += 1
    return out
