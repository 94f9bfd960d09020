"""OpenAPI v2 (`/openapi/v2`): the v3 -> v2 schema conversion, the document's
invariants kubectl's model parser relies on (every `$ref` resolves, a `$ref`
has no type or properties, the GVK extension on each served kind), the
gnostic protobuf encoding read back with a protobuf wire reader, and the
HTTP answer (content types, ETag, 304, --runtime-config)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread  # noqa: E402

from master.apiserver import openapi_v2, schemas  # noqa: E402
from apimachinery.apigroups import ALL, parse_runtime_config  # noqa: E402

REF = schemas.REF


# ---- a protobuf wire reader (independent of the encoder) ----------------------------
def fields(buf: bytes) -> list[tuple[int, Any]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    out, i = [], 0

    def varint() -> int:
        nonlocal i
        n = shift = 0
        while True:
            b = buf[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return n
    while i < len(buf):
        key = varint()
        num, wire = key >> 3, key & 7
        if wire == 0:
            out.append((num, varint()))
        elif wire == 2:
            n = varint()
            out.append((num, buf[i:i + n]))
            i += n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
    return out


def first(buf: bytes, num: int) -> Any:
    return next(v for n, v in fields(buf) if n == num)


def named(buf: bytes, num: int) -> dict[str, bytes]:
    """A repeated Named* field (1 name, 2 value) as a dict."""
    return {first(v, 1).decode(): first(v, 2) for n, v in fields(buf) if n == num}


# ---- conversion ------------------------------------------------------------------------
def test_allof_ref_becomes_ref_with_description_and_no_default() -> None:
    names = frozenset({"a.B"})
    got = openapi_v2.convert_schema({"allOf": [{"$ref": REF + "a.B"}], "default": {}, "description": "d"}, names)
    assert got == {"$ref": "#/definitions/a.B", "description": "d"}
    assert openapi_v2.convert_schema({"$ref": REF + "a.B"}, names) == {"$ref": "#/definitions/a.B"}


def test_dangling_ref_becomes_an_arbitrary_value() -> None:
    assert openapi_v2.convert_schema({"allOf": [{"$ref": REF + "gone.X"}], "description": "d"}, frozenset()) == {
        "description": "d"}


def test_preserve_unknown_fields_is_an_open_object() -> None:
    node = {"type": "object", "required": ["kind"], "x-kubernetes-preserve-unknown-fields": True,
            "properties": {"kind": {"type": "string"}}}
    got = openapi_v2.convert_schema(node, frozenset())
    assert got == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_nested_items_additional_properties_and_extensions() -> None:
    node = {"type": "array", "x-kubernetes-list-type": "map", "nullable": True,
            "items": {"type": "object", "additionalProperties": {"allOf": [{"$ref": REF + "q.Q"}]}}}
    got = openapi_v2.convert_schema(node, frozenset({"q.Q"}))
    assert got == {"type": "array", "x-kubernetes-list-type": "map",
                   "items": {"type": "object", "additionalProperties": {"$ref": "#/definitions/q.Q"}}}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_document_invariants_kubectl_needs() -> None:
    doc = openapi_v2.document(ALL)
    assert doc["swagger"] == "2.0"
    defs = doc["definitions"]
    for node in _walk(defs):
        ref = node.get("$ref")
        if isinstance(ref, str):
            assert ref.startswith("#/definitions/") and ref[len("#/definitions/"):] in defs, ref
            assert "type" not in node and "properties" not in node, node
        assert not isinstance(node.get("type"), list)
    gvks = {(g["group"], g["version"], g["kind"]) for s in defs.values()
            for g in s.get("x-kubernetes-group-version-kind", ())}
    for r in ALL.served:
        assert (r.group, r.version, r.kind) in gvks, r
    ops = [op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m != "parameters"]
    assert len(ops) == len(set(ops)) and "readCoreV1Pod" in ops and "patchAppsV1Deployment" in ops
    patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]
    assert patch["parameters"][0] == {"name": "body", "in": "body", "required": True,
                                      "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}
    assert any(p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"])
    assert "application/strategic-merge-patch+json" in patch["consumes"]


def test_runtime_config_leaves_switched_off_kinds_out() -> None:
    doc = openapi_v2.document(parse_runtime_config("apps/v1=false"))
    gvks = {g["kind"] for s in doc["definitions"].values() for g in s.get("x-kubernetes-group-version-kind", ())
            if g["group"] == "apps"}
    assert gvks == set() and not any(p.startswith("/apis/apps/") for p in doc["paths"])
    assert any(p.startswith("/api/v1/") for p in doc["paths"])


# ---- protobuf ----------------------------------------------------------------------
def test_protobuf_reads_back_as_the_json_document() -> None:
    doc = openapi_v2.document(ALL)
    pb = openapi_v2.encode(doc)
    assert first(pb, 1) == b"2.0"
    info = first(pb, 2)
    assert first(info, 1) == b"Kubernetes"
    defs = named(first(pb, 9), 1)
    assert set(defs) == set(doc["definitions"])
    cm = defs["io.k8s.api.core.v1.ConfigMap"]
    assert first(cm, 4).decode() == doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["description"]
    assert first(first(cm, 22), 1) == b"object"
    ext = {first(v, 1).decode(): first(first(v, 2), 2).decode() for n, v in fields(cm) if n == 31}
    assert yaml.safe_load(ext["x-kubernetes-group-version-kind"]) == [{"group": "", "kind": "ConfigMap",
                                                                       "version": "v1"}]
    props = named(first(cm, 25), 1)
    assert set(props) == set(doc["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"])
    data = props["data"]  # a map of strings: AdditionalPropertiesItem{schema{type string}}
    assert first(first(first(first(data, 21), 1), 22), 1) == b"string"
    meta = props["metadata"]
    assert first(meta, 1) == b"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    assert not [n for n, _ in fields(meta) if n == 22]
    pod_spec = named(first(defs["io.k8s.api.core.v1.PodSpec"], 25), 1)
    containers = pod_spec["containers"]
    assert first(first(containers, 22), 1) == b"array"
    assert first(first(first(containers, 23), 1), 1) == b"#/definitions/io.k8s.api.core.v1.Container"
    required = [v for n, v in fields(defs["io.k8s.api.core.v1.Container"]) if n == 19]
    assert required == [b"name"]


def test_protobuf_paths_operations_and_parameters() -> None:
    pb = openapi_v2.encode(openapi_v2.document(ALL))
    paths = named(first(pb, 8), 2)
    item = paths["/api/v1/namespaces/{namespace}/pods/{name}"]
    patch = first(item, 8)  # PathItem.patch
    assert first(patch, 5) == b"patchCoreV1Pod"
    params = [first(v, 1) for n, v in fields(patch) if n == 8]  # ParametersItem.parameter
    body = first(first(params[0], 1), 2)  # Parameter.body_parameter.name
    assert body == b"body"
    query = [first(first(p, 2), 3) for p in params[1:]]  # NonBodyParameter.query_parameter_sub_schema
    assert b"fieldValidation" in [first(q, 4) for q in query]
    path_params = [first(first(first(v, 1), 2), 4) for n, v in fields(item) if n == 9]
    assert sorted(first(p, 4) for p in path_params) == [b"name", b"namespace"]
    assert all(first(p, 1) == 1 for p in path_params)  # required
    codes = named(first(patch, 9), 1)
    assert set(codes) == {"200", "201"}


def test_additional_properties_false_is_encoded() -> None:
    pb = openapi_v2.encode({"swagger": "2.0", "definitions": {"x.Closed": {"type": "object",
                                                                            "additionalProperties": False}}})
    closed = named(first(pb, 9), 1)["x.Closed"]
    assert fields(first(closed, 21)) == [(2, 0)]


# ---- HTTP ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with ServerThread() as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        yield c


def test_served_as_protobuf_or_json_with_etag(http: httpx.Client) -> None:
    r = http.get("/openapi/v2", headers={"Accept": openapi_v2.PROTOBUF_ACCEPT})
    assert r.status_code == 200 and r.headers["Content-Type"] == openapi_v2.PROTOBUF_TYPE
    assert first(r.content, 1) == b"2.0"
    again = http.get("/openapi/v2", headers={"Accept": openapi_v2.PROTOBUF_ACCEPT, "If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304
    j = http.get("/openapi/v2", headers={"Accept": "application/json"})
    assert j.headers["Content-Type"] == "application/json" and j.headers["ETag"] != r.headers["ETag"]
    assert json.loads(j.content)["definitions"]["io.k8s.api.core.v1.Pod"]["x-kubernetes-group-version-kind"]
    assert http.get("/openapi/v1").status_code == 404 and http.get("/openapi/v2/x").status_code == 404
