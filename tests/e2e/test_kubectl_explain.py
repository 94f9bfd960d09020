"""OpenAPI v3 and field validation seen by the real `kubectl` (1.32) against
a real `coracle master` (no node agent; the master process of
test_kubectl_master): `kubectl explain` reads our schemas, `apply`/`create`
get upstream's strict decoding error for a misspelled field, and
`--validate=false` / `--validate=warn` let it through."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from test_kubectl_master import Master  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]

BAD_POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: main
    imagee: busybox:1.36
    image: busybox:1.36
"""
BAD_POD2 = """apiVersion: v1
kind: Pod
metadata: {name: crt-explain-bad2, labelz: {app: x}}
spec:
  restartPolicyy: Never
  containers: [{name: main, image: busybox:1.36}]
"""
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {{name: crt-explain-dep}}
spec:
  {replicas}: 1
  selector: {{matchLabels: {{app: x}}}}
  template:
    metadata: {{labels: {{app: x}}}}
    spec:
      containers:
      - {{name: main, image: "{image}", env: [{{name: A, value: "1"}}]}}
      - {{name: side, image: busybox:1.36}}
"""


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("crt-explain"))
    try:
        yield m
    finally:
        rc = m.stop()
    assert rc == 0, (Path(m.tmp) / "master.log").read_text()


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    return r.stdout


def test_explain_pod(master: Master) -> None:
    out = ok(master.kubectl("explain", "pod"))
    assert "KIND:       Pod" in out and "VERSION:    v1" in out
    assert "Pod is a collection of containers that can run on a host" in out
    for field in ("apiVersion\t<string>", "metadata\t<ObjectMeta>", "spec\t<PodSpec>", "status\t<PodStatus>"):
        assert field in out, out


def test_explain_pod_spec_containers(master: Master) -> None:
    out = ok(master.kubectl("explain", "pod.spec.containers"))
    assert "FIELD: containers <[]Container>" in out, out
    assert "List of containers belonging to the pod" in out
    assert "image\t<string>" in out and "resources\t<ResourceRequirements>" in out
    assert "name\t<string> -required-" in out
    probe = ok(master.kubectl("explain", "pod.spec.containers.livenessProbe.httpGet"))
    assert "port\t<string> -required-" in probe, probe  # IntOrString: typed string, as upstream's schema
    leaf = ok(master.kubectl("explain", "pod.spec.containers.livenessProbe.httpGet.port"))
    assert "Name or number of the port to access on the container" in leaf, leaf


def test_explain_unknown_field_fails(master: Master) -> None:
    r = master.kubectl("explain", "pod.spec.imagee")
    assert r.returncode != 0 and 'field "imagee" does not exist' in r.stderr


def test_apply_misspelled_field_is_strict_error(master: Master) -> None:
    r = master.kubectl("apply", "-f", "-", input=BAD_POD.format(name="crt-explain-bad"))
    assert r.returncode != 0
    assert 'strict decoding error: unknown field "spec.containers[0].imagee"' in r.stderr, r.stderr
    r = master.kubectl("create", "-f", "-", input=BAD_POD2)
    assert r.returncode != 0
    assert ('strict decoding error: unknown field "metadata.labelz", unknown field "spec.restartPolicyy"'
            in r.stderr), r.stderr
    for name in ("crt-explain-bad", "crt-explain-bad2"):  # nothing was stored
        assert "NotFound" in master.kubectl("get", "pod", name).stderr


def test_validate_false_and_warn_pass(master: Master) -> None:
    try:
        out = ok(master.kubectl("apply", "--validate=false", "-f", "-", input=BAD_POD.format(name="crt-explain-a")))
        assert out.strip() == "pod/crt-explain-a created"
        r = master.kubectl("apply", "--validate=warn", "-f", "-", input=BAD_POD.format(name="crt-explain-w"))
        assert ok(r).strip() == "pod/crt-explain-w created"
        assert 'Warning: unknown field "spec.containers[0].imagee"' in r.stderr, r.stderr
        got = json.loads(ok(master.kubectl("get", "pod", "crt-explain-a", "-o", "json")))
        assert got["spec"]["containers"][0]["image"] == "busybox:1.36"
        assert "imagee" not in got["spec"]["containers"][0]  # the unknown field is dropped, as upstream
    finally:
        master.kubectl("delete", "pod", "crt-explain-a", "crt-explain-w", "--ignore-not-found", "--wait=false")


def test_openapi_etag(master: Master) -> None:
    index = httpx.get(master.url + "/openapi/v3").json()
    url = master.url + index["paths"]["api/v1"]["serverRelativeURL"]
    first = httpx.get(url)
    assert first.status_code == 200 and first.headers["ETag"]
    again = httpx.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.content == b""


def test_deployment_explain_strict_and_apply_twice(master: Master) -> None:
    out = ok(master.kubectl("explain", "deployment.spec.strategy"))
    assert "FIELD: strategy <DeploymentStrategy>" in out and "rollingUpdate\t<RollingUpdateDeployment>" in out
    r = master.kubectl("apply", "-f", "-", input=DEPLOY.format(replicas="replicaz", image="busybox:1.36"))
    assert r.returncode != 0 and 'strict decoding error: unknown field "spec.replicaz"' in r.stderr, r.stderr
    try:
        ok(master.kubectl("apply", "-f", "-", input=DEPLOY.format(replicas="replicas", image="busybox:1.36")))
        # the second apply is a strategic merge patch kubectl builds from our schemas' merge keys
        out = ok(master.kubectl("apply", "-f", "-", input=DEPLOY.format(replicas="replicas", image="busybox:1.37")))
        assert out.strip() == "deployment.apps/crt-explain-dep configured"
        got = json.loads(ok(master.kubectl("get", "deployment", "crt-explain-dep", "-o", "json")))
        cs = got["spec"]["template"]["spec"]["containers"]
        assert [(c["name"], c["image"]) for c in cs] == [("main", "busybox:1.37"), ("side", "busybox:1.36")]
        assert cs[0]["env"] == [{"name": "A", "value": "1"}]
    finally:
        master.kubectl("delete", "deployment", "crt-explain-dep", "--ignore-not-found", "--wait=false")
