"""OpenAPI v3 documents (schemas, operations, ETag) and field validation
(unknown fields; fieldValidation=Strict|Warn|Ignore), as pure functions and
over HTTP through a real API server on loopback."""
from __future__ import annotations

import copy
import gzip
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, pod, unique  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.kinds import ResourceInfo  # noqa: E402
from master.apiserver import errors, openapi, schemas  # noqa: E402
from master.apiserver.schemas import validation  # noqa: E402
from master.apiserver.schemas.validation import check, unknown_fields, warning_header  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
POD_RES = kinds.by_kind("", "Pod") or ResourceInfo("", "v1", "Pod", "pods", True)


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_openapi", REPO / "scripts/gen_openapi.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        out = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return out.union(*(_refs(v) for v in node.values())) if node else out
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


# ---- the data and the generator ---------------------------------------------------

def test_generated_data_covers_every_kind_of_issue_3() -> None:
    gen = _generator()
    for group, version, kind in gen.ROOTS:
        assert schemas.has_schema(group, version, kind), (group, version, kind)
    assert schemas.schema_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert schemas.schema_name("events.k8s.io", "v1", "Event") == "io.k8s.api.events.v1.Event"
    assert schemas.schema_name("", "v1", "Event") == "io.k8s.api.core.v1.Event"


def test_committed_data_is_what_the_generator_makes(tmp_path: Path) -> None:
    gen = _generator()
    out = tmp_path / "defs.json.gz"
    assert gen.main(["--out", str(out)]) == 0
    fresh = json.loads(gzip.decompress(out.read_bytes()))["schemas"]
    assert fresh == schemas.definitions(), "run scripts/gen-openapi and commit the result"


