"""Generic object registry: the semantics of get, list, create, update,
patch and delete for every kind, on top of the store, with no HTTP in it.

Rules shared by all kinds live here (uid, creationTimestamp, generation,
resourceVersion preconditions, namespaces that must exist, finalizers and
graceful deletion); kind-specific ones in `resources/`.
"""
from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from apimachinery import meta
from apimachinery.fields import FieldSelector, object_fields
from apimachinery.kinds import ResourceInfo, by_kind, lookup
from apimachinery.labels import Selector, validate_labels
from apimachinery.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from master.apiserver import errors, ssa, storage
from master.apiserver.resources import Obj, strategy_for
from master.apiserver.scale import apply_scale, apply_to_scale, replicas_of, to_scale
from master.apiserver.schemas.structure import for_kind
from master.apiserver.schemas.types import named_type_error, type_error
from master.store import Compacted, Conflict, KeyExists, KeyNotFound, Store

NAMESPACES = lookup("", "v1", "namespaces")
FOREGROUND, ORPHAN = "foregroundDeletion", "orphan"  # the garbage collector's finalizers
POLICIES = ("Foreground", "Background", "Orphan")
_GEN_CHARS = "bcdfghjklmnpqrstvwxz2456789"
_GEN_BASE_MAX = 63 - 5  # upstream cuts a long generateName so the name stays a valid label


def _generated_name(base: str) -> str:
    return base[:_GEN_BASE_MAX] + "".join(random.choice(_GEN_CHARS) for _ in range(5))
APPLY_PATCH = "application/apply-patch+yaml"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", APPLY_PATCH)


@dataclass(frozen=True, slots=True)
class ListResult:
    items: list[Obj]
    revision: int
    continue_token: str


def _now() -> str:
    return meta.now_rfc3339()


# Upstream strategies' DefaultGarbageCollectionPolicy where it is not DeleteDependents (Background):
# OrphanDependents "for backwards compatibility" (core/v1 ReplicationControllers; batch/v1 Jobs, when
# served), and Unsupported (events: no garbage-collector finalizer whatever the options say).
ORPHAN_BY_DEFAULT = frozenset({("", "v1", "replicationcontrollers"), ("batch", "v1", "jobs")})
NO_PROPAGATION = frozenset({("", "v1", "events"), ("events.k8s.io", "v1", "events")})


