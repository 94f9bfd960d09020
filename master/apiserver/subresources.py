"""The subresources the API server serves, routed by a table: (subresource, the
kinds that have it, the methods it takes) -> handler.  `status` and the main
resource are the app's generic object verbs; every other subresource is here.

    log, exec, attach, portforward (pods)    the node proxy (`proxy`)
    proxy (services, pods, nodes)            the HTTP proxy (`httpproxy`)
    token (serviceaccounts)                  a TokenRequest (`resources.serviceaccounts`)
    binding (pods)                           the scheduler's bind (`resources.pods.bind`)
    scale (any kind with one)                `scalerest`
    finalize (namespaces)                    `resources.namespaces.finalize`

A method a route does not list is a 405.  Neighbours: `app` looks routes up with
`route` and calls the handler with itself, the request, the target and dryRun.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Awaitable, Callable

from aiohttp import web

from master.apiserver import errors, params, paths, scalerest
from master.apiserver.patching import APPLY_PATCH, PATCH_TYPES, STRATEGIC_PATCH
from master.apiserver.resources import namespaces, pods
from master.apiserver.resources.serviceaccounts import create_token

if TYPE_CHECKING:
    from master.apiserver.app import APIServer

Handler = Callable[["APIServer", web.Request, paths.Target, bool], Awaitable[web.StreamResponse]]
BOUND = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


@dataclass(frozen=True, slots=True)
class Route:
    handler: Handler
    methods: tuple[str, ...]
    plural: str | None = None  # None: every kind whose kinds-table entry has the subresource


async def _log(s: APIServer, request: web.Request, t: paths.Target, _dry: bool) -> web.StreamResponse:
    return await s.proxy.pod_log(request, t.namespace or "", t.name or "")


async def _stream(s: APIServer, request: web.Request, t: paths.Target, _dry: bool) -> web.StreamResponse:
    return await s.proxy.pod_stream(request, t.namespace or "", t.name or "", t.subresource or "")


async def _proxy(s: APIServer, request: web.Request, t: paths.Target, _dry: bool) -> web.StreamResponse:
    return await s.proxy.http.serve(request, t)


async def _token(s: APIServer, request: web.Request, t: paths.Target, _dry: bool) -> web.StreamResponse:
    body = await s.body(request)
    return s.respond(await s.call(create_token, s.registry, s.tokens, t.namespace or "", t.name, body), 201)


async def _binding(s: APIServer, request: web.Request, t: paths.Target, _dry: bool) -> web.StreamResponse:
    await s.call(pods.bind, s.registry, t.namespace or "", t.name, await s.body(request))
    return s.respond(BOUND, 201)


async def _finalize(s: APIServer, request: web.Request, t: paths.Target, dry_run: bool) -> web.StreamResponse:
    return s.respond(await s.call(namespaces.finalize, s.registry, t.name, await s.body(request), dry_run))


async def _scale(s: APIServer, request: web.Request, t: paths.Target, dry_run: bool) -> web.StreamResponse:
    m, q = request.method, request.query
    if m == "GET":
        return s.respond(await s.call(scalerest.get_scale, s.registry, t.res, t.namespace, t.name))
    if m == "PUT":
        return s.respond(await s.call(scalerest.update_scale, s.registry, t.res, t.namespace, t.name,
                                      await s.body(request), None, dry_run,
                                      params.field_manager(q, request.headers)))
    ctype = patch_type(request, t)
    manager = q.get("fieldManager") if ctype == APPLY_PATCH else params.field_manager(q, request.headers)
    return s.respond(await s.call(scalerest.update_scale, s.registry, t.res, t.namespace, t.name,
                                  await s.body(request), ctype, dry_run, manager,
                                  force=params.query_bool(q, "force")))


ROUTES: dict[str, Route] = {
    "log": Route(_log, ("GET",), "pods"),
    "exec": Route(_stream, ("GET", "POST"), "pods"),
    "attach": Route(_stream, ("GET", "POST"), "pods"),
    "portforward": Route(_stream, ("GET", "POST"), "pods"),
    "proxy": Route(_proxy, ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")),
    "token": Route(_token, ("POST",), "serviceaccounts"),
    "binding": Route(_binding, ("POST",), "pods"),
    "scale": Route(_scale, ("GET", "PUT", "PATCH")),
    "finalize": Route(_finalize, ("PUT",), "namespaces"),
}


def route(t: paths.Target, method: str) -> Handler | None:
    """The handler of t's subresource; None for `status` (the generic verbs); 405 for a method the
    subresource does not take or a subresource not served."""
    sub = t.subresource
    if sub is None or sub == "status":
        return None
    r = ROUTES.get(sub)
    if r is None or (r.plural is not None and r.plural != t.res.plural):
        raise errors.method_not_allowed(f"the subresource {sub} is not served yet")
    if method not in r.methods:
        raise errors.method_not_allowed(f"{sub} only supports {', '.join(r.methods)}" if len(r.methods) <= 2
                                        else f"{method} is not supported on {sub}")
    return r.handler


def patch_type(request: web.Request, t: paths.Target) -> str:
    """The request's patch content type; 415 for one we do not take (strategic merge on a custom resource)."""
    ctype = request.content_type
    if ctype not in PATCH_TYPES or (ctype == STRATEGIC_PATCH and t.res.custom is not None):
        raise errors.unsupported_media(ctype, custom=t.res.custom is not None)
    return ctype
