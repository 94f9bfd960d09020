"""The kubectl workflows of issue 3 with the real `kubectl` (1.32) against a real
`coracle master` (the process of test_kubectl_master, with its scheduler and
controllers but no node agent: deployments get their ReplicaSets and pods, and
the pods stay Pending, so 0 ready): scale, edit (KUBE_EDITOR), patch of the
three types, label/annotate with --overwrite and `key-`, configmap and secret
generators, client-side apply pruning, delete -l, the output formats, describe
of six kinds, and upstream's header text and column alignment."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_kubectl_master import Master  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]
NS = "crt-ks"

DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
      - name: main
        image: busybox:1.36
        command: [sleep, "3600"]
        ports:
{ports}
        env:
{env}
"""
# a node nothing is scheduled to (no agent runs here)
NODE = """apiVersion: v1
kind: Node
metadata: {name: crt-node, labels: {kubernetes.io/hostname: crt-node}}
spec:
  unschedulable: true
  taints: [{key: crt, value: "yes", effect: NoSchedule}]
"""
POD = """apiVersion: v1
kind: Pod
metadata: {name: crt-pod, labels: {app: crt-pod}}
spec:
  containers: [{name: main, image: busybox:1.36, command: [sleep, "3600"]}]
"""
SVC = """apiVersion: v1
kind: Service
metadata: {name: crt-svc}
spec:
  selector: {app: crt-pod}
  ports: [{name: http, port: 80, targetPort: 8080}]
"""


def deploy(name: str, ports: list[int], env: dict[str, str]) -> str:
    return DEPLOY.format(name=name, ports="\n".join(f"        - containerPort: {p}" for p in ports),
                         env="\n".join(f"        - {{name: {k}, value: '{v}'}}" for k, v in env.items()))


class Kubectl:
    def __init__(self, master: Master):
        self.m = master

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None,
                 check: bool = True) -> str:
        # TMPDIR: kubectl edit's temp files (and the copy it keeps of a refused edit) stay in the test's dir
        e = dict(os.environ, KUBECONFIG=self.m.kubeconfig, HOME=str(self.m.tmp), TMPDIR=str(self.m.tmp), **(env or {}))
        r = subprocess.run(["kubectl", "--cache-dir", self.m.cache, "-n", NS, *args], input=input,
                           capture_output=True, text=True, env=e, timeout=30)
        if check:
            assert r.returncode == 0, f"kubectl {args}: rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
            return r.stdout
        return f"rc={r.returncode}\n{r.stdout}{r.stderr}"

    def json(self, *args: str) -> dict:
        return json.loads(self("get", *args, "-o", "json"))


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    m = Master(tmp_path_factory.mktemp("crt-ksuite"))
    stopped = False
    try:
        k = Kubectl(m)
        k("create", "namespace", NS)
        yield k
        k("delete", "namespace", NS, "--timeout=20s")
        rc = m.stop()
        stopped = True
        assert rc == 0, (m.tmp / "master.log").read_text()
    finally:
        if not stopped:
            m.stop()


def settled_row(kc: Kubectl, kind: str, name: str, want: list[str]) -> str:
    """`kubectl get` of one object once its first columns read `want` (the
    controllers write status a moment after a change); returns the output."""
    deadline = time.monotonic() + 60
    while True:
        out = kc("get", kind, name)
        if out.splitlines()[1].split()[:len(want)] == want or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


def columns(header: str) -> list[str]:
    return re.split(r"\s{2,}", header.strip())


def assert_aligned(out: str) -> None:
    """Every row's cells start where the header's columns start (kubectl's tabwriter); a cell may be empty."""
    lines = out.rstrip("\n").splitlines()
    cell = re.compile(r"(?:^|(?<=\s\s))\S")
    starts = {m.start() for m in cell.finditer(lines[0])}
    for line in lines[1:]:
        assert {m.start() for m in cell.finditer(line)} <= starts, (lines[0], line)


