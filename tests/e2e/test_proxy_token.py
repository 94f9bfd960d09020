"""End to end through the real `kubectl` on a one-node cluster: service-account
tokens (`kubectl create token`, a protobuf TokenRequest; the JWT checked
against the public key the master keeps beside its signing key) and the
proxy subresources (`kubectl get --raw` and `kubectl proxy` + curl through
services/proxy and pods/proxy to a real pod's busybox httpd, nodes/proxy to
the node agent, 503 for a service without endpoints).

One node `crt-proxy` with its own bridge, cgroup root and CIDRs (10.252.0.0/16
pods, 10.104.0.0/16 services); torn down at the end with a leftover check.
The master's endpoints controller fills the services' Endpoints from their selectors.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, free_port, have_tools, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

NODE = "crt-proxy"
ISSUER = "https://kubernetes.default.svc.cluster.local"
OBJECTS = """apiVersion: v1
kind: ServiceAccount
metadata: {name: builder}
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  serviceAccountName: builder
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    ports: [{containerPort: 8080}]
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
"""


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    e = E2ECluster.make(Path(tmp_path_factory.mktemp("crt-proxy")), node_name=NODE, bridge_prefix="crt-bp",
                        cluster_cidr="10.252.0.0/16", service_cidr="10.104.0.0/16")
    ok = False
    try:
        e.cluster.up(timeout=60)
        e.apply(OBJECTS)
        wait_for(lambda: e.pod("web")["status"].get("phase") == "Running", 60, "web Running")
        wait_for(lambda: e.kubectl("get", "endpoints", "web", "-o", "jsonpath={.subsets[0].addresses[0].ip}",
                                   check=False).stdout == e.pod("web")["status"]["podIP"], 30, "web's Endpoints")
        wait_for(lambda: "hello-from-web" in e.kubectl("get", "--raw", "/api/v1/namespaces/default/pods/web:8080/proxy/",
                                                     check=False).stdout, 30, "httpd answering through pods/proxy")
        yield e
        ok = True
    finally:
        if not ok:
            print(e.logs(), file=sys.__stderr__)
        left = e.teardown()
        assert not left, "left behind:\n" + "\n".join(left)


def claims_of(kc: E2ECluster, token: str, audience: str) -> dict:
    """The token's claims, verified with the public key the master published beside its signing key."""
    key_dir = Path(kc.cluster.data_dir) / "master"
    assert stat.S_IMODE(os.stat(key_dir / "sa.key").st_mode) == 0o600
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"]
    return jwt.decode(token, (key_dir / "sa.pub").read_bytes(), algorithms=["RS256"], audience=audience,
                      issuer=ISSUER)


def test_create_token_bound_to_a_pod(kc: E2ECluster) -> None:
    token = kc.kubectl("create", "token", "builder", "--audience", "a1", "--duration", "20m",
                       "--bound-object-kind", "Pod", "--bound-object-name", "web").stdout.strip()
    c = claims_of(kc, token, "a1")
    pod, node = kc.pod("web"), json.loads(kc.kubectl("get", "node", NODE, "-o", "json").stdout)
    sa = json.loads(kc.kubectl("get", "serviceaccount", "builder", "-o", "json").stdout)
    assert c["sub"] == "system:serviceaccount:default:builder" and c["aud"] == ["a1"]
    assert c["exp"] - c["iat"] == 1200 and c["nbf"] == c["iat"] and c["jti"]
    assert abs(c["iat"] - time.time()) < 300
    assert c["kubernetes.io"] == {"namespace": "default",
                                  "serviceaccount": {"name": "builder", "uid": sa["metadata"]["uid"]},
                                  "pod": {"name": "web", "uid": pod["metadata"]["uid"]},
                                  "node": {"name": NODE, "uid": node["metadata"]["uid"]}}


def test_create_token_defaults_and_errors(kc: E2ECluster) -> None:
    c = claims_of(kc, kc.kubectl("create", "token", "builder").stdout.strip(), ISSUER)
    assert c["exp"] - c["iat"] == 3600 and c["aud"] == [ISSUER] and "pod" not in c["kubernetes.io"]
    p = kc.kubectl("create", "token", "nobody", check=False)
    assert p.returncode != 0 and 'serviceaccounts "nobody" not found' in p.stderr
    p = kc.kubectl("create", "token", "builder", "--duration", "1m", check=False)
    assert p.returncode != 0 and "may not specify a duration less than 10 minutes" in p.stderr


def test_get_raw_through_pods_and_services_proxy(kc: E2ECluster) -> None:
    for path in ("/api/v1/namespaces/default/pods/web:8080/proxy/",
                 "/api/v1/namespaces/default/pods/web/proxy/index.html",   # the declared container port
                 "/api/v1/namespaces/default/services/web:80/proxy/",
                 "/api/v1/namespaces/default/services/http:web:http/proxy/index.html"):
        assert kc.kubectl("get", "--raw", path).stdout == "hello-from-web\n", path
    r = httpx.get(f"{kc.cluster.api_url}/api/v1/namespaces/default/pods/web:8080/proxy/missing.html", timeout=10)
    assert r.status_code == 404 and "application/json" not in r.headers.get("content-type", "")  # httpd's own 404
    assert "Not Found" in r.text, r.text


def test_kubectl_proxy_and_curl(kc: E2ECluster) -> None:
    port = free_port()
    proxy = kc.kubectl_popen("proxy", f"--port={port}")
    try:
        assert proxy.stdout is not None
        line = proxy.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line
        out = subprocess.run(["curl", "-sS", "--max-time", "10", "--noproxy", "*",
                              f"http://127.0.0.1:{port}/api/v1/namespaces/default/services/web:80/proxy/"],
                             capture_output=True, text=True, timeout=20)
        assert out.stdout == "hello-from-web\n", out
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def test_nodes_proxy_reaches_the_agent(kc: E2ECluster) -> None:
    assert kc.kubectl("get", "--raw", f"/api/v1/nodes/{NODE}/proxy/healthz").stdout == "ok"


def test_service_without_endpoints_is_503(kc: E2ECluster) -> None:
    p = kc.kubectl("get", "--raw", "/api/v1/namespaces/default/services/empty:80/proxy/", check=False)
    assert p.returncode != 0
    assert 'Error from server (ServiceUnavailable): no endpoints available for service "empty"' in p.stderr, p.stderr
    p = kc.kubectl("get", "--raw", "/api/v1/namespaces/default/services/nope:80/proxy/", check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr, p.stderr
