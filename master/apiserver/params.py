"""Query parameters, read as upstream reads them: booleans, integers, label and field
selectors, the field manager and DeleteOptions.  Pure; the app, the watch stream and the
node proxy read every query parameter through these.

Booleans are upstream's query conversion (apimachinery's `Convert_Slice_string_To_bool`, used
for ListOptions, PodExecOptions, PodLogOptions, PatchOptions and the rest): absent is false;
"0" and "false" in any case are false; any other value, the empty string included, is true.
So `stdout=True&stderr=False` (kubernetes_asyncio) and `watch=1`, `watch=true`, `watch=True`
all mean what they say.  `pretty` is upstream's strconv.ParseBool, ignored when it does not
parse.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apimachinery.fields import FieldSelector, parse_field_selector, unsupported_fields
from apimachinery.kinds import ResourceInfo
from apimachinery.labels import Selector, SelectorError, parse_selector
from master.apiserver import errors
from master.apiserver.schemas.types import named_type_error

Query = Mapping[str, str]

# every boolean query parameter the API server or the node proxy reads
BOOLEANS = frozenset({"watch", "allowWatchBookmarks", "sendInitialEvents", "force", "orphanDependents",
                      "stdin", "stdout", "stderr", "tty", "follow", "previous", "timestamps",
                      "insecureSkipTLSVerifyBackend", "ignoreStoreReadErrorWithClusterBreakingPotential"})
_FALSE = ("0", "false")
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_bool(value: str | None) -> bool:
    """A boolean query value as upstream converts it: None (absent) false, "0"/"false" (any case)
    false, anything else true."""
    if value is None:
        return False
    return value.lower() not in _FALSE


def query_bool(q: Query, name: str) -> bool:
    return parse_bool(q.get(name))


def canonical_bools(q: Query, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """`names` present in q, booleans as "true"/"false", the rest as sent: what the node proxy passes
    on to the agent, so that it reads the value the API server read."""
    return [(k, ("true" if parse_bool(v) else "false") if k in BOOLEANS else v)
            for k, v in q.items() if k in names]


def pretty(q: Query) -> bool:
    """upstream's isPrettyPrint: strconv.ParseBool, a value that does not parse is ignored."""
    return q.get("pretty") in _GO_TRUE


def query_int(q: Query, name: str, default: int = 0, required: bool = False) -> int:
    """An integer parameter; absent (or empty, unless `required`) is `default`."""
    value = q.get(name)
    if value is None or (not value and not required):
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f"{name}: must be an integer, got {value!r}") from None


def selectors(res: ResourceInfo, q: Query) -> tuple[Selector | None, FieldSelector | None]:
    labels = fields = None
    try:
        if q.get("labelSelector"):
            labels = parse_selector(q["labelSelector"])
    except (SelectorError, ValueError) as e:
        raise errors.bad_request(f"unable to parse requirement: {e}") from None
    if q.get("fieldSelector"):
        try:
            fields = parse_field_selector(q["fieldSelector"])
        except ValueError as e:
            raise errors.bad_request(f"invalid field selector: {e}") from None
        bad = unsupported_fields(res.kind, fields)
        if bad:
            raise errors.bad_request(f'field label not supported: {bad[0]}')
    return labels, fields


def field_manager(q: Query, headers: Mapping[str, str]) -> str:
    """The fieldManager query parameter, else upstream's default: the User-Agent up to its first '/'."""
    manager = q.get("fieldManager") or headers.get("User-Agent", "unknown").split("/")[0]
    if len(manager) > 128:
        raise errors.APIError(422, "Invalid", "fieldManager: Too long: may not be longer than 128 characters")
    return manager or "unknown"


def delete_options(q: Query, options: Any) -> dict[str, Any]:
    """DeleteOptions from the body, overridden by query parameters (as kubectl and upstream accept)."""
    if not isinstance(options, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    if "gracePeriodSeconds" in q:
        options["gracePeriodSeconds"] = query_int(q, "gracePeriodSeconds", required=True)
    if q.get("propagationPolicy"):
        options["propagationPolicy"] = q["propagationPolicy"]
    if "orphanDependents" in q:
        options["orphanDependents"] = query_bool(q, "orphanDependents")
    err = named_type_error("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions", options)
    if err:
        raise errors.bad_request(f"DeleteOptions cannot be decoded: {err}")
    return options
