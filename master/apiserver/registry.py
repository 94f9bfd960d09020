"""Generic object registry: the semantics of get, list, create, update,
patch and delete for every kind, on top of the store, with no HTTP in it.

Rules shared by all kinds live here (uid, creationTimestamp, generation,
resourceVersion preconditions, namespaces that must exist); DELETE's
(finalizers, propagation, graceful deletion) in `deletion`, PATCH's (the
patch types, server-side apply) in `patching`; kind-specific ones in
`resources/`, through each kind's strategy.  A write that loses a race with
another raises errors.StaleWrite; the verbs that re-read and try again do it
with apimachinery.client.retry_on_conflict.
"""
from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from apimachinery import meta
from apimachinery.fields import FieldSelector, object_fields
from apimachinery.kinds import ResourceInfo, by_kind, lookup
from apimachinery.labels import Selector, validate_labels
from master.apiserver import deletion, errors, patching, ssa, storage
from master.apiserver.resources import Obj, strategy_for
from master.apiserver.schemas.structure import for_kind
from master.store import Compacted, Conflict, KeyExists, KeyNotFound, Store

NAMESPACES = lookup("", "v1", "namespaces")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_GEN_BASE_MAX = 63 - 5  # upstream cuts a long generateName so the name stays a valid label


def _generated_name(base: str) -> str:
    return base[:_GEN_BASE_MAX] + "".join(random.choice(_GEN_CHARS) for _ in range(5))


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[Obj]
    revision: int
    continue_token: str


def _now() -> str:
    return meta.now_rfc3339()