def test_scale_deployment(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=deploy("crt-sc", [80], {"A": "1"}))
    try:
        assert kc("scale", "deployment", "crt-sc", "--replicas=4").strip() == "deployment.apps/crt-sc scaled"
        assert kc("get", "deploy", "crt-sc", "-o", "jsonpath={.spec.replicas}") == "4"
        out = settled_row(kc, "deploy", "crt-sc", ["crt-sc", "0/4", "4", "0"])  # 4 pods made, none running
        assert columns(out.splitlines()[0]) == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        assert out.splitlines()[1].split()[:4] == ["crt-sc", "0/4", "4", "0"], out
        assert_aligned(out)
        bad = kc("scale", "deployment", "crt-sc", "--current-replicas=3", "--replicas=5", check=False)
        assert "Expected replicas to be 3, was 4" in bad
        assert kc("scale", "deploy/crt-sc", "--current-replicas=4", "--replicas=2").strip() == "deployment.apps/crt-sc scaled"
        assert kc("get", "deployment.apps", "crt-sc", "--no-headers").split()[1] == "0/2"
    finally:
        kc("delete", "deploy", "crt-sc")


def test_edit_via_kube_editor(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=deploy("crt-ed", [80], {"A": "1"}))
    try:
        editor = {"KUBE_EDITOR": "sed -i -e 's/busybox:1.36/busybox:1.37/' -e 's/replicas: 1/replicas: 3/'"}
        assert kc("edit", "deployment", "crt-ed", env=editor).strip() == "deployment.apps/crt-ed edited"
        got = kc.json("deploy", "crt-ed")
        assert got["spec"]["replicas"] == 3 and got["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.37"
        assert "Edit cancelled, no changes made." in kc("edit", "deploy", "crt-ed", env={"KUBE_EDITOR": "true"}, check=False)
        # an invalid edit is refused with the server's message and changes nothing
        bad = kc("edit", "deploy", "crt-ed", env={"KUBE_EDITOR": "sed -i 's/replicas: 3/replicas: -1/'"}, check=False)
        assert 'deployments.apps "crt-ed" is invalid' in bad and "no valid changes were saved" in bad, bad
        copy = Path(re.search(r'stored to "([^"]+)"', bad).group(1))  # type: ignore[union-attr]
        assert copy.parent == kc.m.tmp  # as upstream, the server's causes are comments atop the kept copy
        assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in copy.read_text()
        assert kc.json("deploy", "crt-ed")["spec"]["replicas"] == 3
    finally:
        kc("delete", "deploy", "crt-ed")


def test_patch_types(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=deploy("crt-pt", [80, 81], {"A": "1", "B": "2"}))
    try:
        kc("patch", "deploy", "crt-pt", "-p", '{"spec":{"template":{"spec":{"containers":'
           '[{"name":"main","env":[{"name":"B","value":"3"}]},{"name":"side","image":"busybox:1.36"}]}}}}')
        c = kc.json("deploy", "crt-pt")["spec"]["template"]["spec"]["containers"]
        assert [x["name"] for x in c] == ["main", "side"]  # strategic: merged by name
        assert c[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]
        assert [p["containerPort"] for p in c[0]["ports"]] == [80, 81]
        # strategic $patch: delete and a deletion directive for a list item
        kc("patch", "deploy", "crt-pt", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"side","$patch":"delete"}]}}}}')
        assert [x["name"] for x in kc.json("deploy", "crt-pt")["spec"]["template"]["spec"]["containers"]] == ["main"]
        # merge: a list is replaced whole
        out = kc("patch", "deploy", "crt-pt", "--type", "merge", "-p",
                 '{"metadata":{"labels":{"m":"1"}},"spec":{"template":{"spec":{"containers":[{"name":"solo","image":"busybox:1.37"}]}}}}')
        assert out.strip() == "deployment.apps/crt-pt patched"
        got = kc.json("deploy", "crt-pt")
        assert [(x["name"], x["image"]) for x in got["spec"]["template"]["spec"]["containers"]] == [("solo", "busybox:1.37")]
        assert got["metadata"]["labels"] == {"app": "crt-pt", "m": "1"}
        # json patch, including a failing test op
        kc("patch", "deploy", "crt-pt", "--type", "json", "-p",
           '[{"op":"replace","path":"/spec/replicas","value":2},{"op":"remove","path":"/metadata/labels/m"}]')
        got = kc.json("deploy", "crt-pt")
        assert got["spec"]["replicas"] == 2 and got["metadata"]["labels"] == {"app": "crt-pt"}
        bad = kc("patch", "deploy", "crt-pt", "--type", "json", "-p", '[{"op":"test","path":"/spec/replicas","value":9}]',
                 check=False)
        assert bad.startswith("rc=1") and "test failed" in bad, bad
        assert "patched (no change)" in kc("patch", "deploy", "crt-pt", "--type", "merge", "-p", '{"spec":{"replicas":2}}')
    finally:
        kc("delete", "deploy", "crt-pt")