def test_schemas_carry_descriptions_refs_and_patch_metadata() -> None:
    d = schemas.definitions()
    pod_s = d["io.k8s.api.core.v1.Pod"]
    assert pod_s["description"].startswith("Pod is a collection of containers")
    assert pod_s["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]
    assert pod_s["properties"]["metadata"]["description"].startswith("Standard object's metadata")
    containers = d["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["type"] == "array" and containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["items"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}]
    assert "containers" in d["io.k8s.api.core.v1.PodSpec"]["required"]
    ports = d["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert (ports["x-kubernetes-patch-strategy"], ports["x-kubernetes-patch-merge-key"]) == ("merge", "containerPort")
    limits = d["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"]["allOf"][0]["$ref"].endswith("resource.Quantity")
    target = d["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert target["allOf"][0]["$ref"].endswith("intstr.IntOrString")
    assert d["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["template"]["allOf"][0]["$ref"].endswith(
        "core.v1.PodTemplateSpec")


# ---- documents ----------------------------------------------------------------------

@pytest.mark.parametrize("group,version", [(g, v) for g, vs in kinds.groups().items() for v in vs])
def test_every_kind_has_patch_op_request_body_and_schema(group: str, version: str) -> None:
    doc = openapi.document(group, version)
    comps = doc["components"]["schemas"]
    for ref in _refs(doc):  # the document is closed: every $ref resolves inside it
        assert ref.startswith("#/components/schemas/") and ref.split("/")[-1] in comps, ref
    patched = {}
    for ops in doc["paths"].values():
        if "patch" in ops:
            op = ops["patch"]
            assert "fieldValidation" in {p["name"] for p in op["parameters"]}
            kind = op["x-kubernetes-group-version-kind"]["kind"]
            smp = "application/strategic-merge-patch+json" in op["requestBody"]["content"]
            assert smp == schemas.has_schema(group, version, kind), kind  # merge keys need the schema
            patched[kind] = op
        if "post" in ops:
            ref = ops["post"]["requestBody"]["content"]["*/*"]["schema"]["$ref"]
            gvk = ops["post"]["x-kubernetes-group-version-kind"]
            assert gvk in comps[ref.split("/")[-1]]["x-kubernetes-group-version-kind"]
    for r in kinds.in_group_version(group, version):
        if "patch" in r.verbs:
            assert r.kind in patched, r.kind
        gvks = [s.get("x-kubernetes-group-version-kind", []) for s in comps.values()]
        assert any({"group": group, "version": version, "kind": r.kind} in g for g in gvks), r.kind


def test_index_hash_names_the_document_and_etag_304() -> None:
    index = openapi.index()["paths"]
    assert set(index) == {f"apis/{g}/{v}" if g else f"api/{v}" for g, vs in kinds.groups().items() for v in vs}
    url = index["api/v1"]["serverRelativeURL"]
    resp = openapi.respond("/openapi/v3/api/v1")
    assert resp.status == 200 and json.loads(resp.body) == openapi.document("", "v1")  # type: ignore[arg-type]
    assert resp.headers["ETag"] == '"' + url.split("hash=")[1] + '"'
    assert openapi.respond("/openapi/v3/api/v1", resp.headers["ETag"]).status == 304
    assert openapi.respond("/openapi/v3/api/v1", '"stale"').status == 200
    with pytest.raises(errors.APIError) as e:
        openapi.respond("/openapi/v3/apis/nope.example.com/v1")
    assert e.value.code == 404


def test_kind_without_schema_gets_minimal_document(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = ResourceInfo("crt.example.com", "v1", "Widget", "widgets", True)
    monkeypatch.setattr(kinds, "RESOURCES", kinds.RESOURCES + (fake,))
    assert not schemas.has_schema("crt.example.com", "v1", "Widget")
    doc = openapi.document("crt.example.com", "v1")
    s = doc["components"]["schemas"]["io.k8s.api.crt.v1.Widget"]
    assert s["x-kubernetes-group-version-kind"] == [{"group": "crt.example.com", "version": "v1", "kind": "Widget"}]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in doc["components"]["schemas"]
    obj = {"apiVersion": "crt.example.com/v1", "kind": "Widget", "metadata": {"name": "a", "nam": "x"},
           "spec": {"anything": 1}}
    assert unknown_fields("crt.example.com", "v1", "Widget", obj) == [".metadata.nam"]


# ---- unknown fields -----------------------------------------------------------------

BAD_POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "labels": {"any": "label"}, "annotations": {"x": "y"}, "nmae": "typo"},
    "spec": {"containers": [{"name": "a", "image": "i", "resources": {"limits": {"cpu": "1"}}},
                            {"name": "b", "imagee": "i", "ports": [{"containerPort": 80, "prot": "TCP"}],
                             "livenessProbe": {"httpGet": {"port": "http"}}}],
             "nodeSelector": {"k": "v"}},
    "status": {"phase": "Pending", "bogus": True},
}


def test_unknown_fields_paths_in_body_order() -> None:
    assert unknown_fields("", "v1", "Pod", BAD_POD) == [
        ".metadata.nmae", ".spec.containers[1].imagee", ".spec.containers[1].ports[0].prot", ".status.bogus"]
    assert unknown_fields("", "v1", "Pod", pod("ok")) == []


def test_unknown_fields_in_other_kinds() -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": "a", "hodler": 1}}
    assert unknown_fields("coordination.k8s.io", "v1", "Lease", lease) == [".spec.hodler"]
    dep = {"spec": {"replicaz": 1, "template": {"spec": {"containers": [{"name": "c", "img": "x"}]}}}}
    assert unknown_fields("apps", "v1", "Deployment", dep) == [".spec.replicaz", ".spec.template.spec.containers[0].img"]


def test_patch_bodies_skip_strategic_merge_directives() -> None:
    smp = {"spec": {"$setElementOrder/containers": [{"name": "a"}],
                    "containers": [{"name": "a", "$patch": "delete"}, {"name": "b", "imag": "x"}]}}
    assert unknown_fields("", "v1", "Pod", smp, patch=True) == [".spec.containers[1].imag"]
    assert unknown_fields("", "v1", "Pod", smp) == [
        ".spec.$setElementOrder/containers", ".spec.containers[0].$patch", ".spec.containers[1].imag"]


# ---- fieldValidation ----------------------------------------------------------------

def test_strict_is_400_with_upstreams_message() -> None:
    with pytest.raises(errors.APIError) as e:
        check(POD_RES, "Strict", copy.deepcopy(BAD_POD))
    assert e.value.code == 400 and e.value.reason == "BadRequest"
    assert e.value.message == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "metadata.nmae", '
        'unknown field "spec.containers[1].imagee", unknown field "spec.containers[1].ports[0].prot", '
        'unknown field "status.bogus"')
    with pytest.raises(errors.APIError) as e:
        check(POD_RES, "Strict", {"spec": {"foo": 1}}, patch=True)
    assert e.value.message == 'strict decoding error: unknown field "spec.foo"'
    assert check(POD_RES, "Strict", pod("ok")) == []


@pytest.mark.parametrize("value", ["Warn", None, ""])
def test_warn_is_the_default_and_drops_the_fields(value: str | None) -> None:
    body = copy.deepcopy(BAD_POD)
    warnings = check(POD_RES, value, body)
    assert warnings == ['unknown field "metadata.nmae"', 'unknown field "spec.containers[1].imagee"',
                        'unknown field "spec.containers[1].ports[0].prot"', 'unknown field "status.bogus"']
    assert unknown_fields("", "v1", "Pod", body) == []
    assert body["spec"]["containers"][1] == {"name": "b", "ports": [{"containerPort": 80}],
                                             "livenessProbe": {"httpGet": {"port": "http"}}}
    assert body["metadata"]["labels"] == {"any": "label"}


def test_ignore_drops_silently_and_bad_directive_is_400() -> None:
    body = copy.deepcopy(BAD_POD)
    assert check(POD_RES, "Ignore", body) == []
    assert "imagee" not in body["spec"]["containers"][1]
    assert check(POD_RES, "Strict", [{"op": "add", "path": "/x", "value": 1}], patch=True) == []  # JSON patch
    with pytest.raises(errors.APIError) as e:
        check(POD_RES, "strict", {})
    assert e.value.code == 400 and "Unsupported value" in e.value.message
    assert validation.directive(None) is validation.FieldValidation.WARN


def test_warning_header_quotes_like_upstream() -> None:
    assert warning_header('unknown field "spec.x"') == '299 - "unknown field \\"spec.x\\""'


# ---- over HTTP ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    s = ServerThread().start()
    try:
        with httpx.Client(base_url=s.url, timeout=10) as c:
            yield c
    finally:
        s.stop()


def test_write_path_strict_warn_ignore(http: httpx.Client) -> None:
    ns = unique("crt-fv")
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": ns}}).status_code == 201
    path = f"/api/v1/namespaces/{ns}/pods"
    bad = pod("crt-a")
    bad["spec"]["containers"][0]["imagee"] = "x"
    r = http.post(path, params={"fieldValidation": "Strict"}, json=bad)
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    assert 'strict decoding error: unknown field "spec.containers[0].imagee"' in r.json()["message"]
    assert http.get(f"{path}/crt-a").status_code == 404
    r = http.post(path, json=bad)  # no parameter: Warn
    assert r.status_code == 201, r.text
    assert r.headers.get_list("Warning") == ['299 - "unknown field \\"spec.containers[0].imagee\\""']
    assert "imagee" not in http.get(f"{path}/crt-a").json()["spec"]["containers"][0]
    r = http.patch(f"{path}/crt-a", params={"fieldValidation": "Strict"}, json={"metadata": {"labelz": {"a": "b"}}},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 400 and r.json()["message"] == 'strict decoding error: unknown field "metadata.labelz"'
    r = http.patch(f"{path}/crt-a", params={"fieldValidation": "Ignore"},
                   json={"metadata": {"labels": {"a": "b"}, "labelz": 1}},
                   headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200 and "Warning" not in r.headers and r.json()["metadata"]["labels"] == {"a": "b"}
    got = http.get(f"{path}/crt-a").json()
    got["spec"]["bogus"] = 1
    r = http.put(f"{path}/crt-a", params={"fieldValidation": "Strict"}, json=got)
    assert r.status_code == 400 and 'unknown field "spec.bogus"' in r.json()["message"]
    assert http.delete(f"/api/v1/namespaces/{ns}").status_code in (200, 202)
