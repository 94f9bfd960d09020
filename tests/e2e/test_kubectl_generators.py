"""kubectl's typed generators (`create configmap|secret|namespace|deployment|
service|quota|role|rolebinding|clusterrole|clusterrolebinding|serviceaccount|
job|cronjob|ingress|poddisruptionbudget|priorityclass`, `autoscale`) send
Kubernetes-protobuf bodies; `expose` and `run` send JSON.

Two checks per generator, both with the real kubectl:
- against a recording server on 127.0.0.1: the captured body decodes
  (master/apiserver/protobuf.py) to exactly what `--dry-run=client -o json`
  prints (nulls aside);
- against a real `coracle master`: the command succeeds and the stored object
  carries the generator's fields.  Generators whose kind the master does not
  serve yet are skipped.
"""
from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from master.apiserver.protobuf import CONTENT_TYPE, decode_body

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]
REPO = Path(__file__).resolve().parents[2]
RBAC = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Gen:
    id: str
    args: tuple[str, ...]
    resource: str          # `kubectl get` name, as api-resources lists it
    name: str
    check: Callable[[dict[str, Any]], bool]
    protobuf: bool = True
    needs_web: bool = False


GENS = [
    Gen("configmap", ("create", "configmap", "crt-cm", "--from-literal=a=b", "--from-file=bin=@BIN"), "configmaps",
        "crt-cm", lambda o: o["data"] == {"a": "b"} and o["binaryData"] == {"bin": "AP9i"}),
    Gen("secret", ("create", "secret", "generic", "crt-s", "--from-literal=a=b"), "secrets", "crt-s",
        lambda o: o["data"] == {"a": "Yg=="} and o["type"] == "Opaque"),
    Gen("namespace", ("create", "namespace", "crt-ns1"), "namespaces", "crt-ns1",
        lambda o: o["metadata"]["name"] == "crt-ns1"),
    Gen("deployment", ("create", "deployment", "crt-d", "--image=nginx", "--replicas=2", "--port=80"), "deployments",
        "crt-d", lambda o: o["spec"]["replicas"] == 2 and o["spec"]["selector"] == {"matchLabels": {"app": "crt-d"}}
        and o["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80),
    Gen("service", ("create", "service", "clusterip", "crt-svc", "--tcp=80:8080"), "services", "crt-svc",
        lambda o: o["spec"]["ports"][0]["port"] == 80 and o["spec"]["ports"][0]["targetPort"] == 8080
        and o["spec"]["selector"] == {"app": "crt-svc"}),
    Gen("service-nodeport", ("create", "service", "nodeport", "crt-np", "--tcp=80:8080"), "services", "crt-np",
        lambda o: o["spec"]["type"] == "NodePort"),
    Gen("quota", ("create", "quota", "crt-q", "--hard=cpu=1,memory=1G,pods=2"), "resourcequotas", "crt-q",
        lambda o: o["spec"]["hard"] == {"cpu": "1", "memory": "1G", "pods": "2"}),
    Gen("role", ("create", "role", "crt-r", "--verb=get,list", "--resource=pods"), "roles", "crt-r",
        lambda o: o["rules"] == [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]),
    Gen("rolebinding", ("create", "rolebinding", "crt-rb", "--role=crt-r", "--user=u1"), "rolebindings", "crt-rb",
        lambda o: o["roleRef"]["name"] == "crt-r" and o["subjects"][0]["name"] == "u1"),
    Gen("clusterrole", ("create", "clusterrole", "crt-cr", "--verb=get", "--non-resource-url=/logs"), "clusterroles",
        "crt-cr", lambda o: o["rules"] == [{"verbs": ["get"], "nonResourceURLs": ["/logs"]}]),
    Gen("clusterrolebinding", ("create", "clusterrolebinding", "crt-crb", "--clusterrole=crt-cr", "--group=g"),
        "clusterrolebindings", "crt-crb", lambda o: o["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole",
                                                                      "name": "crt-cr"}),
    Gen("serviceaccount", ("create", "serviceaccount", "crt-sa"), "serviceaccounts", "crt-sa",
        lambda o: o["metadata"]["name"] == "crt-sa"),
    Gen("job", ("create", "job", "crt-j", "--image=busybox", "--", "echo", "hi"), "jobs", "crt-j",
        lambda o: o["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "hi"]),
    Gen("cronjob", ("create", "cronjob", "crt-cj", "--image=busybox", "--schedule=*/5 * * * *"), "cronjobs", "crt-cj",
        lambda o: o["spec"]["schedule"] == "*/5 * * * *"),
    Gen("ingress", ("create", "ingress", "crt-ing", "--rule=foo.com/bar=svc1:8080"), "ingresses", "crt-ing",
        lambda o: o["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"] == 8080),
    Gen("pdb", ("create", "poddisruptionbudget", "crt-pdb", "--selector=app=x", "--min-available=1"),
        "poddisruptionbudgets", "crt-pdb", lambda o: o["spec"]["minAvailable"] == 1),
    Gen("priorityclass", ("create", "priorityclass", "crt-pc", "--value=1000"), "priorityclasses", "crt-pc",
        lambda o: o["value"] == 1000),
    Gen("autoscale", ("autoscale", "deployment", "web", "--min=1", "--max=3", "--cpu-percent=50"),
        "horizontalpodautoscalers", "web", lambda o: o["spec"]["maxReplicas"] == 3
        and o["spec"]["scaleTargetRef"] == {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
        needs_web=True),
    Gen("expose", ("expose", "deployment", "web", "--port=80"), "services", "web",
        lambda o: o["spec"]["selector"] == {"app": "web"}, protobuf=False, needs_web=True),
    Gen("run", ("run", "crt-run", "--image=nginx", "--env=A=1"), "pods", "crt-run",
        lambda o: o["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}], protobuf=False),
]
WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
           "metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_kubeconfig(path: Path, url: str) -> None:
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "c",
                                "clusters": [{"name": "c", "cluster": {"server": url}}],
                                "contexts": [{"name": "c", "context": {"cluster": "c", "namespace": "default"}}],
                                "users": []}))


class Kubectl:
    def __init__(self, tmp: Path, url: str):
        self.tmp, self.kubeconfig = tmp, tmp / "kubeconfig"
        write_kubeconfig(self.kubeconfig, url)
        (tmp / "bin").write_bytes(b"\x00\xffb")

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        args = tuple(a.replace("@BIN", str(self.tmp / "bin")) for a in args)
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), HOME=str(self.tmp))
        return subprocess.run(["kubectl", "--cache-dir", str(self.tmp / "kcache"), *args], input=input,
                              capture_output=True, text=True, env=env, timeout=30)


# -- the recording server ---------------------------------------------------------
_GROUPS = {"apps/v1": ["deployments", "deployments/scale"], f"{RBAC}/v1": ["roles", "clusterroles"],
           "autoscaling/v1": ["horizontalpodautoscalers"]}


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers /version, legacy discovery and GET deployments/web; records every
    write and fails it (kubectl then exits 1, which the test ignores)."""
    posts: list[tuple[str, str, bytes]] = []

    def log_message(self, *a: Any) -> None:
        pass

    def _send(self, code: int, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        p = self.path.split("?")[0]
        if p == "/version":
            return self._send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
        if p == "/api":
            return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
        if p == "/apis":
            return self._send(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": gv.split("/")[0], "versions": [{"groupVersion": gv, "version": "v1"}],
                 "preferredVersion": {"groupVersion": gv, "version": "v1"}} for gv in _GROUPS]})
        gv = p.removeprefix("/apis/").removeprefix("/api/")
        if gv in _GROUPS or p == "/api/v1":
            plurals = _GROUPS.get(gv, ["pods", "nodes", "services"])
            return self._send(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
                {"name": n, "kind": n[:-1].capitalize(), "namespaced": n not in ("nodes", "clusterroles"),
                 "singularName": "", "verbs": ["create", "get", "list"]} for n in plurals]})
        if p == "/apis/apps/v1/namespaces/default/deployments/web":
            return self._send(200, WEB)
        self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.posts.append((self.path, self.headers.get("Content-Type", ""), body))
        self._send(500, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "InternalError",
                         "code": 500, "message": "recorded"})


@pytest.fixture(scope="module")
def recorder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    port = free_port()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    t = threading.Thread(target=srv.serve_forever, name="crt-recorder", daemon=True)
    t.start()
    try:
        yield Kubectl(tmp_path_factory.mktemp("crt-rec"), f"http://127.0.0.1:{port}")
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def _no_nulls(o: Any) -> Any:
    if isinstance(o, dict):
        return {k: _no_nulls(v) for k, v in o.items() if v is not None}
    if isinstance(o, list):
        return [_no_nulls(v) for v in o]
    return o


def _dry_run_args(args: tuple[str, ...]) -> tuple[str, ...]:
    i = args.index("--") if "--" in args else len(args)
    return (*args[:i], "--dry-run=client", "-o", "json", *args[i:])


@pytest.mark.parametrize("gen", GENS, ids=[g.id for g in GENS])
def test_body_decodes_like_dry_run(recorder: Kubectl, gen: Gen) -> None:
    Recorder.posts.clear()
    r = recorder(*gen.args)
    assert len(Recorder.posts) == 1, f"expected one write, got {Recorder.posts}\n{r.stderr}"
    path, ctype, body = Recorder.posts[0]
    want = recorder(*_dry_run_args(gen.args))
    assert want.returncode == 0, want.stderr
    expected = _no_nulls(json.loads(want.stdout))
    if gen.protobuf:
        assert ctype == CONTENT_TYPE and body.startswith(b"k8s\x00"), (ctype, body[:8])
        assert decode_body(body) == expected
    else:
        assert ctype == "application/json"
        sent = _no_nulls(json.loads(body))
        assert sent["kind"] == expected["kind"] and sent["spec"] == expected["spec"]


# -- a real coracle master -----------------------------------------------------------
@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    tmp = tmp_path_factory.mktemp("crt-genmaster")
    port = free_port()
    log = open(tmp / "master.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "coracle.cli", "master", "--store", f"sqlite:///{tmp}/state.db",
                             "--port", str(port), "--kubeconfig", str(tmp / "master-kubeconfig")],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"master did not start:\n{(tmp / 'master.log').read_text()}")
            time.sleep(0.1)
        yield Kubectl(tmp, url)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
    assert proc.returncode == 0, (tmp / "master.log").read_text()


@pytest.fixture(scope="module")
def served(master: Kubectl) -> set[str]:
    r = master("api-resources", "-o", "name")
    assert r.returncode == 0, r.stderr
    return {line.split(".")[0] for line in r.stdout.split()}


@pytest.mark.parametrize("gen", GENS, ids=[g.id for g in GENS])
def test_generator_against_master(master: Kubectl, served: set[str], gen: Gen) -> None:
    if gen.resource not in served:
        pytest.skip(f"{gen.resource} not served by this master yet")
    if gen.needs_web:
        if "deployments" not in served:
            pytest.skip("deployments not served by this master yet")
        master("delete", "service,hpa", "web", "--ignore-not-found")
        master("apply", "-f", "-", input=json.dumps(WEB))
    r = master(*gen.args)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    got = master("get", gen.resource, gen.name, "-o", "json")
    assert got.returncode == 0, got.stderr
    obj = json.loads(got.stdout)
    assert gen.check(obj), obj
    assert obj["metadata"].get("uid") and obj["metadata"].get("creationTimestamp")