class Registry:
    """Safe to call from several threads at once (the API server's store pool on etcd): it keeps
    no state of its own between calls; the store and the allocators' keys hold it."""

    def __init__(self, store: Store, clock: Callable[[], str] = _now):
        self.store = store
        self.clock = clock
        # The API server's watch cache: a namespace it holds Active needs no store read on create
        # (as upstream's NamespaceLifecycle admission reads its informer and asks etcd on a miss).
        self.cached_namespace: Callable[[str], Obj | None] = lambda _name: None

    # -- reads -------------------------------------------------------------
    def get(self, res: ResourceInfo, ns: str | None, name: str) -> Obj:
        kv = self.store.get(storage.object_key(res, ns, name))
        if kv is None:
            raise errors.not_found(res, name)
        return storage.decode(kv.value, kv.mod_revision, res)

    def list(self, res: ResourceInfo, ns: str | None, labels: Selector | None = None,
             fields: FieldSelector | None = None, limit: int = 0, continue_token: str = "",
             at_revision: int = 0) -> ListResult:
        prefix = storage.prefix(res, ns)
        start_after, revision = "", at_revision
        if continue_token:
            try:
                tok = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start_after, revision = tok["start"], int(tok["rv"])
            except (ValueError, KeyError, TypeError):
                raise errors.bad_request("continue key is not valid: invalid continue token") from None
            if not start_after.startswith(prefix):
                raise errors.bad_request("continue key is not valid: the token does not belong to this list")
        items: list[Obj] = []
        last_key, more = "", False

        def keep(obj: Obj) -> bool:
            return ((labels is None or labels.matches(meta.labels(obj)))
                    and (fields is None or fields.matches(object_fields(res.kind, obj))))

        name_hint = fields.value_for("metadata.name") if fields else None
        if name_hint is not None and not continue_token and (ns or not res.namespaced):
            # the informer-style `metadata.name=X` list: one key, not a scan
            kv = self.store.get(storage.object_key(res, ns, name_hint))
            obj = storage.decode(kv.value, kv.mod_revision, res) if kv else None
            return ListResult([obj] if obj is not None and keep(obj) else [], self.store.current_revision(), "")
        chunk = 0 if not limit else max(limit, 64)
        try:
            while True:
                kvs, revision, chunk_more = self.store.list(prefix, start_after=start_after, limit=chunk,
                                                            revision=revision)
                for i, kv in enumerate(kvs):
                    obj = storage.decode(kv.value, kv.mod_revision, res)
                    last_key = kv.key
                    if keep(obj):
                        items.append(obj)
                        if limit and len(items) >= limit:
                            more = chunk_more or i < len(kvs) - 1
                            break
                if more or not chunk_more or not kvs:
                    break
                start_after = kvs[-1].key
        except Compacted:
            raise errors.gone("The provided continue parameter is too old to display a consistent list result. "
                              "You can start a new list without the continue parameter.") from None
        token = ""
        if more:
            token = base64.urlsafe_b64encode(json.dumps({"start": last_key, "rv": revision}).encode()).decode()
        return ListResult(items, revision or self.store.current_revision(), token)

    # -- writes ------------------------------------------------------------
    def _check_namespace(self, res: ResourceInfo, ns: str | None, name: str) -> None:
        if not res.namespaced:
            return
        assert NAMESPACES is not None
        nsobj = self.cached_namespace(ns or "")
        if nsobj is None or nsobj.get("status", {}).get("phase") == "Terminating":
            kv = self.store.get(storage.object_key(NAMESPACES, None, ns or ""))  # not seen yet, or re-created
            if kv is None:
                raise errors.not_found(NAMESPACES, ns or "")
            nsobj = json.loads(kv.value)
        if nsobj.get("status", {}).get("phase") == "Terminating":
            raise errors.namespace_terminating(res, name, ns or "")

    def check_body(self, res: ResourceInfo, ns: str | None, obj: Any) -> Obj:
        """The request's object with kind, apiVersion and namespace checked and set (400s)."""
        if not isinstance(obj, dict):
            raise errors.bad_request("the request body must be a JSON object")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != res.kind:
            raise errors.bad_request(f"the kind of the provided object ({kind}) does not match the resource ({res.kind})")
        if api_version and api_version != res.group_version:
            raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected API version ({res.group_version})")
        md = obj.setdefault("metadata", {})
        if not isinstance(md, dict):
            raise errors.bad_request("metadata must be an object")
        if res.namespaced:
            if md.get("namespace") and ns and md["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match the namespace sent on the request")
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        # upstream's field order (TypeMeta, ObjectMeta, then the kind's fields, status last), whatever the client sent
        out: Obj = {"kind": res.kind, "apiVersion": res.group_version, "metadata": md}
        for k, v in obj.items():
            if k not in out and k != "status":
                out[k] = v
        if "status" in obj:
            out["status"] = obj["status"]
        return out

    def _validate(self, res: ResourceInfo, obj: Obj, old: Obj | None) -> None:
        strat = strategy_for(res)
        md = obj["metadata"]
        causes: list[tuple[str, str]] = []
        name = md.get("name", "")
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        else:
            err = strat.name_check(name)
            if err:
                causes.append(("metadata.name", f'Invalid value: "{name}": {err}'))
        for msg in validate_labels(md.get("labels") or {}):
            causes.append(("metadata.labels", f"Invalid value: {msg}"))
        causes += strat.validate(obj) if old is None else strat.validate_update(obj, old)
        if causes:
            raise errors.invalid(res, res.kind, name, causes)

    def create(self, res: ResourceInfo, ns: str | None, obj: Any, dry_run: bool = False,
               manager: str | None = None) -> Obj:
        """`manager` (the fieldManager) gets the object's fields in managedFields; None records nothing."""
        obj = self.check_body(res, ns, obj)
        md = obj["metadata"]
        generated = not md.get("name") and bool(md.get("generateName"))
        if generated:
            md["name"] = _generated_name(md["generateName"])
        if _set_resource_version(md.pop("resourceVersion", None)):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        self._check_namespace(res, ns, str(md.get("name") or ""))
        strat = strategy_for(res)
        for k in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(k, None)
        md["uid"] = str(uuid.uuid4())
        md["creationTimestamp"] = self.clock()
        if strat.tracks_generation:
            md["generation"] = 1
        strat.prepare_create(obj)
        if manager:
            self._record(res, None, obj, manager, "")
        self._validate(res, obj, None)
        key = storage.object_key(res, ns, md["name"])
        if dry_run:
            if self.store.get(key) is not None:
                raise errors.already_exists(res, md["name"])
            return obj
        strat.allocate(self.store, obj, None)  # ClusterIP/NodePort; given back if the write fails
        for attempt in range(8):  # a generated name that is taken gets another (upstream RetryGenerateName)
            try:
                rev = self.store.create(key, storage.encode(obj))
                break
            except KeyExists:
                if not generated or attempt == 7:
                    strat.release(self.store, obj, None)
                    raise errors.already_exists(res, md["name"]) from None
                md["name"] = _generated_name(md["generateName"])
                key = storage.object_key(res, ns, md["name"])
            except BaseException:
                strat.release(self.store, obj, None)
                raise
        md["resourceVersion"] = str(rev)
        return obj

    def update(self, res: ResourceInfo, ns: str | None, name: str, obj: Any, subresource: str | None = None,
               dry_run: bool = False, _old: Obj | None = None, manager: str | None = None,
               _field_sub: str = "") -> Obj:
        obj = self.check_body(res, ns, obj)
        md = obj["metadata"]
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(f'the name of the object ({md["name"]}) does not match the name on the URL ({name})')
        md["name"] = name
        old = _old if _old is not None else self.get(res, ns, name)
        rv = md.get("resourceVersion") or ""
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res, name, errors.MODIFIED)
        strat = strategy_for(res)
        old_md = old["metadata"]
        if subresource == "status":
            carried = md.get("managedFields")  # an apply's result: keep what it computed
            strat.prepare_status_update(obj, old)
            md = obj["metadata"]
            if manager is None and carried is not None:
                md["managedFields"] = carried
        else:
            for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"):
                if k in old_md:
                    md[k] = old_md[k]
                else:
                    md.pop(k, None)
            strat.prepare_update(obj, old)
            if strat.tracks_generation and strat.spec_changed(obj, old):
                md["generation"] = int(old_md.get("generation", 1)) + 1
        if manager:
            self._record(res, old, obj, manager, _field_sub or subresource or "")
        self._validate(res, obj, old)
        if dry_run:
            return obj
        key = storage.object_key(res, ns, name)
        if md.get("deletionTimestamp") and not md.get("finalizers") and deletion.may_vanish(res, obj):
            return deletion.remove(self, res, name, int(old_md["resourceVersion"]), obj)
        md.pop("resourceVersion", None)
        if obj == {**old, "metadata": {k: v for k, v in old_md.items() if k != "resourceVersion"}}:
            md["resourceVersion"] = old_md["resourceVersion"]  # a no-op write is skipped, as upstream's storage does:
            return obj  # no new resourceVersion, no watch event (kubectl then says "patched (no change)")
        strat.allocate(self.store, obj, old)
        try:
            new_rv = self.store.update(key, storage.encode(obj), int(old_md["resourceVersion"]))
        except Conflict:
            strat.release(self.store, obj, old)
            raise errors.stale_write(res, name) from None
        except KeyNotFound:
            strat.release(self.store, obj, old)
            raise errors.not_found(res, name) from None
        except BaseException:
            strat.release(self.store, obj, old)
            raise
        strat.release(self.store, old, obj)
        md["resourceVersion"] = str(new_rv)
        return obj

    def _record(self, res: ResourceInfo, old: Obj | None, new: Obj, manager: str, sub: str) -> None:
        try:
            ssa.record_update(old, new, manager, for_kind(res.group, res.version, res.kind), self.clock(), sub)
        except ssa.InvalidManagedFields as e:
            raise errors.bad_request(f"metadata.managedFields: Invalid value: {e}") from None

    def patch(self, res: ResourceInfo, ns: str | None, name: str, content_type: str, body: Any,
              subresource: str | None = None, dry_run: bool = False, manager: str | None = None,
              force: bool = False) -> tuple[Obj, bool]:
        """Apply a patch; returns (object, created): see patching.patch."""
        return patching.patch(self, res, ns, name, content_type, body, subresource, dry_run, manager, force)

    def delete(self, res: ResourceInfo, ns: str | None, name: str, options: Obj | None = None,
               dry_run: bool = False) -> tuple[Obj, bool]:
        """Delete, gracefully where the kind wants it. Returns (object, gone now): see deletion.delete."""
        return deletion.delete(self, res, ns, name, options, dry_run)

    def swap(self, res: ResourceInfo, ns: str | None, name: str, obj: Obj) -> Obj:
        """Write obj as it is (no rules) over the version its metadata.resourceVersion names;
        errors.StaleWrite when another write came first, NotFound when it is gone."""
        md = obj["metadata"]
        expected = int(md.pop("resourceVersion"))
        try:
            rev = self.store.update(storage.object_key(res, ns, name), storage.encode(obj), expected)
        except Conflict:
            md["resourceVersion"] = str(expected)
            raise errors.stale_write(res, name) from None
        except KeyNotFound:
            raise errors.not_found(res, name) from None
        md["resourceVersion"] = str(rev)
        return obj


def _set_resource_version(rv: Any) -> bool:
    """Whether a create's metadata.resourceVersion is set, as upstream's storage reads it (ParseUint):
    a non-zero number.  Anything else ("v1" from kubernetes_asyncio, "", "0") is ignored."""
    return isinstance(rv, str) and rv.isascii() and rv.isdigit() and int(rv) != 0 and int(rv) < 2**64


def resource_for_object(obj: Obj) -> ResourceInfo | None:
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    return by_kind(group, obj.get("kind", ""))
