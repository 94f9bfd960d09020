"""The Kubernetes-protobuf body decoder (master/apiserver/protobuf.py):
bodies captured from the real kubectl 1.32 decode to what
`kubectl create ... --dry-run=client -o json` prints; wire-format corner
cases; and the API server accepting protobuf POSTs over HTTP."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from master.apiserver import protobuf
from master.apiserver.protobuf import MAGIC, KINDS, MESSAGES, ProtobufError, UnknownKind, decode_body

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PB = protobuf.CONTENT_TYPE

# Captured from kubectl 1.32.4 against a recording server on 127.0.0.1.
CONFIGMAP = bytes.fromhex(  # create configmap cm1 --from-literal=a=b --from-literal=c=d
    "6b3873000a0f0a0276311209436f6e6669674d617012250a130a03636d3112001a0022002a0032003800420012060a016112016212"
    "060a01631201641a002200")
AUTOSCALE = bytes.fromhex(  # autoscale deployment web --min=1 --max=3 --cpu-percent=50
    "6b3873000a290a0e6175746f7363616c696e672f76311217486f72697a6f6e74616c506f644175746f7363616c6572123f0a130a03"
    "77656212001a0022002a0032003800420012220a1a0a0a4465706c6f796d656e7412037765621a07617070732f76311001180320"
    "321a04180020001a002200")
DEPLOYMENT = bytes.fromhex(  # create deployment d1 --image=nginx --replicas=2 --port=80
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b4010a1d0a02643112001a0022002a00320038004200"
    "5a090a03617070120264311284010802120b0a090a03617070120264311a6b0a1b0a0012001a0022002a0032003800420"
    "05a090a0361707012026431124c122e0a056e67696e7812056e67696e782a00320a0a001000185022002a0042006a0072008"
    "00100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a0028003800"
    "1a0c0800100018002000280038001a002200")
ROLEBINDING = bytes.fromhex(  # create rolebinding rb1 --role=r1 --user=u1 --group=g1 --serviceaccount=default:sa1
    "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b526f6c6542696e64696e6712b101"
    "0a130a0372623112001a0022002a0032003800420012270a04557365721219726261632e617574686f72697a6174696f6e2e6b38"
    "732e696f1a027531220012280a0547726f75701219726261632e617574686f72697a6174696f6e2e6b38732e696f1a0267312200"
    "12200a0e536572766963654163636f756e7412001a03736131220764656661756c741a250a19726261632e617574686f72697a6174"
    "696f6e2e6b38732e696f1204526f6c651a0272311a002200")


# -- a tiny encoder, to build corner cases ------------------------------------
def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def fv(num: int, v: int) -> bytes:
    return varint(num << 3) + varint(v)


def fb(num: int, v: bytes | str) -> bytes:
    raw = v.encode() if isinstance(v, str) else v
    return varint(num << 3 | 2) + varint(len(raw)) + raw


def envelope(api_version: str, kind: str, raw: bytes, encoding: str = "") -> bytes:
    return MAGIC + fb(1, fb(1, api_version) + fb(2, kind)) + fb(2, raw) + fb(3, encoding) + fb(4, "")


# -- captured bodies ------------------------------------------------------------
def test_configmap_from_kubectl() -> None:
    assert decode_body(CONFIGMAP) == {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm1"},
                                      "data": {"a": "b", "c": "d"}}


def test_autoscale_from_kubectl_keeps_pointer_zeros() -> None:
    assert decode_body(AUTOSCALE) == {
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                 "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50},
        "status": {"currentReplicas": 0, "desiredReplicas": 0}}


def test_deployment_from_kubectl() -> None:
    labels = {"app": "d1"}
    assert decode_body(DEPLOYMENT) == {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d1", "labels": labels},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "strategy": {},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}]}}},
        "status": {}}


def test_rolebinding_from_kubectl() -> None:
    got = decode_body(ROLEBINDING)
    assert got["kind"] == "RoleBinding" and got["metadata"] == {"name": "rb1"}
    assert got["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r1"}
    assert got["subjects"] == [
        {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "u1"},
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "g1"},
        {"kind": "ServiceAccount", "name": "sa1", "namespace": "default"}]


# -- field types ------------------------------------------------------------------
def test_secret_bytes_are_base64_and_time_is_rfc3339() -> None:
    meta = fb(1, "s") + fb(8, fv(1, 1700000000) + fv(2, 5)) + fb(11, fb(1, "k") + fb(2, "v"))
    raw = fb(1, meta) + fb(2, fb(1, "bin") + fb(2, b"\x00\xff")) + fb(3, "Opaque")
    got = decode_body(envelope("v1", "Secret", raw))
    assert got["metadata"] == {"name": "s", "creationTimestamp": "2023-11-14T22:13:20Z", "labels": {"k": "v"}}
    assert got["data"] == {"bin": "AP8="} and got["type"] == "Opaque"


def test_intorstring_quantity_and_negative_ints() -> None:
    port = fb(1, "http") + fv(3, 80) + fb(4, fv(1, 1) + fb(3, "web")) + fv(5, 0)
    spec = fb(1, port) + fb(1, fv(3, 443) + fb(4, fv(1, 0) + fv(2, 8443))) + fv(12, (1 << 64) - 5)
    got = decode_body(envelope("v1", "Service", fb(2, spec)))["spec"]
    assert got["ports"] == [{"name": "http", "port": 80, "targetPort": "web"}, {"port": 443, "targetPort": 8443}]
    assert got["healthCheckNodePort"] == -5
    hard = fb(1, fb(1, "cpu") + fb(2, fb(1, "250m"))) + fb(1, fb(1, "memory") + fb(2, fb(1, "1Gi")))
    quota = decode_body(envelope("v1", "ResourceQuota", fb(2, hard + fb(2, "BestEffort"))))
    assert quota["spec"] == {"hard": {"cpu": "250m", "memory": "1Gi"}, "scopes": ["BestEffort"]}


def test_inline_embedded_structs() -> None:
    ref = fb(1, fb(1, "cm")) + fb(2, "key")
    env = fb(1, "A") + fb(3, fb(3, ref))
    vol = fb(1, "v") + fb(2, fb(19, fb(1, fb(1, "cm")) + fv(3, 420)))
    pod = fb(2, fb(1, vol) + fb(2, fb(1, "c") + fb(7, env)))
    spec = decode_body(envelope("apps/v1", "Deployment", fb(2, fb(3, pod))))["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "v", "configMap": {"name": "cm", "defaultMode": 420}}]
    assert spec["containers"][0]["env"] == [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "key"}}}]


def test_zero_values_dropped_unless_pointer() -> None:
    spec = fv(1, 0) + fv(5, 0) + fv(7, 0)  # replicas is *int32: 0 kept; minReadySeconds, paused dropped
    assert decode_body(envelope("apps/v1", "Deployment", fb(2, spec)))["spec"] == {"replicas": 0}


def test_unknown_fields_skipped() -> None:
    raw = fb(1, fb(1, "n") + fb(99, "x")) + fv(77, 5) + varint(78 << 3 | 5) + b"\0\0\0\0" + fb(2, fb(1, "a") + fb(2, "b"))
    assert decode_body(envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n"}, "data": {"a": "b"}}


# -- errors -------------------------------------------------------------------------
def test_unknown_kind_names_it() -> None:
    with pytest.raises(UnknownKind, match="Widget in example.com/v1"):
        decode_body(envelope("example.com/v1", "Widget", b""))


@pytest.mark.parametrize("body, msg", [
    (b"{}", "magic"),
    (CONFIGMAP[:-10], "past the end"),
    (MAGIC + b"\x0a\x80", "truncated varint"),
    (MAGIC + varint(1 << 3 | 3), "wire type"),
    (envelope("v1", "ConfigMap", b"", encoding="gzip"), "gzip"),
    (envelope("v1", "ConfigMap", fb(1, fb(1, b"\xff\xfe"))), "UTF-8"),
])
def test_malformed_bodies(body: bytes, msg: str) -> None:
    with pytest.raises(ProtobufError, match=msg):
        decode_body(body)


def test_tables_reference_only_known_messages() -> None:
    scalars = {"s", "i", "b", "y", "map", "ymap", "qmap", "q", "time", "intstr"}
    for name, fields in MESSAGES.items():
        for f in fields.values():
            assert f.kind in scalars or f.kind in MESSAGES, f"{name}.{f.name}: {f.kind}"
            assert not f.inline or f.kind in MESSAGES
    assert all(m in MESSAGES for m in KINDS.values())


# -- through the API server ------------------------------------------------------------
@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    from apiserver_fixture import ServerThread  # here, so the decoder tests run without the server
    s = ServerThread().start()
    try:
        with httpx.Client(base_url=s.url, timeout=10) as c:
            yield c
    finally:
        s.stop()


def test_server_creates_namespace_and_configmap_from_protobuf(http: httpx.Client) -> None:
    from apiserver_fixture import unique
    ns = unique("crt-pb")
    meta = fb(1, ns) + fb(11, fb(1, "team") + fb(2, "a"))
    r = http.post("/api/v1/namespaces?fieldManager=kubectl-create&fieldValidation=Strict",
                  content=envelope("v1", "Namespace", fb(1, meta) + fb(2, b"") + fb(3, fb(1, ""))),
                  headers={"Content-Type": PB, "Accept": PB + ",application/json"})
    assert r.status_code == 201, r.text
    got = http.get(f"/api/v1/namespaces/{ns}").json()
    assert got["metadata"]["labels"] == {"team": "a"} and got["metadata"].get("uid")
    try:
        r = http.post(f"/api/v1/namespaces/{ns}/configmaps?fieldManager=kubectl-create&fieldValidation=Strict",
                      content=CONFIGMAP, headers={"Content-Type": PB})
        if r.status_code == 404 and "cm1" not in r.text:
            pytest.skip("configmaps not served by this API server yet")
        assert r.status_code == 201, r.text
        cm = http.get(f"/api/v1/namespaces/{ns}/configmaps/cm1").json()
        assert cm["data"] == {"a": "b", "c": "d"} and cm["metadata"]["namespace"] == ns
    finally:
        http.delete(f"/api/v1/namespaces/{ns}")


def test_server_answers_415_for_unknown_kind_and_400_for_garbage(http: httpx.Client) -> None:
    r = http.post("/api/v1/namespaces", content=envelope("example.com/v1", "Widget", b""),
                  headers={"Content-Type": PB})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    assert "Widget" in r.json()["message"]
    r = http.post("/api/v1/namespaces", content=b"k8s\x00\x0a\xff", headers={"Content-Type": PB})
    assert r.status_code == 400 and "protobuf" in r.json()["message"]