def test_label_and_annotate(kc: Kubectl) -> None:
    kc("create", "configmap", "crt-la", "--from-literal=k=v")
    try:
        assert kc("label", "cm", "crt-la", "tier=web").strip() == "configmap/crt-la labeled"
        bad = kc("label", "cm", "crt-la", "tier=db", check=False)
        assert "'tier' already has a value (web), and --overwrite is false" in bad
        kc("label", "cm", "crt-la", "tier=db", "--overwrite")
        assert kc.json("cm", "crt-la")["metadata"]["labels"] == {"tier": "db"}
        assert kc("get", "cm", "-l", "tier=db", "-o", "name").strip() == "configmap/crt-la"
        assert kc("label", "cm", "crt-la", "tier-").strip() == "configmap/crt-la unlabeled"
        assert not kc.json("cm", "crt-la")["metadata"].get("labels")
        assert kc("annotate", "cm", "crt-la", "crt.io/note=first").strip() == "configmap/crt-la annotated"
        assert "--overwrite is false" in kc("annotate", "cm", "crt-la", "crt.io/note=second", check=False)
        kc("annotate", "cm", "crt-la", "crt.io/note=second", "--overwrite")
        assert kc("get", "cm", "crt-la", "-o", "jsonpath={.metadata.annotations.crt\\.io/note}") == "second"
        kc("annotate", "cm", "crt-la", "crt.io/note-")
        assert "crt.io/note" not in (kc.json("cm", "crt-la")["metadata"].get("annotations") or {})
    finally:
        kc("delete", "cm", "crt-la")


def test_create_configmap_from_files_and_literals(kc: Kubectl, tmp_path: Path) -> None:
    d = tmp_path / "conf"
    d.mkdir()
    (d / "app.properties").write_text("color=blue\n")
    (d / "ui.ini").write_text("[ui]\ntheme=dark\n")
    (tmp_path / "single.txt").write_text("just one\n")
    try:
        assert kc("create", "configmap", "crt-dir", f"--from-file={d}").strip() == "configmap/crt-dir created"
        assert kc.json("cm", "crt-dir")["data"] == {"app.properties": "color=blue\n", "ui.ini": "[ui]\ntheme=dark\n"}
        kc("create", "configmap", "crt-file", f"--from-file={tmp_path / 'single.txt'}",
           f"--from-file=renamed={tmp_path / 'single.txt'}", "--from-literal=k1=v1", "--from-literal=k2=a=b")
        assert kc.json("cm", "crt-file")["data"] == {"single.txt": "just one\n", "renamed": "just one\n",
                                                     "k1": "v1", "k2": "a=b"}
        out = kc("get", "cm", "crt-dir", "crt-file")
        assert columns(out.splitlines()[0]) == ["NAME", "DATA", "AGE"]
        assert [line.split()[:2] for line in out.splitlines()[1:]] == [["crt-dir", "2"], ["crt-file", "4"]]
        assert 'configmaps "crt-dir" already exists' in kc("create", "configmap", "crt-dir", "--from-literal=a=b", check=False)
    finally:
        kc("delete", "cm", "crt-dir", "crt-file", "--ignore-not-found")


