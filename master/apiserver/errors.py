"""Kubernetes `Status` errors.  Every failure the API server returns is one
of these, raised anywhere below the handlers and rendered by the app.

    APIError
      code, reason, message, details -> Status JSON
      helpers: bad_request (400), forbidden (403), not_found (404),
      method_not_allowed (405), already_exists / conflict / stale_write (409), gone (410),
      request_entity_too_large / object_too_large (413), unsupported_media (415),
      invalid (422), too_large_resource_version (504), internal (500)
"""
from __future__ import annotations

from typing import Any

from apimachinery.kinds import ResourceInfo


class APIError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The Status in upstream's field order (its Go struct's, which clients comparing error text
        see): kind, apiVersion, metadata, status, message, reason, details, code; details as name,
        group, kind, uid, causes, retryAfterSeconds; each cause as reason, message, field."""
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason}
        if self.details is not None:
            out["details"] = _ordered_details(self.details)
        out["code"] = self.code
        return out


_DETAILS_ORDER = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")
_CAUSE_ORDER = ("reason", "message", "field")


def _ordered_details(details: dict[str, Any]) -> dict[str, Any]:
    out = {k: details[k] for k in _DETAILS_ORDER if k in details}
    if "causes" in out:
        out["causes"] = [({k: c[k] for k in _CAUSE_ORDER if k in c} | c) if isinstance(c, dict) else c
                         for c in out["causes"]]
    return out | {k: v for k, v in details.items() if k not in out}  # anything else after, as it came


def _details(res: ResourceInfo | None, name: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if name:
        d["name"] = name
    if res is not None:
        if res.group:
            d["group"] = res.group
        d["kind"] = res.plural
    return d


def _what(res: ResourceInfo | None) -> str:
    return res.qualified if res else "resource"


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def forbidden(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def namespace_terminating(res: ResourceInfo, name: str, ns: str) -> APIError:
    """Upstream's NamespaceLifecycle refusal: 403 with a NamespaceTerminating cause."""
    why = f"unable to create new content in namespace {ns} because it is being terminated"
    details = _details(res, name)
    details["causes"] = [{"reason": "NamespaceTerminating", "message": why, "field": "metadata.namespace"}]
    return APIError(403, "Forbidden", f'{_what(res)} "{name}" is forbidden: {why}', details)


def not_found(res: ResourceInfo | None, name: str) -> APIError:
    return APIError(404, "NotFound", f'{_what(res)} "{name}" not found', _details(res, name))


def path_not_found(path: str) -> APIError:
    return APIError(404, "NotFound", f"the server could not find the requested resource ({path})",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def already_exists(res: ResourceInfo, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{_what(res)} "{name}" already exists', _details(res, name))


def conflict(res: ResourceInfo, name: str, why: str) -> APIError:
    return APIError(409, "Conflict", f'Operation cannot be fulfilled on {_what(res)} "{name}": {why}',
                    _details(res, name))


MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


class StaleWrite(APIError):
    """A 409 Conflict because another write landed between the read a write was based on and the
    write: the server may re-read and try again (apimachinery.client.retry_on_conflict with
    is_stale_write).  A conflict with what the client itself named (a resourceVersion, a
    precondition, a field manager) is a plain APIError and never retried."""


def stale_write(res: ResourceInfo, name: str) -> StaleWrite:
    return StaleWrite(409, "Conflict", f'Operation cannot be fulfilled on {_what(res)} "{name}": {MODIFIED}',
                      _details(res, name))


def is_stale_write(e: BaseException) -> bool:
    return isinstance(e, StaleWrite)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unsupported_media(content_type: str, custom: bool = False) -> APIError:
    """`custom`: a custom resource, which takes no strategic merge patch (as upstream)."""
    if custom:
        return APIError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                        "media types include: application/json-patch+json, application/merge-patch+json, "
                        "application/apply-patch+yaml")
    return APIError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                    f'accepted media types include: application/json, application/yaml, '
                    f'application/json-patch+json, application/merge-patch+json, '
                    f'application/strategic-merge-patch+json (got "{content_type}")')


def invalid(res: ResourceInfo, kind: str, name: str, causes: list[tuple[str, str]]) -> APIError:
    """422 with one cause per (field, message)."""
    msg = "; ".join(f"{f}: {m}" for f, m in causes)
    details = _details(res, name)
    details["kind"] = kind
    details["causes"] = [{"reason": "FieldValueInvalid", "message": f"Invalid value: {m}" if not m.startswith(("Required", "Invalid", "Unsupported", "Forbidden")) else m, "field": f}
                         for f, m in causes]
    return APIError(422, "Invalid", f'{kind} "{name}" is invalid: {msg}', details)


def request_entity_too_large(message: str) -> APIError:
    return APIError(413, "RequestEntityTooLarge", f"Request entity too large: {message}")


def object_too_large() -> APIError:
    """A stored object past storage.MAX_OBJECT_BYTES: etcd's own refusal, "etcdserver: request is too
    large", which upstream passes on as a 500 (kubernetes#112152); here a 413, as it is the client's."""
    return APIError(413, "RequestEntityTooLarge", "etcdserver: request is too large")


def too_large_resource_version(wanted: int, current: int) -> APIError:
    """Upstream's storage.NewTooLargeResourceVersionError: a 504 that client-go's reflector recognises
    by its cause (and then relists)."""
    return APIError(504, "Timeout", f"Too large resource version: {wanted}, current resource version: {current}",
                    {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                     "retryAfterSeconds": 1})


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", f"Internal error occurred: {message}")
