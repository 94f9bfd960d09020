"""CustomResourceDefinitions (apiextensions.k8s.io/v1): the strategy's
defaults, status and validation as pure functions, then over HTTP through a
real API server on loopback (create, get, list, Table, watch, 422s, delete),
and how discovery and OpenAPI present the kind."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ACCEPT_DISCOVERY, POD_ACCEPT_TABLE, ServerThread  # noqa: E402

from apimachinery import kinds  # noqa: E402
from master.apiserver import openapi  # noqa: E402
from master.apiserver.resources import strategy_for  # noqa: E402
from master.apiserver.resources.apiextensions import ESTABLISHED, NAMES_ACCEPTED  # noqa: E402

CRDS = kinds.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def crd(plural: str = "widgets", group: str = "crt.example.com", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": "Widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object"}}}]}
    body.update(spec)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"}, "spec": body}


def causes(obj: dict[str, Any]) -> list[tuple[str, str]]:
    assert CRDS is not None
    strat = strategy_for(CRDS)
    obj = copy.deepcopy(obj)
    strat.prepare_create(obj)
    return strat.validate(obj)


# ---- the kind and its strategy (pure) ---------------------------------------------
def test_kinds_table_entry_is_upstreams() -> None:
    assert CRDS is not None and not CRDS.namespaced
    assert CRDS.kind == "CustomResourceDefinition" and CRDS.short_names == ("crd", "crds")
    assert CRDS.categories == ("api-extensions",) and CRDS.has_subresource("status")


def test_defaults_and_status() -> None:
    assert CRDS is not None
    obj = crd()
    strategy_for(CRDS).prepare_create(obj)
    names = obj["spec"]["names"]
    assert names["singular"] == "widget" and names["listKind"] == "WidgetList"
    assert obj["spec"]["conversion"] == {"strategy": "None"}
    st = obj["status"]
    assert st["storedVersions"] == ["v1"]
    assert st["acceptedNames"] == {"plural": "widgets", "singular": "widget", "kind": "Widget",
                                   "listKind": "WidgetList"}
    names_accepted, established = st["conditions"]
    assert (names_accepted["type"], names_accepted["status"], names_accepted["reason"],
            names_accepted["message"]) == ("NamesAccepted", "True", "NoConflicts", NAMES_ACCEPTED)
    assert (established["type"], established["status"], established["reason"], established["message"]) == (
        "Established", "True", "InitialNamesAccepted", ESTABLISHED)
    assert set(established) == {"type", "status", "reason", "message", "lastTransitionTime"}


def test_status_follows_updates_and_keeps_stored_versions() -> None:
    assert CRDS is not None
    strat = strategy_for(CRDS)
    old = crd()
    strat.prepare_create(old)
    old["status"]["conditions"][1]["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    new = crd(names={"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]}, versions=[
        {"name": "v1", "served": True, "storage": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
        {"name": "v2", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}])
    strat.prepare_update(new, old)
    st = new["status"]
    assert st["storedVersions"] == ["v1", "v2"] and st["acceptedNames"]["shortNames"] == ["wd"]
    assert st["conditions"][1]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # was True already


def test_valid_crd_has_no_causes() -> None:
    assert causes(crd()) == []
    assert causes(crd(scope="Cluster", names={"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]})) == []


@pytest.mark.parametrize("change,expected", [
    ({"group": "example"}, ("spec.group", 'Invalid value: "example": should be a domain with at least one dot')),
    ({"group": ""}, ("spec.group", "Required value")),
    ({"scope": "Galaxy"}, ("spec.scope", 'Unsupported value: "Galaxy": supported values: "Cluster", "Namespaced"')),
    ({"scope": None}, ("spec.scope", "Required value")),
    ({"names": {"plural": "widgets"}}, ("spec.names.kind", "Required value")),
    ({"names": {"plural": "Widgets", "kind": "Widget"}}, ("spec.names.plural", 'Invalid value: "Widgets": a DNS-1035 '
                                                          "label must consist of lower case alphanumeric characters "
                                                          "or '-', start with an alphabetic character, and end with "
                                                          "an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                                                          "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")),
    ({"names": {"plural": "widgets", "kind": "Wid get"}},
     ("spec.names.kind", 'Invalid value: "Wid get": may have mixed case, but should otherwise match: '
                         "[a-z]([-a-z0-9]*[a-z0-9])?")),
    ({"names": {"plural": "widgets", "kind": "Widget", "listKind": "Widget"}},
     ("spec.names.listKind", 'Invalid value: "Widget": kind and listKind may not be the same')),
    ({"versions": []}, ("spec.versions", "Required value: must have exactly one version marked as storage version")),
    ({"versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}},
                   {"name": "v2", "served": True, "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}}]},
     ("spec.versions", "Invalid value: [v1, v2]: must have exactly one version marked as storage version")),
    ({"versions": [{"name": "v1", "storage": True, "schema": {"openAPIV3Schema": {"type": "object"}}},
                   {"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}}]},
     ("spec.versions[1].name", 'Duplicate value: "v1"')),
    ({"versions": [{"name": "v1", "storage": True}]},
     ("spec.versions[0].schema.openAPIV3Schema", "Required value: schemas are required")),
    ({"versions": [{"name": "v1", "storage": True, "schema": {"openAPIV3Schema": {}}}]},
     ("spec.versions[0].schema.openAPIV3Schema.type", "Required value: must not be empty at the root")),
    ({"versions": [{"name": "v1", "storage": True, "schema": {"openAPIV3Schema": {"type": "string"}}}]},
     ("spec.versions[0].schema.openAPIV3Schema.type", 'Invalid value: "string": must be object at the root')),
])
def test_invalid_specs(change: dict[str, Any], expected: tuple[str, str]) -> None:
    assert expected in causes(crd(**change))


def test_name_must_be_plural_dot_group_and_both_are_immutable() -> None:
    obj = crd()
    obj["metadata"]["name"] = "gadgets.crt.example.com"
    assert ("metadata.name", 'Invalid value: "gadgets.crt.example.com": must be spec.names.plural+"."+spec.group') \
        in causes(obj)
    assert CRDS is not None
    strat = strategy_for(CRDS)
    old = crd()
    strat.prepare_create(old)
    new = crd(group="crt2.example.com")
    strat.prepare_update(new, old)
    assert ("spec.group", 'Invalid value: "crt2.example.com": field is immutable') in strat.validate_update(new, old)
    assert new["status"] == old["status"]  # the main resource never writes status


# ---- over HTTP ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def srv() -> Iterator[ServerThread]:
    with ServerThread() as s:  # tests/integration/test_apiextensions_etcd.py puts one on etcd instead
        yield s


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


def test_create_get_list_table_delete(http: httpx.Client) -> None:
    empty = http.get(PATH, headers={"Accept": POD_ACCEPT_TABLE}).json()
    assert [c["name"] for c in empty["columnDefinitions"]] == ["Name", "Created At"] and empty["rows"] == []
    r = http.post(PATH, json=crd("gizmos"))
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["status"]["conditions"][1]["reason"] == "InitialNamesAccepted"
    assert made["metadata"]["generation"] == 1
    name = "gizmos.crt.example.com"
    assert http.get(f"{PATH}/{name}").json()["spec"]["names"]["listKind"] == "WidgetList"
    listed = http.get(PATH).json()
    assert listed["kind"] == "CustomResourceDefinitionList" and [i["metadata"]["name"] for i in listed["items"]] == [name]
    table = http.get(PATH, headers={"Accept": POD_ACCEPT_TABLE}).json()
    assert table["rows"][0]["cells"] == [name, made["metadata"]["creationTimestamp"]]
    with http.stream("GET", PATH, params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "1"}) as w:
        first = json.loads(next(w.iter_lines()))
    assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == name
    # the status subresource is the way to change status
    st = http.get(f"{PATH}/{name}").json()
    st["status"]["acceptedNames"] = {"kind": "Widget", "plural": "gizmos"}
    assert http.put(f"{PATH}/{name}/status", json=st).json()["status"]["acceptedNames"]["plural"] == "gizmos"
    assert http.delete(f"{PATH}/{name}").status_code == 200
    assert http.get(f"{PATH}/{name}").status_code == 404


def test_invalid_crd_is_422_with_upstreams_causes(http: httpx.Client) -> None:
    bad = crd("doohickeys", group="nodot")
    r = http.post(PATH, json=bad)
    assert r.status_code == 422
    status = r.json()
    assert status["reason"] == "Invalid" and status["details"]["kind"] == "CustomResourceDefinition"
    assert 'spec.group: Invalid value: "nodot": should be a domain with at least one dot' in status["message"]
    assert http.post("/apis/apiextensions.k8s.io/v1/namespaces/default/customresourcedefinitions",
                     json=crd()).status_code == 404  # cluster-scoped


def test_discovery_and_openapi(http: httpx.Client) -> None:
    agg = http.get("/apis", headers={"Accept": ACCEPT_DISCOVERY}).json()
    group = next(i for i in agg["items"] if i["metadata"]["name"] == "apiextensions.k8s.io")
    [res] = group["versions"][0]["resources"]
    assert res["resource"] == "customresourcedefinitions" and res["scope"] == "Cluster"
    assert res["shortNames"] == ["crd", "crds"] and res["categories"] == ["api-extensions"]
    assert [s["subresource"] for s in res["subresources"]] == ["status"]
    index = http.get("/openapi/v3").json()["paths"]
    assert "apis/apiextensions.k8s.io/v1" in index
    doc = openapi.document("apiextensions.k8s.io", "v1")
    patch = doc["paths"]["/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"]["patch"]
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    # no generated schema, so no strategic merge patch: kubectl uses a JSON merge patch
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
