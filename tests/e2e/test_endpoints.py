"""End to end: the Endpoints and EndpointSlice controllers on a real one-node
cluster, driven by the real kubectl.  A Service over a busybox httpd pod whose
readinessProbe (exec `test -f /tmp/ready`) fails at first: the pod is in
notReadyAddresses and the services proxy answers 503; `kubectl exec ...
touch /tmp/ready` makes it ready: it moves to addresses, its slice endpoint
turns ready, and `kubectl get --raw .../services/web:80/proxy/` reaches the
pod's httpd.  `kubectl get endpoints` / `endpointslices` print upstream's
columns.  Deleting the Service removes both.

Node crt-ep with its own bridge (crt-be<rand>), cgroup root and CIDRs
(10.234.0.0/16 pods, 10.121.0.0/16 services); purged at the end with a
leftover check.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, running_cluster, have_tools, wait_for  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

OBJECTS = """apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: crt-ep-web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    ports: [{name: http, containerPort: 8080}]
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-endpoints > /www/index.html && exec httpd -f -p 8080 -h /www"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web, labels: {team: crt}}
spec:
  selector: {app: crt-ep-web}
  ports: [{name: http, port: 80, targetPort: http}]
"""
SLICE_LABEL = "kubernetes.io/service-name=web"


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    yield from running_cluster(Path(tmp_path_factory.mktemp("crt-ep")), "crt-ep", "crt-be", "10.234.0.0/16",
                               "10.121.0.0/16", timeout=60)


def get(kc: E2ECluster, *args: str) -> dict:
    return json.loads(kc.kubectl("get", *args, "-o", "json").stdout)


def rows(kc: E2ECluster, *args: str) -> list[list[str]]:
    return [line.split() for line in kc.kubectl("get", *args).stdout.splitlines()]


def test_readiness_moves_the_pod_between_address_lists(kc: E2ECluster) -> None:
    kc.apply(OBJECTS)
    pod = wait_for(lambda: (p := kc.pod("web"))["status"].get("phase") == "Running" and p, 60, "web Running")
    ip, uid = pod["status"]["podIP"], pod["metadata"]["uid"]

    # not ready: notReadyAddresses, the named port resolved to the container's 8080
    ep = wait_for(lambda: (e := get(kc, "endpoints", "web")).get("subsets") and e, 30, "Endpoints web")
    assert ep["subsets"] == [{"notReadyAddresses": [{
        "ip": ip, "nodeName": "crt-ep", "targetRef": {"kind": "Pod", "namespace": "default", "name": "web", "uid": uid}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}]
    assert ep["metadata"]["labels"] == {"team": "crt"}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]
    table = rows(kc, "endpoints", "web")
    assert table[0] == ["NAME", "ENDPOINTS", "AGE"] and table[1][:2] == ["web", "<none>"]  # only ready ones print
    sl = wait_for(lambda: (s := get(kc, "endpointslices", "-l", SLICE_LABEL)["items"]) and s[0].get("endpoints") and s,
                  30, "web's slice with the pod")
    assert len(sl) == 1 and sl[0]["metadata"]["name"].startswith("web-") and sl[0]["addressType"] == "IPv4"
    assert sl[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
    assert sl[0]["metadata"]["ownerReferences"][0]["kind"] == "Service"
    assert sl[0]["endpoints"][0]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    table = rows(kc, "endpointslices", "-l", SLICE_LABEL)
    assert table[0] == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert table[1][:4] == [sl[0]["metadata"]["name"], "IPv4", "8080", ip]
    p = kc.kubectl("get", "--raw", "/api/v1/namespaces/default/services/web:80/proxy/", check=False)
    assert p.returncode != 0 and "ServiceUnavailable" in p.stderr, p.stderr

    # ready: addresses, and the services proxy reaches the pod through them
    kc.kubectl("exec", "web", "--", "touch", "/tmp/ready")
    wait_for(lambda: rows(kc, "endpoints", "web")[1][1] == f"{ip}:8080", 30, "web's address ready")
    ep = get(kc, "endpoints", "web")
    assert [a["ip"] for a in ep["subsets"][0]["addresses"]] == [ip] and "notReadyAddresses" not in ep["subsets"][0]
    wait_for(lambda: get(kc, "endpointslices", "-l", SLICE_LABEL)["items"][0]["endpoints"][0]["conditions"]
             == {"ready": True, "serving": True, "terminating": False}, 30, "the slice endpoint ready")
    for path in ("/api/v1/namespaces/default/services/web:80/proxy/",
                 "/api/v1/namespaces/default/services/web:http/proxy/index.html"):
        assert kc.kubectl("get", "--raw", path).stdout == "hello-from-endpoints\n", path

    # the Service goes: its Endpoints and slices go with it
    kc.kubectl("delete", "service", "web")
    wait_for(lambda: kc.kubectl("get", "endpoints", "web", check=False).returncode != 0, 30, "Endpoints deleted")
    wait_for(lambda: not get(kc, "endpointslices", "-l", SLICE_LABEL)["items"], 30, "slices deleted")
    kc.kubectl("delete", "pod", "web", "--wait=true", "--timeout=60s", timeout=70)
