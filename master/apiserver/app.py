"""The API server's HTTP face (aiohttp): routing, content negotiation, Status
errors, and the generic verbs of every kind (get, list, create, update, patch,
delete, deletecollection and their `status` subresource).  Object semantics live
in `registry`; the other subresources in `subresources` (a table); watches in
`watchstream`; request bodies in `body`; query parameters in `params`; Tables in
`tables`; discovery and OpenAPI documents in their own modules.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, TypeVar

from aiohttp import web

from apimachinery import meta
from apimachinery.apigroups import ALL, APIGroups
from apimachinery.fields import FieldSelector, object_fields
from apimachinery.kinds import ResourceInfo
from apimachinery.labels import Selector
from master.apiserver import (body, discovery, errors, openapi, openapi_v2, params, paths, proxy, subresources,
                              tables, watchcache, watchstream)
from master.apiserver.customresources.customapis import CustomAPIs
from master.apiserver.patching import APPLY_PATCH
from master.apiserver.registry import Registry
from master.apiserver.schemas.validation import WARNINGS, check as check_fields, warning_header
from master.apiserver.storecalls import StoreCalls
from master.apiserver.tokens import TokenIssuer
from master.apiserver.watchcache import WatchCache
from master.store import Store

log = logging.getLogger("coracle.apiserver")
T = TypeVar("T")

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-coracle", "gitCommit": "", "gitTreeState": "clean",
           "buildDate": "2026-11-22T00:00:00Z", "goVersion": "python", "compiler": "cpython", "platform": "linux/amd64"}
TABLE_TYPE = tables.TABLE_TYPE
JSON = "application/json"


_dumps = watchcache.dumps  # orjson when installed


def _respond(obj: Any, status: int = 200, content_type: str = JSON) -> web.Response:
    return web.Response(body=_dumps(obj), status=status, headers={"Content-Type": content_type})


def _error(e: errors.APIError) -> web.Response:
    return _respond(e.status(), e.code)


def _filter(res: ResourceInfo, labels: Selector | None, fields: FieldSelector | None) -> Any:
    if labels is None and fields is None:
        return None

    def matches(obj: dict[str, Any]) -> bool:
        return ((labels is None or labels.matches(meta.labels(obj)))
                and (fields is None or fields.matches(object_fields(res.kind, obj))))
    return matches


class APIServer:
    def __init__(self, store: Store, advertise: str = "127.0.0.1:6443", watch_window: float = 300.0,
                 bookmark_seconds: float = 30.0, apis: APIGroups = ALL):
        self.store = store
        self.base_apis = apis  # what --runtime-config switched on; the store keeps every resource either way
        self.apis = apis  # base_apis plus the custom resources of the stored CRDs (customapis)
        self.bookmark_seconds = bookmark_seconds
        self.registry = Registry(store)
        self.custom = CustomAPIs(store)  # before the cache: its CRD events land first
        self.custom.listen(self._custom_changed)
        self.cache = WatchCache(store, window_seconds=watch_window, custom=self.custom.resource_of_key)
        self.registry.cached_namespace = self.cache.namespace
        self.calls = StoreCalls(store, self.registry, self.cache)  # inline on SQLite, a thread pool on etcd
        self.advertise = advertise
        self.app = web.Application(client_max_size=body.MAX_BODY_BYTES)
        self.app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self.app.on_shutdown.append(self._on_shutdown)
        self._closing = asyncio.Event()
        self.proxy = proxy.NodeProxy(self.registry, self._call)
        self.tokens = TokenIssuer()  # master.main swaps in the one with the configured key and issuer

    def _custom_changed(self, custom: tuple[ResourceInfo, ...]) -> None:
        self.apis = self.base_apis.with_custom(custom)  # one swap: a request sees the old set or the new

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._closing.set()
        self.custom.close()
        self.calls.close()
        await self.proxy.close()

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Every registry call from a handler: inline on SQLite; on etcd on a thread pool, answering once
        the watch cache has seen the call's writes (see storecalls)."""
        return await self.calls.run(fn, *args, **kwargs)

    # -- routing -----------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        try:
            if path == "/version":
                return _respond(VERSION)
            if path in ("/healthz", "/livez", "/readyz"):
                return web.Response(text="ok")
            if path == "/.well-known/openid-configuration":  # service-account issuer discovery
                return _respond(self.tokens.openid_configuration(f"http://{self.advertise}/openid/v1/jwks"))
            if path == "/openid/v1/jwks":
                return _respond(self.tokens.jwks(), content_type="application/jwk-set+json")
            if path == "/api":
                agg = discovery.wants_aggregated(request.headers.get("Accept", ""))
                if agg:
                    return _respond(discovery.aggregated(True, agg, self.apis), content_type=agg)
                return _respond(discovery.api_versions(self.advertise, self.apis))
            if path == "/apis":
                agg = discovery.wants_aggregated(request.headers.get("Accept", ""))
                if agg:
                    return _respond(discovery.aggregated(False, agg, self.apis), content_type=agg)
                return _respond(discovery.api_group_list(self.apis))
            if path == "/openapi/v2":
                return openapi_v2.respond(request.headers.get("Accept", ""), request.headers.get("If-None-Match"),
                                          self.apis)
            if path.startswith("/openapi/v"):
                return openapi.respond(path, request.headers.get("If-None-Match"), self.apis)
            parts = path.strip("/").split("/")
            if parts[0] == "api" and len(parts) == 2:
                return self._resource_list("", parts[1])
            if parts[0] == "apis" and len(parts) in (2, 3):
                versions = self.apis.versions(parts[1])
                if not versions or (len(parts) == 3 and parts[2] not in versions):
                    raise errors.path_not_found(path)
                if len(parts) == 2:
                    return _respond(discovery.api_group(parts[1], versions))
                return self._resource_list(parts[1], parts[2])
            try:
                target = paths.parse(path, self.apis)
            except paths.UnknownPath:
                raise errors.path_not_found(path) from None
            resp = await self._resource(request, target)
            for w in request.get(WARNINGS, ()):
                resp.headers.add("Warning", warning_header(w))
            return resp
        except errors.APIError as e:
            return _error(e)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as e:  # a bug: never leak a traceback to the client
            log.exception("internal error serving %s %s", request.method, request.path_qs)
            return _error(errors.internal(str(e)))

    def _resource_list(self, group: str, version: str) -> web.Response:
        if not self.apis.serves_version(group, version):
            raise errors.path_not_found(f"/{'apis/' + group if group else 'api'}/{version}")
        return _respond(discovery.resource_list(group, version, self.apis))

    # -- what the subresource handlers use -------------------------------------
    respond = staticmethod(_respond)

    @staticmethod
    async def body(request: web.Request, allow_empty: bool = False) -> Any:
        return await body.read(request, allow_empty)

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._call(fn, *args, **kwargs)

    # -- resources ---------------------------------------------------------
    async def _resource(self, request: web.Request, t: paths.Target) -> web.StreamResponse:
        m, q = request.method, request.query
        dry_run = q.get("dryRun") == "All"
        if t.name is None:
            if t.subresource is not None:
                raise errors.path_not_found(request.path)
            return await self._collection(request, t, dry_run)
        handler = subresources.route(t, m)
        if handler is not None:
            return await handler(self, request, t, dry_run)
        sub = t.subresource  # None or "status"
        if m == "GET":
            obj = await self.calls.get(t.res, t.namespace, t.name, q.get("resourceVersion", ""))
            if tables.wants_table(request):
                table = tables.table(t.res, [obj], q.get("includeObject", "Metadata"))
                table["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"]
                return _respond(table, content_type=TABLE_TYPE)
            return _respond(obj)
        if m == "PUT":
            obj = await self.body(request)
            request[WARNINGS] = check_fields(t.res, q.get("fieldValidation"), obj)
            return _respond(await self._call(self.registry.update, t.res, t.namespace, t.name, obj, sub, dry_run,
                                             manager=params.field_manager(q, request.headers)))
        if m == "PATCH":
            ctype = subresources.patch_type(request, t)
            patch = await self.body(request)
            request[WARNINGS] = check_fields(t.res, q.get("fieldValidation"), patch, patch=True)
            manager = q.get("fieldManager") if ctype == APPLY_PATCH else params.field_manager(q, request.headers)
            patched, created = await self._call(self.registry.patch, t.res, t.namespace, t.name, ctype, patch, sub,
                                                dry_run, manager, params.query_bool(q, "force"))
            return _respond(patched, 201 if created else 200)
        if m == "DELETE":
            options = params.delete_options(q, await self.body(request, allow_empty=True) or {})
            obj, _gone = await self._call(self.registry.delete, t.res, t.namespace, t.name, options, dry_run)
            return _respond(obj)
        raise errors.method_not_allowed(f"{m} is not supported")

    async def _collection(self, request: web.Request, t: paths.Target, dry_run: bool) -> web.StreamResponse:
        m, q = request.method, request.query
        if m == "GET":
            labels, fields = params.selectors(t.res, q)
            if params.query_bool(q, "watch"):
                return await watchstream.serve(request, t, self.cache, _filter(t.res, labels, fields)
                                               or (lambda _obj: True), self._closing, self.bookmark_seconds)
            return await self._list(request, t, labels, fields)
        if m == "POST":
            obj = await self.body(request)
            request[WARNINGS] = check_fields(t.res, q.get("fieldValidation"), obj)
            return _respond(await self._call(self.registry.create, t.res, t.namespace, obj, dry_run,
                                             params.field_manager(q, request.headers)), 201)
        if m == "DELETE":
            return await self._delete_collection(request, t)
        raise errors.method_not_allowed(f"{m} is not supported on a collection")

    async def _list(self, request: web.Request, t: paths.Target, labels: Selector | None,
              fields: FieldSelector | None) -> web.Response:
        q = request.query
        limit = params.query_int(q, "limit")
        rv, match = q.get("resourceVersion", ""), q.get("resourceVersionMatch", "")
        if match not in ("", "Exact", "NotOlderThan"):
            raise errors.bad_request(f"resourceVersionMatch: Unsupported value: {match!r}")
        if match and not rv:
            raise errors.bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")
        exact = 0
        if rv not in ("", "0"):
            try:
                exact = int(rv)
            except ValueError:
                raise errors.bad_request(f"invalid resourceVersion {rv!r}") from None
            if exact > self.cache.revision and not await self.calls.caught_up(exact):
                raise errors.too_large_resource_version(exact, self.cache.revision)
        if (q.get("continue") or (limit and rv == "") or (match == "Exact" and exact != self.cache.revision)
                or not await self.calls.list_from_cache(rv)):
            # paged or historical (or a cache that lags the store): a consistent snapshot from the store
            result = await self._call(self.registry.list, t.res, t.namespace, labels, fields, limit,
                                      q.get("continue", ""), at_revision=exact if match == "Exact" else 0)
            items, revision, token = result.items, result.revision, result.continue_token
            entries = None
        else:  # the watch cache: resourceVersion=0, NotOlderThan, or a whole list (as upstream's cacher)
            entries, revision = self.cache.list(t.res, t.namespace, _filter(t.res, labels, fields))
            items, token = [e.obj for e in entries], ""
        md: dict[str, Any] = {"resourceVersion": str(revision)}
        if token:
            md["continue"] = token
        if tables.wants_table(request):
            table = tables.table(t.res, items, q.get("includeObject", "Metadata"))
            table["metadata"] = md
            return _respond(table, content_type=TABLE_TYPE)
        head = _dumps({"kind": f"{t.res.kind}List", "apiVersion": t.res.group_version, "metadata": md})
        if entries is not None:  # splice the cached item encodings: no per-list re-encoding
            body = head[:-1] + b',"items":[' + b",".join(e.item() for e in entries) + b"]}"
        else:
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
            body = head[:-1] + b',"items":' + _dumps(items) + b"}"
        return web.Response(body=body, headers={"Content-Type": JSON})

    async def _delete_collection(self, request: web.Request, t: paths.Target) -> web.Response:
        q = request.query
        labels, fields = params.selectors(t.res, q)
        options = params.delete_options(q, await self.body(request, allow_empty=True) or {})
        dry_run = q.get("dryRun") == "All"
        result = await self._call(self.registry.list, t.res, t.namespace, labels, fields)
        deleted = []
        for obj in result.items:
            try:
                gone, _ = await self._call(self.registry.delete, t.res, obj["metadata"].get("namespace"),
                                                obj["metadata"]["name"],
                                               dict(options), dry_run)
                deleted.append(gone)
            except errors.APIError as e:
                if e.code != 404:
                    raise
        for item in deleted:
            item.pop("apiVersion", None)
            item.pop("kind", None)
        return _respond({"kind": f"{t.res.kind}List", "apiVersion": t.res.group_version,
                         "metadata": {"resourceVersion": str(await self._call(self.store.current_revision))},
                         "items": deleted})

def make_app(store: Store, advertise: str = "127.0.0.1:6443") -> tuple[APIServer, web.Application]:
    server = APIServer(store, advertise)
    return server, server.app