def test_create_secret_generic(kc: Kubectl) -> None:
    try:
        out = kc("create", "secret", "generic", "crt-sec", "--from-literal=user=admin", "--from-literal=pw=s3 cr=t!")
        assert out.strip() == "secret/crt-sec created"
        assert base64.b64decode(kc("get", "secret", "crt-sec", "-o", "jsonpath={.data.pw}")) == b"s3 cr=t!"
        assert kc("get", "secret", "crt-sec", "-o", "go-template={{.data.user | base64decode}}") == "admin"
        row = kc("get", "secret", "crt-sec")
        assert columns(row.splitlines()[0]) == ["NAME", "TYPE", "DATA", "AGE"]
        assert row.splitlines()[1].split()[:3] == ["crt-sec", "Opaque", "2"]
        desc = kc("describe", "secret", "crt-sec")
        assert re.search(r"^pw:\s+8 bytes$", desc, re.M) and "s3 cr=t" not in desc
    finally:
        kc("delete", "secret", "crt-sec", "--ignore-not-found")


def test_apply_twice_then_prune(kc: Kubectl) -> None:
    try:
        assert kc("apply", "-f", "-", input=deploy("crt-ap", [80, 9090], {"A": "1", "B": "2"})).strip() == \
            "deployment.apps/crt-ap created"
        assert kc("apply", "-f", "-", input=deploy("crt-ap", [80, 9090], {"A": "1", "B": "2"})).strip() == \
            "deployment.apps/crt-ap unchanged"
        kc("label", "deploy", "crt-ap", "extra=kept")  # not in the manifest: apply must not touch it
        kc("patch", "deploy", "crt-ap", "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"main","env":[{"name":"C","value":"live"}]}]}}}}')
        out = kc("apply", "-f", "-", input=deploy("crt-ap", [80], {"A": "9"}))
        assert out.strip() == "deployment.apps/crt-ap configured"
        got = kc.json("deploy", "crt-ap")
        c = got["spec"]["template"]["spec"]["containers"][0]
        assert [p["containerPort"] for p in c["ports"]] == [80]  # 9090 pruned
        assert {e["name"]: e["value"] for e in c["env"]} == {"A": "9", "C": "live"}  # B pruned, C never applied
        assert got["metadata"]["labels"] == {"app": "crt-ap", "extra": "kept"}
        last = json.loads(got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
        assert last["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "9"}]
        diff = subprocess.run(["kubectl", "--cache-dir", kc.m.cache, "-n", NS, "diff", "-f", "-"],
                              input=deploy("crt-ap", [80], {"A": "9"}), capture_output=True, text=True,
                              env=dict(os.environ, KUBECONFIG=kc.m.kubeconfig, HOME=str(kc.m.tmp)), timeout=30)
        assert diff.returncode == 0, diff.stdout + diff.stderr
    finally:
        kc("delete", "deploy", "crt-ap", "--ignore-not-found")


def test_delete_by_label(kc: Kubectl) -> None:
    for i in range(3):
        kc("create", "configmap", f"crt-dl{i}", "--from-literal=a=b")
    kc("label", "cm", "crt-dl0", "crt-dl1", "crt-del=yes")
    try:
        out = kc("delete", "cm", "-l", "crt-del=yes")
        assert sorted(out.splitlines()) == ['configmap "crt-dl0" deleted', 'configmap "crt-dl1" deleted']
        assert kc("get", "cm", "-l", "crt-del", "-o", "name") == ""
        assert kc("get", "cm", "crt-dl2", "-o", "name").strip() == "configmap/crt-dl2"
    finally:
        kc("delete", "cm", "crt-dl0", "crt-dl1", "crt-dl2", "--ignore-not-found")


def test_output_formats(kc: Kubectl) -> None:
    kc("create", "configmap", "crt-out", "--from-literal=k=v1")
    kc("create", "configmap", "crt-out2", "--from-literal=k=v2")
    try:
        y = yaml.safe_load(kc("get", "cm", "crt-out", "-o", "yaml"))
        assert y["kind"] == "ConfigMap" and y["apiVersion"] == "v1" and y["data"] == {"k": "v1"}
        assert y["metadata"]["namespace"] == NS and y["metadata"]["resourceVersion"]
        lst = json.loads(kc("get", "cm", "crt-out", "crt-out2", "-o", "json"))
        assert lst["kind"] == "List" and [i["metadata"]["name"] for i in lst["items"]] == ["crt-out", "crt-out2"]
        assert kc("get", "cm", "crt-out", "crt-out2", "-o", "name").split() == ["configmap/crt-out", "configmap/crt-out2"]
        assert kc("get", "cm", "-o", "jsonpath={range .items[?(@.data.k)]}{.metadata.name}={.data.k}{\"\\n\"}{end}"
                  ).split() == ["crt-out=v1", "crt-out2=v2"]
        cc = kc("get", "cm", "crt-out", "crt-out2", "-o", "custom-columns=NAME:.metadata.name,VALUE:.data.k,NS:.metadata.namespace")
        lines = cc.splitlines()
        assert lines[0].split() == ["NAME", "VALUE", "NS"] and lines[1].split() == ["crt-out", "v1", NS]
        assert lines[2].split() == ["crt-out2", "v2", NS]
        wide = kc("get", "cm", "crt-out", "-o", "wide", "--show-labels")
        assert columns(wide.splitlines()[0]) == ["NAME", "DATA", "AGE", "LABELS"]
        assert kc("get", "cm", "crt-out", "--no-headers").split()[:2] == ["crt-out", "1"]
    finally:
        kc("delete", "cm", "crt-out", "crt-out2")


def test_describe(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=NODE)
    kc("apply", "-f", "-", input=POD)
    kc("apply", "-f", "-", input=SVC)
    kc("apply", "-f", "-", input=deploy("crt-desc", [80], {"A": "1"}))
    kc("create", "configmap", "crt-desc", "--from-literal=greeting=hello")
    try:
        def lines(kind: str, name: str) -> str:
            out = kc("describe", kind, name)
            assert re.search(rf"^Name:\s+{re.escape(name)}$", out, re.M), out
            return out
        pod = lines("pod", "crt-pod")
        for pat in (rf"^Namespace:\s+{NS}$", r"^Status:\s+Pending$", r"^Labels:\s+app=crt-pod$", r"^Containers:$",
                    r"^\s+Image:\s+busybox:1.36$", r"^QoS Class:\s+BestEffort$", r"^Node:\s+<none>$"):
            assert re.search(pat, pod, re.M), (pat, pod)
        node = lines("node", "crt-node")
        for pat in (r"^Roles:\s+<none>$", r"^Unschedulable:\s+true$", r"^Taints:\s+crt=yes:NoSchedule$",
                    r"^Labels:\s+kubernetes.io/hostname=crt-node$", r"^CreationTimestamp:"):
            assert re.search(pat, node, re.M), (pat, node)
        svc = lines("service", "crt-svc")
        for pat in (r"^Type:\s+ClusterIP$", r"^IP:\s+10\.96\.\d+\.\d+$", r"^Port:\s+http\s+80/TCP$",
                    r"^TargetPort:\s+8080/TCP$", r"^Selector:\s+app=crt-pod$", r"^Session Affinity:\s+None$"):
            assert re.search(pat, svc, re.M), (pat, svc)
        settled_row(kc, "deploy", "crt-desc", ["crt-desc", "0/1", "1", "0"])
        dep = lines("deployment", "crt-desc")
        for pat in (r"^Replicas:\s+1 desired \| 1 updated \| 1 total \| 0 available \| 1 unavailable$",
                    r"^NewReplicaSet:\s+crt-desc-[a-z0-9]+ \(1/1 replicas created\)$",
                    r"^\s+Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+"
                    r"Scaled up replica set crt-desc-[a-z0-9]+ from 0 to 1$",
                    r"^StrategyType:\s+RollingUpdate$", r"^RollingUpdateStrategy:\s+25% max unavailable, 25% max surge$",
                    r"^Pod Template:$", r"^Selector:\s+app=crt-desc$"):
            assert re.search(pat, dep, re.M), (pat, dep)
        cm = lines("configmap", "crt-desc")
        assert re.search(r"^Data\n====\ngreeting:\n----\nhello\n", cm, re.M), cm
        ns = kc("describe", "namespace", NS)
        assert re.search(rf"^Name:\s+{NS}$", ns, re.M) and re.search(r"^Status:\s+Active$", ns, re.M), ns
        assert "No resource quota." in ns and "No LimitRange resource." in ns
    finally:
        kc("delete", "pod", "crt-pod", "--ignore-not-found")
        kc("delete", "svc", "crt-svc", "--ignore-not-found")
        kc("delete", "deploy", "crt-desc", "--ignore-not-found")
        kc("delete", "cm", "crt-desc", "--ignore-not-found")
        kc("delete", "node", "crt-node", "--ignore-not-found")


# header text as upstream's printers (pkg/printers/internalversion) print it, multi-word columns kept whole
HEADERS = {
    ("pods",): ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
    ("pods", "-o", "wide"): ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE",
                             "READINESS GATES"],
    ("deploy", "-o", "wide"): ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
    ("rs", "-o", "wide"): ["NAME", "DESIRED", "CURRENT", "READY", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"],
    ("svc",): ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
    ("svc", "-o", "wide"): ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"],
    ("nodes",): ["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
    ("nodes", "-o", "wide"): ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                              "KERNEL-VERSION", "CONTAINER-RUNTIME"],
    ("ns",): ["NAME", "STATUS", "AGE"],
    ("cm",): ["NAME", "DATA", "AGE"],
    ("events",): ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    ("sa",): ["NAME", "SECRETS", "AGE"],
}


def test_headers_match_upstream(kc: Kubectl) -> None:
    kc("apply", "-f", "-", input=NODE)
    kc("apply", "-f", "-", input=POD)
    kc("apply", "-f", "-", input=SVC)
    kc("apply", "-f", "-", input=deploy("crt-hd", [80], {"A": "1"}))
    kc("apply", "-f", "-", input=deploy("crt-hd", [80], {"A": "1"}).replace("kind: Deployment", "kind: ReplicaSet")
       .replace("name: crt-hd", "name: crt-hd-rs").replace("  replicas: 1\n", "  replicas: 0\n"))
    kc("create", "configmap", "crt-hd", "--from-literal=a=b")
    kc("create", "serviceaccount", "crt-hd")
    kc("create", "-f", "-", input=f"""apiVersion: v1
kind: Event
metadata: {{name: crt-ev, namespace: {NS}}}
involvedObject: {{kind: Pod, name: crt-pod, namespace: {NS}}}
reason: CrtTest
message: hello from the test
type: Normal
count: 1
firstTimestamp: "2026-01-01T00:00:00Z"
lastTimestamp: "2026-01-01T00:00:00Z"
""")
    try:
        for args, want in HEADERS.items():
            scope = ("-A",) if args[0] in ("ns", "nodes") else ()
            out = kc("get", *args, *scope)
            assert out and columns(out.splitlines()[0]) == want, (args, out)
            assert_aligned(out)
        node = kc("get", "nodes", "crt-node", "--no-headers").split()
        assert node[:3] == ["crt-node", "Unknown,SchedulingDisabled", "<none>"], node
        ev = kc("get", "events", "--field-selector", "reason=CrtTest").splitlines()
        assert re.split(r"\s{2,}", ev[1].strip())[1:] == ["Normal", "CrtTest", "pod/crt-pod", "hello from the test"]
        pod = kc("get", "pod", "crt-pod", "-o", "wide", "--no-headers").split()
        assert pod[1:4] == ["0/1", "Pending", "0"] and pod[5:] == ["<none>", "<none>", "<none>", "<none>"]
        svc = kc("get", "svc", "crt-svc", "-o", "wide", "--no-headers").split()
        assert svc[1] == "ClusterIP" and svc[3:5] == ["<none>", "80/TCP"] and svc[6] == "app=crt-pod"
    finally:
        kc("delete", "event", "crt-ev", "--ignore-not-found")
        kc("delete", "pod", "crt-pod", "--ignore-not-found")
        kc("delete", "svc", "crt-svc", "--ignore-not-found")
        kc("delete", "deploy", "crt-hd", "--ignore-not-found")
        kc("delete", "rs", "crt-hd-rs", "--ignore-not-found")
        kc("delete", "cm", "crt-hd", "--ignore-not-found")
        kc("delete", "sa", "crt-hd", "--ignore-not-found")
        kc("delete", "node", "crt-node", "--ignore-not-found")
