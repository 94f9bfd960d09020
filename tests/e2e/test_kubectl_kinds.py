"""The real kubectl against a real `coracle master` for every issue-3 kind:
api-resources (short names, scope, groups), `get all`, one object of each kind
created with `kubectl create -f`, listed with upstream's columns, and deleted;
ClusterIP/NodePort allocation seen from kubectl; the default `kubernetes`
Service."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_kubectl_master import Master  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]

TEMPLATE = """
    metadata: {labels: {app: crt-web}}
    spec: {containers: [{name: main, image: busybox, command: [sleep, "3600"]}]}"""

MANIFESTS = {
    "svc": "apiVersion: v1\nkind: Service\nmetadata: {name: crt-svc}\nspec:\n  type: NodePort\n  selector: {app: crt-web}\n  ports: [{port: 80, targetPort: 8080}]\n",
    "deploy": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: crt-deploy}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: crt-web}}\n  template:" + TEMPLATE + "\n",
    "rs": "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: crt-rs}\nspec:\n  selector: {matchLabels: {app: crt-web}}\n  template:" + TEMPLATE + "\n",
    "rc": "apiVersion: v1\nkind: ReplicationController\nmetadata: {name: crt-rc}\nspec:\n  template:" + TEMPLATE + "\n",
    "cm": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: crt-cm}\ndata: {a: '1', b: '2'}\n",
    "secret": "apiVersion: v1\nkind: Secret\nmetadata: {name: crt-secret}\nstringData: {password: hunter2}\n",
    "sa": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: crt-sa}\n",
    "ing": "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: crt-ing}\nspec:\n  rules:\n  - host: crt.example\n    http:\n      paths:\n      - {path: /, pathType: Prefix, backend: {service: {name: crt-svc, port: {number: 80}}}}\n",
    "hpa": "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: crt-hpa}\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: crt-deploy}\n  minReplicas: 1\n  maxReplicas: 4\n",
    "pv": "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: crt-pv}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  hostPath: {path: /tmp/crt-pv}\n",
    "pvc": "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: crt-pvc}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n",
    "quota": "apiVersion: v1\nkind: ResourceQuota\nmetadata: {name: crt-quota}\nspec: {hard: {pods: '10'}}\n",
    "limits": "apiVersion: v1\nkind: LimitRange\nmetadata: {name: crt-limits}\nspec:\n  limits: [{type: Container, default: {cpu: 500m}}]\n",
    "roles": "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: crt-role}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get, list]}]\n",
    "rolebindings": "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: crt-rb}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: crt-role}\nsubjects: [{kind: ServiceAccount, name: crt-sa}]\n",
    "clusterroles": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'crt:reader'}\nrules: [{nonResourceURLs: [/healthz], verbs: [get]}]\n",
    "clusterrolebindings": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: crt-crb}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'crt:reader'}\nsubjects: [{kind: User, name: crt-alice, apiGroup: rbac.authorization.k8s.io}]\n",
    "leases": "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: crt-lease}\nspec: {holderIdentity: crt-holder, leaseDurationSeconds: 15}\n",
    "endpoints": "apiVersion: v1\nkind: Endpoints\nmetadata: {name: crt-ep}\nsubsets: [{addresses: [{ip: 10.250.3.2}], ports: [{port: 8080}]}]\n",
    "endpointslices": "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: crt-eps}\naddressType: IPv4\nendpoints: [{addresses: [10.250.3.2]}]\nports: [{port: 8080}]\n",
}

HEADERS = {
    "svc": ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"],
    "deploy": ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
    "rs": ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
    "rc": ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
    "cm": ["NAME", "DATA", "AGE"],
    "secret": ["NAME", "TYPE", "DATA", "AGE"],
    "sa": ["NAME", "SECRETS", "AGE"],
    "ing": ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"],
    "hpa": ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"],
    "pv": ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM", "STORAGECLASS",
           "VOLUMEATTRIBUTESCLASS", "REASON", "AGE"],
    "pvc": ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE"],
    "quota": ["NAME", "AGE", "REQUEST", "LIMIT"],
    "limits": ["NAME", "CREATED", "AT"],
    "roles": ["NAME", "CREATED", "AT"],
    "rolebindings": ["NAME", "ROLE", "AGE"],
    "clusterroles": ["NAME", "CREATED", "AT"],
    "clusterrolebindings": ["NAME", "ROLE", "AGE"],
    "leases": ["NAME", "HOLDER", "AGE"],
    "endpoints": ["NAME", "ENDPOINTS", "AGE"],
    "endpointslices": ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"],
}
CLUSTER_SCOPED = {"pv", "clusterroles", "clusterrolebindings"}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("crt-kinds"))
    stopped = False
    try:
        yield m
        rc = m.stop()
        stopped = True
        assert rc == 0, (m.tmp / "master.log").read_text()
    finally:
        if not stopped:
            m.stop()


def ok(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 0, f"rc={r.returncode}\nstdout={r.stdout}\nstderr={r.stderr}"
    return r.stdout


def test_api_resources(master: Master) -> None:
    by_name: dict[str, list[list[str]]] = {}
    for line in ok(master.kubectl("api-resources", "--no-headers")).splitlines():
        cells = line.split()
        by_name.setdefault(cells[0], []).append(cells)
    short = {"services": "svc", "deployments": "deploy", "replicasets": "rs", "replicationcontrollers": "rc",
             "configmaps": "cm", "serviceaccounts": "sa", "ingresses": "ing", "horizontalpodautoscalers": "hpa",
             "persistentvolumes": "pv", "persistentvolumeclaims": "pvc", "resourcequotas": "quota",
             "limitranges": "limits", "endpoints": "ep"}
    for name, sn in short.items():
        assert sn in by_name[name][0], by_name[name]
    for name in ("secrets", "roles", "rolebindings", "clusterroles", "clusterrolebindings", "leases", "endpointslices"):
        assert len(by_name[name][0]) == 5 - 1, by_name[name]  # NAME APIVERSION NAMESPACED KIND: no short names
    assert by_name["horizontalpodautoscalers"][0][2] == "autoscaling/v2"
    assert by_name["clusterroles"][0][1:] == ["rbac.authorization.k8s.io/v1", "false", "ClusterRole"]
    assert by_name["persistentvolumes"][0][3] == "false" and by_name["persistentvolumeclaims"][0][3] == "true"
    assert by_name["events"][0][1] == "ev" and any("events.k8s.io/v1" in r for r in by_name["events"])
    assert ok(master.kubectl("api-resources", "--categories=all", "-o", "name")).split() == [
        "pods", "replicationcontrollers", "services", "deployments.apps", "replicasets.apps",
        "horizontalpodautoscalers.autoscaling"]


def test_default_kubernetes_service(master: Master) -> None:
    out = ok(master.kubectl("get", "svc", "kubernetes", "-n", "default"))
    assert out.splitlines()[1].split()[:5] == ["kubernetes", "ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    ep = ok(master.kubectl("get", "endpoints", "kubernetes", "-n", "default", "--no-headers")).split()
    assert ep[1] == f"127.0.0.1:{master.port}"
    sl = ok(master.kubectl("get", "endpointslices", "kubernetes", "-n", "default", "--no-headers")).split()
    assert sl[1:4] == ["IPv4", str(master.port), "127.0.0.1"], sl


def test_create_get_delete_every_kind(master: Master) -> None:
    for manifest in MANIFESTS.values():
        ok(master.kubectl("create", "-f", "-", input=manifest))
    try:
        for short, header in HEADERS.items():
            out = ok(master.kubectl("get", short) if short in CLUSTER_SCOPED else master.kubectl("get", short, "-n", "default"))
            lines = out.splitlines()
            assert lines[0].split() == header, (short, lines[0])
            assert any(line.split()[0].startswith("crt") for line in lines[1:]), (short, out)
        svc = ok(master.kubectl("get", "svc", "crt-svc", "--no-headers")).split()
        assert svc[1] == "NodePort" and svc[2].startswith("10.96.") and svc[2] not in ("10.96.0.1", "10.96.0.10")
        port = int(svc[4].split(":")[1].split("/")[0])
        assert 30000 <= port <= 32767 and svc[4] == f"80:{port}/TCP"
        wide = ok(master.kubectl("get", "deploy", "crt-deploy", "-o", "wide")).splitlines()
        assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
        assert wide[1].split()[1] == "0/2" and wide[1].split()[-3:] == ["main", "busybox", "app=crt-web"]
        assert ok(master.kubectl("get", "hpa", "crt-hpa", "--no-headers")).split()[1:6] == [
            "Deployment/crt-deploy", "cpu:", "<unknown>/80%", "1", "4"]
        assert ok(master.kubectl("get", "horizontalpodautoscalers.v1.autoscaling", "crt-hpa", "-o", "jsonpath={.spec.targetCPUUtilizationPercentage}")) == "80"
        assert ok(master.kubectl("get", "secret", "crt-secret", "-o", "jsonpath={.data.password}")) == "aHVudGVyMg=="
        assert ok(master.kubectl("get", "leases", "--no-headers")).split()[:2] == ["crt-lease", "crt-holder"]
        assert ok(master.kubectl("get", "endpointslices", "--no-headers")).split()[:4] == ["crt-eps", "IPv4", "8080", "10.250.3.2"]
        all_out = ok(master.kubectl("get", "all"))
        for name in ("service/crt-svc", "service/kubernetes", "deployment.apps/crt-deploy", "replicaset.apps/crt-rs",
                     "replicationcontroller/crt-rc", "horizontalpodautoscaler.autoscaling/crt-hpa"):
            assert name in all_out, all_out
        multi = ok(master.kubectl("get", "svc,deploy,rs,cm,secret,sa,ing,hpa,pv,pvc,quota,limits,roles,rolebindings,"
                                  "clusterroles,clusterrolebindings,leases,endpoints,endpointslices", "-A"))
        for name in ("service/crt-svc", "configmap/crt-cm", "secret/crt-secret", "serviceaccount/crt-sa",
                     "ingress.networking.k8s.io/crt-ing", "persistentvolume/crt-pv", "persistentvolumeclaim/crt-pvc",
                     "resourcequota/crt-quota", "limitrange/crt-limits", "role.rbac.authorization.k8s.io/crt-role",
                     "clusterrole.rbac.authorization.k8s.io/crt:reader", "lease.coordination.k8s.io/crt-lease",
                     "endpoints/crt-ep", "endpointslice.discovery.k8s.io/crt-eps"):
            assert name in multi, name
        bad = master.kubectl("create", "-f", "-", input=MANIFESTS["svc"].replace("crt-svc", "crt-svc2").replace(
            "targetPort: 8080", f"targetPort: 8080, nodePort: {port}"))
        assert bad.returncode != 0 and "provided port is already allocated" in bad.stderr
    finally:
        for manifest in MANIFESTS.values():
            master.kubectl("delete", "-f", "-", "--wait=false", input=manifest)
    for short in HEADERS:
        out = ok(master.kubectl("get", short, "-A", "--no-headers"))
        assert not [line for line in out.splitlines() if "crt" in line], (short, out)
    # the NodePort is free again
    again = MANIFESTS["svc"].replace("targetPort: 8080", f"targetPort: 8080, nodePort: {port}")
    ok(master.kubectl("create", "-f", "-", input=again))
    ok(master.kubectl("delete", "svc", "crt-svc"))