def propagation_policy(options: Obj, res: ResourceInfo | None = None,
                       finalizers: list[str] | tuple[str, ...] = ()) -> str:
    """The policy a DELETE carries out, as upstream's generic store decides it: the options'
    propagationPolicy (or the legacy orphanDependents), else a GC finalizer the object already holds,
    else the kind's default (Orphan for ORPHAN_BY_DEFAULT, Background for the rest).  Kinds in
    NO_PROPAGATION always get Background (no finalizer).  An unknown policy is a 400."""
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in POLICIES:
        raise errors.bad_request(f"propagationPolicy: Unsupported value: {policy!r}: supported values: "
                                 + ", ".join(f'"{p}"' for p in POLICIES))
    key = (res.group, res.version, res.plural) if res is not None else None
    if key in NO_PROPAGATION:
        return "Background"
    if policy is not None:
        return str(policy)
    if options.get("orphanDependents") is not None:
        return "Orphan" if options["orphanDependents"] is True else "Background"
    if ORPHAN in finalizers:
        return "Orphan"
    if FOREGROUND in finalizers:
        return "Foreground"
    return "Orphan" if key in ORPHAN_BY_DEFAULT else "Background"


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

    def _check_body(self, res: ResourceInfo, ns: str | None, obj: Any) -> Obj:
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
        obj = self._check_body(res, ns, obj)
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
        obj = self._check_body(res, ns, obj)
        md = obj["metadata"]
        if md.get("name") and md["name"] != name:
            raise errors.bad_request(f'the name of the object ({md["name"]}) does not match the name on the URL ({name})')
        md["name"] = name
        old = _old if _old is not None else self.get(res, ns, name)
        rv = md.get("resourceVersion") or ""
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(res, name, "the object has been modified; please apply your changes to the latest version and try again")
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
        if md.get("deletionTimestamp") and not md.get("finalizers") and self._may_vanish(res, obj):
            return self._remove(res, key, name, int(old_md["resourceVersion"]), obj)
        md.pop("resourceVersion", None)
        if obj == {**old, "metadata": {k: v for k, v in old_md.items() if k != "resourceVersion"}}:
            md["resourceVersion"] = old_md["resourceVersion"]  # a no-op write is skipped, as upstream's storage does:
            return obj  # no new resourceVersion, no watch event (kubectl then says "patched (no change)")
        strat.allocate(self.store, obj, old)
        try:
            new_rv = self.store.update(key, storage.encode(obj), int(old_md["resourceVersion"]))
        except Conflict:
            strat.release(self.store, obj, old)
            raise errors.conflict(res, name, "the object has been modified; please apply your changes to the latest version and try again") from None
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

    def _applied(self, res: ResourceInfo, ns: str | None, name: str, old: Obj | None, body: Any,
                 manager: str | None, force: bool, subresource: str | None) -> Obj:
        """Server-side apply of `body` to `old` (None: absent), with ownership and conflicts."""
        if not manager:
            raise errors.APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                  "Required value: is required for apply patch")
        body = self._check_body(res, ns, copy.deepcopy(body))
        md = body["metadata"]
        if md.get("name", name) != name:
            raise errors.bad_request(f'the name of the object ({md["name"]}) does not match the name on the URL ({name})')
        md["name"] = name
        try:
            return ssa.apply(old, body, manager, for_kind(res.group, res.version, res.kind), self.clock(), force,
                             subresource or "")
        except ssa.ApplyConflict as e:
            raise errors.APIError(409, "Conflict", str(e), {"causes": e.causes()}) from None
        except ssa.InvalidObject as e:
            raise errors.APIError(422, "Invalid", f"failed to create typed patch object: {e}") from None
        except ssa.InvalidManagedFields as e:
            raise errors.bad_request(f"metadata.managedFields: Invalid value: {e}") from None

    def patch(self, res: ResourceInfo, ns: str | None, name: str, content_type: str, body: Any,
              subresource: str | None = None, dry_run: bool = False, manager: str | None = None,
              force: bool = False) -> tuple[Obj, bool]:
        """Apply a patch; returns (object, created) — apply patches create absent objects.
        Apply patches are server-side apply by `manager` (409 on conflicts unless `force`); the other
        types are Update writes recorded under `manager`."""
        apply = content_type == APPLY_PATCH
        if force and not apply:
            raise errors.APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: force: '
                                  "Forbidden: may not be specified for non-apply patch")
        for _ in range(16):
            try:
                old = self.get(res, ns, name)
            except errors.APIError as e:
                if e.code == 404 and apply and subresource is None:
                    new = self._applied(res, ns, name, None, body, manager, force, None)
                    _check_patched_types(res, name, new)
                    try:
                        return self.create(res, ns, new, dry_run), True
                    except errors.APIError as e2:
                        if e2.reason == "AlreadyExists":
                            continue  # created meanwhile: apply to it
                        raise
                raise
            if apply:
                new = self._applied(res, ns, name, old, body, manager, force, subresource)
                _check_patched_types(res, name, new)
                new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            else:
                new = self._patched(res, old, content_type, body, res.kind)
                _check_patched_types(res, name, new)
                md = new.setdefault("metadata", {})
                md["resourceVersion"] = md.get("resourceVersion") or old["metadata"]["resourceVersion"]
            sent_rv = new["metadata"]["resourceVersion"]  # update takes it out of `new` before writing
            try:
                return self.update(res, ns, name, new, subresource, dry_run, _old=old,
                                   manager=None if apply else manager), False
            except errors.APIError as e:
                # a write that came between our read and ours: patch the newer object (a patch that
                # named a resourceVersion itself keeps its 409)
                if e.code == 409 and e.reason == "Conflict" and sent_rv == old["metadata"]["resourceVersion"]:
                    continue
                raise
        raise errors.conflict(res, name, "too many concurrent writers; try again")

    @staticmethod
    def _patched(res: ResourceInfo, old: Obj, content_type: str, body: Any, kind: str) -> Obj:
        current = copy.deepcopy(old)
        try:
            if content_type == "application/json-patch+json":
                new = json_patch(current, body)
            elif content_type == "application/merge-patch+json":
                new = merge_patch(current, body)
            else:  # strategic merge, and server-side apply approximated by it
                new = strategic_merge_patch(current, body, kind)
        except (PatchError, TypeError, AttributeError, KeyError, ValueError) as e:
            # the patch functions raise PatchError for what they check; a patch of the wrong shape
            # where they do not look (a JSON patch whose `from` is a number) is the client's error too
            raise errors.APIError(422 if content_type == "application/json-patch+json" else 400,
                                  "Invalid" if content_type == "application/json-patch+json" else "BadRequest",
                                  str(e) if isinstance(e, PatchError) else f"the patch cannot be applied: {e}") from None
        if not isinstance(new, dict):
            raise errors.bad_request("the patch did not produce an object")
        return new

    def _may_vanish(self, res: ResourceInfo, obj: Obj) -> bool:
        if res.plural == "namespaces":
            return not obj.get("spec", {}).get("finalizers")
        if res.plural == "pods" and obj["metadata"].get("deletionGracePeriodSeconds", 0) > 0:
            return False
        return True

    def _remove(self, res: ResourceInfo, key: str, name: str, expected: int, obj: Obj) -> Obj:
        try:
            rev, _kv = self.store.delete(key, expected)
        except Conflict:
            raise errors.conflict(res, name, "the object has been modified; please apply your changes to the latest version and try again") from None
        except KeyNotFound:
            raise errors.not_found(res, name) from None
        strategy_for(res).release(self.store, obj, None)
        strategy_for(res).removed(self.store, obj)
        obj["metadata"]["resourceVersion"] = str(rev)
        return obj

    def delete(self, res: ResourceInfo, ns: str | None, name: str, options: Obj | None = None,
               dry_run: bool = False) -> tuple[Obj, bool]:
        """Delete, gracefully where the kind wants it. Returns (object, gone now)."""
        options = options or {}
        for _ in range(16):
            obj = self.get(res, ns, name)
            md = obj["metadata"]
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != md.get("uid"):
                raise errors.conflict(res, name, f'Precondition failed: UID in precondition: {pre["uid"]}, UID in object meta: {md.get("uid")}')
            if pre.get("resourceVersion") and pre["resourceVersion"] != md.get("resourceVersion"):
                raise errors.conflict(res, name, f'Precondition failed: ResourceVersion in precondition: {pre["resourceVersion"]}, ResourceVersion in object meta: {md.get("resourceVersion")}')
            grace = self._grace(res, obj, options)
            # the policy's GC finalizer replaces the other one (as upstream's generic store): the garbage
            # collector deletes or orphans the dependents, then drops it; Background removes both
            want = {"Foreground": FOREGROUND, "Orphan": ORPHAN}.get(propagation_policy(options, res, md.get("finalizers") or ()))
            current = list(md.get("finalizers") or [])
            kept = [f for f in current if f not in (FOREGROUND, ORPHAN) or f == want]
            if want and want not in kept:
                kept.append(want)
            added = kept != current
            if added:
                if kept:
                    md["finalizers"] = kept
                else:
                    md.pop("finalizers", None)
            finalizers = md.get("finalizers") or (obj.get("spec", {}).get("finalizers") if res.plural == "namespaces" else None)
            if not grace and not finalizers:
                if dry_run:
                    return obj, True
                try:
                    return self._remove(res, storage.object_key(res, ns, name), name, int(md["resourceVersion"]), obj), True
                except errors.APIError as e:
                    if e.code == 409:
                        continue
                    raise
            # graceful: mark and let the owner (agent, controller) finish
            if md.get("deletionTimestamp") and (grace is None or grace >= md.get("deletionGracePeriodSeconds", 0)):
                if not added:
                    return obj, False
                grace = md.get("deletionGracePeriodSeconds", 0)
            now = dt.datetime.now(dt.timezone.utc)
            md["deletionTimestamp"] = (now + dt.timedelta(seconds=grace or 0)).strftime("%Y-%m-%dT%H:%M:%SZ")
            md["deletionGracePeriodSeconds"] = grace or 0
            if res.plural == "namespaces":
                obj.setdefault("status", {})["phase"] = "Terminating"
            if dry_run:
                return obj, False
            key = storage.object_key(res, ns, name)
            expected = int(md.pop("resourceVersion"))
            try:
                rev = self.store.update(key, storage.encode(obj), expected)
            except Conflict:
                continue
            md["resourceVersion"] = str(rev)
            return obj, False
        raise errors.conflict(res, name, "too many concurrent writers; try again")

    @staticmethod
    def _grace(res: ResourceInfo, obj: Obj, options: Obj) -> int | None:
        if res.plural != "pods":
            return None
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

    # -- subresources ------------------------------------------------------
    def get_scale(self, res: ResourceInfo, ns: str | None, name: str) -> Obj:
        return to_scale(self.get(res, ns, name))

    def update_scale(self, res: ResourceInfo, ns: str | None, name: str, body: Any,
                     content_type: str | None = None, dry_run: bool = False, manager: str | None = None,
                     force: bool = False) -> Obj:
        """PUT (content_type None) or PATCH of the Scale; only spec.replicas of the object changes. An apply
        patch is a server-side apply of the Scale whose spec.replicas ownership lands in the object's
        managedFields (subresource "scale"); 409 on another manager's replicas unless `force`."""
        for _ in range(16):
            old = self.get(res, ns, name)
            scale = to_scale(old)
            if content_type == APPLY_PATCH:
                new = self._scale_applied(res, name, old, body, manager, force)
                try:
                    return to_scale(self.update(res, ns, name, new, None, dry_run, _old=old))
                except errors.APIError as e:
                    if e.code == 409 and e.reason == "Conflict":
                        continue
                    raise
            if content_type is None:
                new_scale = body
                err = named_type_error("io.k8s.api.autoscaling.v1.Scale", body) if isinstance(body, dict) else \
                    "the request body must be a Scale object"
                if err:
                    raise errors.bad_request(f'Scale in version "v1" cannot be handled as a Scale: {err}')
            else:
                new_scale = self._patched(res, scale, content_type, body, "Scale")
            replicas = replicas_of(new_scale)
            if replicas is None:
                raise errors.invalid(res, "Scale", name, [("spec.replicas", "Invalid value: must be a non-negative integer")])
            want_rv = ((new_scale.get("metadata") or {}).get("resourceVersion") or "") if content_type is None else ""
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(res, name, "the object has been modified; please apply your changes to the latest version and try again")
            try:
                return to_scale(self.update(res, ns, name, apply_scale(old, replicas), None, dry_run, _old=old,
                                            manager=manager, _field_sub="scale"))
            except errors.APIError as e:
                if e.code == 409 and not want_rv:
                    continue
                raise
        raise errors.conflict(res, name, "too many concurrent writers; try again")

    def _scale_applied(self, res: ResourceInfo, name: str, old: Obj, body: Any, manager: str | None,
                       force: bool) -> Obj:
        if not manager:
            raise errors.APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                                  "Required value: is required for apply patch")
        if not isinstance(body, dict) or body.get("kind", "Scale") != "Scale":
            raise errors.bad_request("the body of an apply to the scale subresource must be a Scale")
        if (body.get("metadata") or {}).get("name", name) != name:
            raise errors.bad_request(f'the name of the object ({body["metadata"]["name"]}) does not match the name on the URL ({name})')
        try:
            return apply_to_scale(old, body, manager, self.clock(), force)
        except ssa.ApplyConflict as e:
            raise errors.APIError(409, "Conflict", str(e), {"causes": e.causes()}) from None
        except (ssa.InvalidObject, ValueError) as e:
            raise errors.invalid(res, "Scale", name, [("spec.replicas", f"Invalid value: {e}")]) from None

    def finalize_namespace(self, name: str, body: Any, dry_run: bool = False) -> Obj:
        """PUT namespaces/{name}/finalize: only spec.finalizers changes; a deleted namespace left with
        no finalizers vanishes."""
        assert NAMESPACES is not None
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a Namespace")
        old = self.get(NAMESPACES, None, name)
        new = copy.deepcopy(old)
        new.setdefault("spec", {})["finalizers"] = list((body.get("spec") or {}).get("finalizers") or [])
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv:
            new["metadata"]["resourceVersion"] = rv
        return self.update(NAMESPACES, None, name, new, None, dry_run, _old=old)

    def bind(self, ns: str, name: str, binding: Any) -> None:
        pods = lookup("", "v1", "pods")
        assert pods is not None
        if not isinstance(binding, dict) or not (binding.get("target") or {}).get("name"):
            raise errors.invalid(pods, "Binding", name, [("target.name", "Required value")])
        node = binding["target"]["name"]
        for _ in range(16):
            pod = self.get(pods, ns, name)
            if pod["metadata"].get("deletionTimestamp"):
                raise errors.conflict(pods, name, "pod is being deleted, cannot be assigned to a host")
            current = pod.get("spec", {}).get("nodeName")
            if current:
                raise errors.conflict(pods, name, f"pod {name} is already assigned to node \"{current}\"")
            pod["spec"]["nodeName"] = node
            expected = int(pod["metadata"].pop("resourceVersion"))
            try:
                self.store.update(storage.object_key(pods, ns, name), storage.encode(pod), expected)
                return
            except Conflict:
                continue
        raise errors.conflict(pods, name, "too many concurrent writers; try again")


def _set_resource_version(rv: Any) -> bool:
    """Whether a create's metadata.resourceVersion is set, as upstream's storage reads it (ParseUint):
    a non-zero number.  Anything else ("v1" from kubernetes_asyncio, "", "0") is ignored."""
    return isinstance(rv, str) and rv.isascii() and rv.isdigit() and int(rv) != 0 and int(rv) < 2**64


def _check_patched_types(res: ResourceInfo, name: str, obj: Obj) -> None:
    """A patch whose result does not decode as the kind is a 422, as upstream's patcher says it."""
    if res.custom is None:
        err = type_error(res.group, res.version, res.kind, obj)
        if err:
            raise errors.invalid(res, res.kind, name, [("patch", f"Invalid value: {err}")])


def resource_for_object(obj: Obj) -> ResourceInfo | None:
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    return by_kind(group, obj.get("kind", ""))
