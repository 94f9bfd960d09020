"""ServiceAccount rules: no status, no generation; secret and image-pull
secret references need names.  And the `serviceaccounts/token` subresource
(TokenRequest, authentication.k8s.io/v1): `create_token` checks the request
and the object it binds to, then has `tokens.TokenIssuer` sign the JWT.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from apimachinery.kinds import ResourceInfo, lookup
from master.apiserver import errors
from master.apiserver.resources import Causes, Obj, Strategy, register
from master.apiserver.tokens import (DEFAULT_EXPIRATION_SECONDS, MAX_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS,
                                     BoundObject, TokenIssuer, claims)

TOKEN_REQUEST_VERSION = "authentication.k8s.io/v1"
_RES = {p: lookup("", "v1", p) for p in ("serviceaccounts", "pods", "secrets", "nodes")}


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


class ObjectGetter(Protocol):
    """What create_token reads: `Registry.get` (raises the 404 APIError for a missing object)."""
    def get(self, res: ResourceInfo, ns: str | None, name: str) -> Obj: ...


def _res(plural: str) -> ResourceInfo:
    res = _RES[plural]
    assert res is not None
    return res


def _invalid(name: str, field: str, value: Any, why: str) -> errors.APIError:
    """422 as upstream words it for a TokenRequest (GroupKind TokenRequest.authentication.k8s.io)."""
    shown = f'"{value}"' if isinstance(value, str) else str(value)
    msg = f"Invalid value: {shown}: {why}"
    return errors.APIError(422, "Invalid", f'TokenRequest.authentication.k8s.io "{name}" is invalid: {field}: {msg}',
                           {"name": name, "group": "authentication.k8s.io", "kind": "TokenRequest",
                            "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": field}]})


def _expiration(spec: Obj) -> int:
    secs = spec.get("expirationSeconds")
    if secs is None:
        return DEFAULT_EXPIRATION_SECONDS
    if isinstance(secs, bool) or not isinstance(secs, int):
        raise errors.bad_request(f"spec.expirationSeconds: must be an integer, got {secs!r}")
    if secs < MIN_EXPIRATION_SECONDS:
        raise _invalid("", "spec.expirationSeconds", secs, "may not specify a duration less than 10 minutes")
    if secs > MAX_EXPIRATION_SECONDS:
        raise _invalid("", "spec.expirationSeconds", secs, "may not specify a duration larger than 2^32 seconds")
    return secs


def _bound(objects: ObjectGetter, namespace: str, sa_name: str, ref: Any) -> dict[str, BoundObject]:
    """The objects a token binds to ({"pod"|"secret"|"node": ...}); they must exist, a pod must run as
    this service account, and a uid in the reference must match the object's."""
    if ref is None:
        return {}
    if not isinstance(ref, dict):
        raise errors.bad_request("spec.boundObjectRef must be an object")
    api_version, kind, name = ref.get("apiVersion") or "", ref.get("kind") or "", ref.get("name") or ""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    version = api_version.rpartition("/")[2]
    out: dict[str, BoundObject] = {}
    if group == "" and kind == "Pod":
        pod = objects.get(_res("pods"), namespace, name)
        # an unset serviceAccountName is "default": upstream's ServiceAccount admission fills it in
        if (pod.get("spec", {}).get("serviceAccountName") or "default") != sa_name:
            raise errors.bad_request(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                                     f'different serviceaccount name.')
        obj = pod
        node_name = pod.get("spec", {}).get("nodeName")
        if node_name:  # upstream's ServiceAccountTokenPodNodeInfo: a missing Node still gives its name
            try:
                out["node"] = BoundObject(node_name, objects.get(_res("nodes"), None, node_name)["metadata"]["uid"])
            except errors.APIError as e:
                if e.code != 404:
                    raise
                out["node"] = BoundObject(node_name)
    elif group == "" and kind == "Node":
        obj = objects.get(_res("nodes"), None, name)
    elif group == "" and kind == "Secret":
        obj = objects.get(_res("secrets"), namespace, name)
    else:
        raise errors.bad_request(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    uid = obj["metadata"]["uid"]
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.APIError(409, "Conflict", f'Operation cannot be fulfilled on {kind} "{name}": the UID in the '
                              f'bound object reference ({ref["uid"]}) does not match the UID in record. The object '
                              f'might have been deleted and then recreated', {"name": name, "kind": kind})
    out[kind.lower()] = BoundObject(name, uid)
    return out


def create_token(objects: ObjectGetter, issuer: TokenIssuer, namespace: str, name: str, body: Any) -> Obj:
    """POST .../serviceaccounts/NAME/token: the TokenRequest with status.token and
    status.expirationTimestamp (upstream's TokenREST.Create, without a stored object)."""
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a TokenRequest object")
    if body.get("kind") not in (None, "", "TokenRequest") or \
            body.get("apiVersion") not in (None, "", TOKEN_REQUEST_VERSION):
        raise errors.bad_request(f"expected a TokenRequest of {TOKEN_REQUEST_VERSION}, got "
                                 f"{body.get('kind')} of {body.get('apiVersion')}")
    md = dict(body.get("metadata") or {})
    if md.get("name") and md["name"] != name:
        raise _invalid(name, "metadata.name", md["name"], "must match the service account name if specified")
    if md.get("namespace") and md["namespace"] != namespace:
        raise _invalid(name, "metadata.namespace", md["namespace"],
                       "must match the service account namespace if specified")
    sa = objects.get(_res("serviceaccounts"), namespace, name)
    spec = dict(body.get("spec") or {})
    audiences = spec.get("audiences") or list(issuer.audiences)
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise errors.bad_request("spec.audiences must be a list of strings")
    expiration = _expiration(spec)
    bound = _bound(objects, namespace, name, spec.get("boundObjectRef"))
    now = issuer.now()
    payload = claims(issuer.issuer, namespace, BoundObject(name, sa["metadata"]["uid"]), audiences, now, expiration,
                     pod=bound.get("pod"), secret=bound.get("secret"), node=bound.get("node"))
    token = issuer.sign(payload)
    md.update(name=name, namespace=namespace, creationTimestamp=_rfc3339(now))
    spec.update(audiences=audiences, expirationSeconds=expiration)
    return {"kind": "TokenRequest", "apiVersion": TOKEN_REQUEST_VERSION, "metadata": md, "spec": spec,
            "status": {"token": token, "expirationTimestamp": _rfc3339(now + expiration)}}


def _rfc3339(unix: int) -> str:
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
