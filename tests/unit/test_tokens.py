"""Service-account tokens: the claims (pure), the signing key on disk, sign
and verify with an injected clock, and `serviceaccounts/token` (TokenRequest)
through a real API server on loopback, with JSON and with the protobuf body
kubectl 1.32 sends for `kubectl create token`."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any, Iterator

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, node, pod, unique  # noqa: E402

from master.apiserver import protobuf, tokens  # noqa: E402
from master.apiserver.tokens import BoundObject, TokenError, TokenIssuer  # noqa: E402
from master.main import default_key_file, token_issuer  # noqa: E402

T0 = 1_800_000_000
ISS = tokens.DEFAULT_ISSUER
# kubectl create token sa1 --audience a1 --duration 20m --bound-object-kind Pod --bound-object-name p1
KUBECTL_BODY = (b'k8s\x00\n(\n\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x122\n\x10\n\x00\x12\x00\x1a\x00"\x00'
                b'*\x002\x008\x00B\x00\x12\x18\n\x02a1\x1a\x0f\n\x03Pod\x12\x02v1\x1a\x02p1"\x00 \xb0\t\x1a\x04\n\x00'
                b'\x12\x00\x1a\x00"\x00')


class Clock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# -- claims, keys, sign and verify ---------------------------------------------

def test_claims_for_a_pod_bound_token() -> None:
    c = tokens.claims(ISS, "ns1", BoundObject("build", "sa-uid"), ["api", "vault"], T0, 3600,
                      pod=BoundObject("p1", "pod-uid"), node=BoundObject("n1", "node-uid"), jti="j-1")
    assert c == {"iss": ISS, "sub": "system:serviceaccount:ns1:build", "aud": ["api", "vault"],
                 "exp": T0 + 3600, "iat": T0, "nbf": T0, "jti": "j-1",
                 "kubernetes.io": {"namespace": "ns1", "serviceaccount": {"name": "build", "uid": "sa-uid"},
                                   "pod": {"name": "p1", "uid": "pod-uid"}, "node": {"name": "n1", "uid": "node-uid"}}}


def test_claims_unique_jti_and_secret_binding_is_exclusive() -> None:
    sa = BoundObject("s", "u")
    a, b = (tokens.claims(ISS, "n", sa, ["x"], T0, 600) for _ in range(2))
    assert a["jti"] != b["jti"] and "pod" not in a["kubernetes.io"]
    c = tokens.claims(ISS, "n", sa, ["x"], T0, 600, node=BoundObject("n1"))
    assert c["kubernetes.io"]["node"] == {"name": "n1"}  # a missing node uid is left out
    with pytest.raises(ValueError):
        tokens.claims(ISS, "n", sa, ["x"], T0, 600, secret=BoundObject("s1", "u1"), pod=BoundObject("p", "u"))


def test_sign_and_verify_with_the_issuers_clock() -> None:
    clock = Clock()
    issuer = TokenIssuer(clock=clock)
    token = issuer.sign(tokens.claims(ISS, "d", BoundObject("s", "u"), [ISS], issuer.now(), 600))
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == tokens.key_id(issuer.public_key())
    assert issuer.verify(token)["sub"] == "system:serviceaccount:d:s"
    clock.t = T0 + 599
    issuer.verify(token)
    clock.t = T0 + 600
    with pytest.raises(TokenError, match="expired"):
        issuer.verify(token)
    assert issuer.verify(token, leeway=5)["exp"] == T0 + 600
    clock.t = T0 - 10
    with pytest.raises(TokenError, match="not yet valid"):
        issuer.verify(token)


def test_verify_rejects_other_audience_issuer_key_and_tampering() -> None:
    clock = Clock()
    issuer = TokenIssuer(clock=clock)
    token = issuer.sign(tokens.claims(ISS, "d", BoundObject("s", "u"), ["vault"], T0, 600))
    assert issuer.verify(token, ["vault"])["aud"] == ["vault"]
    with pytest.raises(TokenError):
        issuer.verify(token)  # the API server's audience is the issuer
    with pytest.raises(TokenError):
        issuer.verify(issuer.sign(tokens.claims("https://elsewhere", "d", BoundObject("s", "u"), [ISS], T0, 600)))
    other = TokenIssuer(clock=clock)
    with pytest.raises(TokenError, match="unknown key"):
        issuer.verify(other.sign(tokens.claims(ISS, "d", BoundObject("s", "u"), [ISS], T0, 600)))
    head, body, sig = issuer.sign(tokens.claims(ISS, "d", BoundObject("s", "u"), [ISS], T0, 600)).split(".")
    forged = jwt.utils.base64url_encode(json.dumps(unverified(f"{head}.{body}.{sig}") | {"sub": "x"}).encode())
    with pytest.raises(TokenError):
        issuer.verify(f"{head}.{forged.decode()}.{sig}")
    with pytest.raises(TokenError):
        issuer.verify("not-a-jwt")


def test_key_file_is_created_0600_reused_and_its_public_half_published(tmp_path: Path) -> None:
    key_file = tmp_path / "master" / "sa.key"
    first = token_issuer(str(key_file))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    pub = tmp_path / "master" / "sa.pub"
    assert pub.read_bytes() == first.public_pem()
    second = TokenIssuer(str(key_file))
    token = first.sign(tokens.claims(ISS, "d", BoundObject("s", "u"), [ISS], first.now(), 600))
    assert second.verify(token)["iss"] == ISS  # the same key, read back
    assert first.jwks()["keys"][0]["kid"] == tokens.key_id(first.public_key())
    assert sorted(os.listdir(tmp_path / "master")) == ["sa.key", "sa.pub"]  # no temp files left


def test_ecdsa_key_file_signs_es256_and_garbage_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    issuer = TokenIssuer(str(path))
    token = issuer.sign(tokens.claims(ISS, "d", BoundObject("s", "u"), [ISS], issuer.now(), 600))
    assert jwt.get_unverified_header(token)["alg"] == "ES256" and issuer.verify(token)["sub"].endswith(":d:s")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key\n")
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        TokenIssuer(str(bad)).load()


def test_default_key_file_follows_the_store() -> None:
    assert default_key_file("sqlite:///var/lib/x/master/state.db") == "/var/lib/x/master/sa.key"
    assert default_key_file("sqlite://:memory:") is None
    assert default_key_file("etcd://127.0.0.1:2379") == "/var/lib/coracle/master/sa.key"


# -- serviceaccounts/token through the API server ------------------------------

@pytest.fixture
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        yield c


@pytest.fixture
def ns(http: httpx.Client) -> str:
    name = unique("crt-tok")
    assert http.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    assert http.post(f"/api/v1/namespaces/{name}/serviceaccounts", json={"metadata": {"name": "sa1"}}).status_code == 201
    return name


def token_path(ns: str, sa: str = "sa1") -> str:
    return f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token"


def uid_of(http: httpx.Client, path: str) -> str:
    return str(http.get(path).json()["metadata"]["uid"])


def test_token_request_defaults(srv: ServerThread, http: httpx.Client, ns: str) -> None:
    r = http.post(token_path(ns), json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"})
    assert r.status_code == 201, r.text
    tr = r.json()
    assert (tr["kind"], tr["apiVersion"]) == ("TokenRequest", "authentication.k8s.io/v1")
    assert tr["metadata"]["name"] == "sa1" and tr["metadata"]["namespace"] == ns
    assert tr["spec"] == {"audiences": [ISS], "expirationSeconds": 3600}
    claims = srv.server.tokens.verify(tr["status"]["token"])
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert claims["sub"] == f"system:serviceaccount:{ns}:sa1" and claims["aud"] == [ISS]
    sa_uid = uid_of(http, f"/api/v1/namespaces/{ns}/serviceaccounts/sa1")
    assert claims["kubernetes.io"] == {"namespace": ns, "serviceaccount": {"name": "sa1", "uid": sa_uid}}
    exp = tr["status"]["expirationTimestamp"]
    assert exp.endswith("Z") and tokens_time(exp) == claims["exp"]


def tokens_time(rfc3339: str) -> int:
    import datetime as dt
    return int(dt.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp())


def test_token_for_a_missing_service_account_is_404(http: httpx.Client, ns: str) -> None:
    r = http.post(token_path(ns, "nobody"), json={})
    assert r.status_code == 404
    assert r.json()["message"] == 'serviceaccounts "nobody" not found' and r.json()["reason"] == "NotFound"


@pytest.mark.parametrize("secs,why", [(599, "may not specify a duration less than 10 minutes"),
                                      ((1 << 32) + 1, "may not specify a duration larger than 2^32 seconds")])
def test_expiration_bounds(http: httpx.Client, ns: str, secs: int, why: str) -> None:
    r = http.post(token_path(ns), json={"spec": {"expirationSeconds": secs}})
    assert r.status_code == 422
    st = r.json()
    assert st["message"] == (f'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
                             f"Invalid value: {secs}: {why}")
    assert st["details"]["causes"][0]["field"] == "spec.expirationSeconds"
    assert http.post(token_path(ns), json={"spec": {"expirationSeconds": 600}}).status_code == 201


def test_name_in_body_must_match(http: httpx.Client, ns: str) -> None:
    r = http.post(token_path(ns), json={"metadata": {"name": "other"}})
    assert r.status_code == 422 and "must match the service account name if specified" in r.json()["message"]


def test_token_bound_to_a_pod_names_the_pod_and_its_node(srv: ServerThread, http: httpx.Client, ns: str) -> None:
    n = unique("crt-node")
    assert http.post("/api/v1/nodes", json=node(n)).status_code == 201
    p = pod("p1", node=n)
    p["spec"]["serviceAccountName"] = "sa1"
    assert http.post(f"/api/v1/namespaces/{ns}/pods", json=p).status_code == 201
    pod_uid = uid_of(http, f"/api/v1/namespaces/{ns}/pods/p1")
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "p1", "uid": pod_uid}
    r = http.post(token_path(ns), json={"spec": {"audiences": ["a1"], "boundObjectRef": ref}})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["boundObjectRef"] == ref
    k8s = srv.server.tokens.verify(r.json()["status"]["token"], ["a1"])["kubernetes.io"]
    assert k8s["pod"] == {"name": "p1", "uid": pod_uid}
    assert k8s["node"] == {"name": n, "uid": uid_of(http, f"/api/v1/nodes/{n}")}
    r = http.post(token_path(ns), json={"spec": {"boundObjectRef": ref | {"uid": "stale"}}})
    assert r.status_code == 409 and "does not match the UID in record" in r.json()["message"]
    http.delete(f"/api/v1/nodes/{n}")


def test_pod_binding_checks_the_pods_service_account(http: httpx.Client, ns: str) -> None:
    assert http.post(f"/api/v1/namespaces/{ns}/pods", json=pod("p2")).status_code == 201  # runs as "default"
    r = http.post(token_path(ns), json={"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p2"}}})
    assert r.status_code == 400
    assert r.json()["message"] == ('cannot bind token for serviceaccount "sa1" to pod running with different '
                                   'serviceaccount name.')
    r = http.post(token_path(ns), json={"spec": {"boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "gone"}}})
    assert r.status_code == 404 and r.json()["message"] == 'pods "gone" not found'


def test_secret_and_node_bindings_and_unsupported_kinds(srv: ServerThread, http: httpx.Client, ns: str) -> None:
    assert http.post(f"/api/v1/namespaces/{ns}/secrets", json={"metadata": {"name": "s1"}}).status_code == 201
    r = http.post(token_path(ns), json={"spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "s1"}}})
    assert r.status_code == 201, r.text
    k8s = srv.server.tokens.verify(r.json()["status"]["token"])["kubernetes.io"]
    assert k8s["secret"] == {"name": "s1", "uid": uid_of(http, f"/api/v1/namespaces/{ns}/secrets/s1")}
    n = unique("crt-node")
    assert http.post("/api/v1/nodes", json=node(n)).status_code == 201
    r = http.post(token_path(ns), json={"spec": {"boundObjectRef": {"kind": "Node", "apiVersion": "v1", "name": n}}})
    assert srv.server.tokens.verify(r.json()["status"]["token"])["kubernetes.io"]["node"]["name"] == n
    http.delete(f"/api/v1/nodes/{n}")
    r = http.post(token_path(ns), json={"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1",
                                                                     "name": "c"}}})
    assert r.status_code == 400 and r.json()["message"] == "cannot bind token to object of type /v1, Kind=ConfigMap"
    r = http.post(token_path(ns), json={"spec": {"boundObjectRef": {"kind": "Deployment", "apiVersion": "apps/v1",
                                                                     "name": "d"}}})
    assert r.json()["message"] == "cannot bind token to object of type apps/v1, Kind=Deployment"


def test_kubectl_protobuf_body(srv: ServerThread, http: httpx.Client, ns: str) -> None:
    assert protobuf.decode_body(KUBECTL_BODY)["spec"] == {
        "audiences": ["a1"], "expirationSeconds": 1200, "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p1"}}
    p = pod("p1")
    p["spec"]["serviceAccountName"] = "sa1"
    assert http.post(f"/api/v1/namespaces/{ns}/pods", json=p).status_code == 201
    r = http.post(token_path(ns), content=KUBECTL_BODY, headers={"Content-Type": protobuf.CONTENT_TYPE})
    assert r.status_code == 201, r.text
    claims = srv.server.tokens.verify(r.json()["status"]["token"], ["a1"])
    assert claims["exp"] - claims["iat"] == 1200 and claims["kubernetes.io"]["pod"]["name"] == "p1"


def test_token_subresource_verbs_and_discovery(http: httpx.Client, ns: str) -> None:
    assert http.get(token_path(ns)).status_code == 405
    res = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert res["serviceaccounts/token"]["kind"] == "TokenRequest" and res["serviceaccounts/token"]["verbs"] == ["create"]
    agg = http.get("/api", headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
    sa = next(r for r in agg.json()["items"][0]["versions"][0]["resources"] if r["resource"] == "serviceaccounts")
    assert sa["subresources"] == [{"subresource": "token", "verbs": ["create"], "responseKind": {
        "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"}}]


def test_issuer_discovery_documents_verify_a_token(srv: ServerThread, http: httpx.Client, ns: str) -> None:
    """/.well-known/openid-configuration names the issuer and the JWKS URI; the key set at
    /openid/v1/jwks verifies a token the API server issued, with nothing else (as a relying party)."""
    import jwt
    conf = http.get("/.well-known/openid-configuration")
    assert conf.status_code == 200, conf.text
    doc = conf.json()
    assert doc["issuer"] == ISS and doc["jwks_uri"].endswith("/openid/v1/jwks")
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = http.get("/openid/v1/jwks")
    assert keys.headers["content-type"].startswith("application/jwk-set+json")
    token = http.post(token_path(ns), json={"spec": {"audiences": ["relying-party"]}}).json()["status"]["token"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in keys.json()["keys"] if k["kid"] == kid)
    claims = jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[jwk["alg"]], audience="relying-party", issuer=ISS)
    assert claims["sub"] == f"system:serviceaccount:{ns}:sa1"
