"""The API server's documents keep upstream's field order, which clients see in raw JSON and in error
text they compare (issue 9, defect 4): `Status` as upstream's encoder writes its Go struct, lists,
Tables, watch events, discovery and objects (TypeMeta, ObjectMeta, ..., status last)."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from apiserver_fixture import ACCEPT_DISCOVERY, ServerThread
from master.apiserver import errors

STATUS = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]
DETAILS = ["name", "group", "kind", "uid", "causes", "retryAfterSeconds"]
CAUSE = ["reason", "message", "field"]


def keys(raw: bytes | str) -> Any:
    """The document with every object replaced by [(key, value), ...] in the order it came."""
    return json.loads(raw, object_pairs_hook=lambda pairs: pairs)


def order(pairs: list[tuple[str, Any]]) -> list[str]:
    return [k for k, _ in pairs]


def field(pairs: list[tuple[str, Any]], name: str) -> Any:
    return dict(pairs)[name]


def in_order(got: list[str], reference: list[str]) -> bool:
    """got lists some of reference's keys, in reference's order, and nothing else."""
    return got == [k for k in reference if k in got]


def check_status(raw: bytes | str) -> None:
    doc = keys(raw)
    assert in_order(order(doc), STATUS) and order(doc)[-1] == "code", order(doc)
    details = dict(doc).get("details")
    if details is not None:
        assert in_order(order(details), DETAILS), order(details)
        for cause in dict(details).get("causes") or []:
            assert in_order(order(cause), CAUSE), order(cause)


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture()
def ns(http: httpx.Client) -> str:
    name = f"crt-order-{uuid.uuid4().hex[:6]}"
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    return name


def test_status_field_order_in_the_encoder() -> None:
    e = errors.APIError(409, "Conflict", "m", {"causes": [{"field": "f", "message": "x", "reason": "R"}],
                                              "retryAfterSeconds": 1, "kind": "pods", "name": "p"})
    raw = json.dumps(e.status())
    check_status(raw)
    assert raw.startswith('{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "m", '
                          '"reason": "Conflict", "details": {"name": "p", "kind": "pods", "causes": [{"reason": "R", '
                          '"message": "x", "field": "f"}], "retryAfterSeconds": 1}, "code": 409}')


def test_status_field_order_on_the_wire(http: httpx.Client, ns: str) -> None:
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    answers = [
        http.get(f"{cms}/nope"),  # 404 with details
        http.get("/api/v1/nothing"),  # 404 with causes
        http.post(f"/api/v1/namespaces/{ns}/pods", json={"metadata": {"name": "Bad_"}, "spec": {"containers": []}}),
        http.post(cms, content=b"{", headers={"Content-Type": "application/json"}),  # 400, no details
        http.get(cms, params={"resourceVersion": "99999999", "resourceVersionMatch": "NotOlderThan"}),  # 504
    ]
    assert http.post(cms, json={"metadata": {"name": "c"}}).status_code == 201
    answers.append(http.post(cms, json={"metadata": {"name": "c"}}))  # 409 AlreadyExists
    answers.append(http.put(f"{cms}/c", json={"metadata": {"name": "c", "resourceVersion": "1"}}))  # 409 Conflict
    http.delete(f"/api/v1/namespaces/{ns}")
    answers.append(http.post(cms, json={"metadata": {"name": "d"}}))  # 403 NamespaceTerminating, with a cause
    for r in answers:
        assert r.status_code >= 400, r.text
        check_status(r.content)
    assert [r.status_code for r in answers] == [404, 404, 422, 400, 504, 409, 409, 403]


def test_objects_lists_tables_and_watch_events(http: httpx.Client, ns: str) -> None:
    cms = f"/api/v1/namespaces/{ns}/configmaps"
    # the client's order is not kept: TypeMeta, ObjectMeta, the kind's fields
    sent = b'{"data": {"a": "b"}, "metadata": {"name": "c"}, "apiVersion": "v1", "kind": "ConfigMap"}'
    r = http.post(cms, content=sent, headers={"Content-Type": "application/json"})
    assert order(keys(r.content)) == ["kind", "apiVersion", "metadata", "data"]
    assert order(keys(http.get(f"{cms}/c").content)) == ["kind", "apiVersion", "metadata", "data"]
    pod = {"status": {}, "spec": {"containers": [{"name": "c", "image": "i"}]}, "metadata": {"name": "p"}}
    r = http.post(f"/api/v1/namespaces/{ns}/pods", json=pod)
    assert order(keys(r.content)) == ["kind", "apiVersion", "metadata", "spec", "status"], r.text
    assert order(keys(http.get(cms).content)) == ["kind", "apiVersion", "metadata", "items"]
    assert order(keys(http.get(cms, params={"limit": "1"}).content)) == ["kind", "apiVersion", "metadata", "items"]
    table = keys(http.get(cms, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).content)
    assert order(table) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert order(field(table, "columnDefinitions")[0]) == ["name", "type", "format", "description", "priority"]
    assert order(field(table, "rows")[0]) == ["cells", "object"]
    with http.stream("GET", cms, params={"watch": "true", "timeoutSeconds": "1"}) as s:
        line = next(iter(s.iter_lines()))
    event = keys(line)
    assert order(event) == ["type", "object"]
    assert order(field(event, "object"))[:3] == ["kind", "apiVersion", "metadata"]


def test_discovery_documents(http: httpx.Client) -> None:
    assert order(keys(http.get("/api").content)) == ["kind", "versions", "serverAddressByClientCIDRs"]
    groups = keys(http.get("/apis").content)
    assert order(groups) == ["kind", "apiVersion", "groups"]
    assert order(field(groups, "groups")[0]) == ["name", "versions", "preferredVersion"]
    resources = keys(http.get("/api/v1").content)
    assert order(resources) == ["kind", "apiVersion", "groupVersion", "resources"]
    upstream = ["name", "singularName", "namespaced", "group", "version", "kind", "verbs", "shortNames", "categories",
                "storageVersionHash"]
    for res in field(resources, "resources"):
        assert in_order(order(res), upstream), order(res)
    agg = keys(http.get("/apis", headers={"Accept": ACCEPT_DISCOVERY}).content)
    assert order(agg) == ["kind", "apiVersion", "metadata", "items"]
    version = field(field(agg, "items")[0], "versions")[0]
    assert order(version) == ["version", "resources", "freshness"]  # APIVersionDiscovery's order
    resource = field(version, "resources")[0]
    assert in_order(order(resource), ["resource", "responseKind", "scope", "singularResource", "verbs", "shortNames",
                                      "categories", "subresources"]), order(resource)
