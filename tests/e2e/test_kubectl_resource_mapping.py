"""The real kubectl on the paths that need `/openapi/v2` and the CRD list:
a kind the server does not serve (unknown, or its group switched off with
`--runtime-config`) fails with upstream's "no matches for kind" error;
a `kind: List` file is validated client-side (kubectl reads the v2 document)
and applied, read, created and deleted item by item; `kubectl get crd` lists
stored CustomResourceDefinitions with upstream's columns, and the custom
resources they define are served until the CRD is deleted.

One `coracle master` (apps/v1 switched off) on a free loopback port, with its
own SQLite file, kubeconfig and kubectl cache in the test's temp dir."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_runtime_config import Master  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")]

FOO = "apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: crt-foo}\nspec: {size: 1}\n"
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata: {name: crt-deploy}
spec:
  selector: {matchLabels: {app: crt}}
  template:
    metadata: {labels: {app: crt}}
    spec: {containers: [{name: main, image: busybox}]}
"""
LIST = """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: crt-list-cm}
  data: {a: "1"}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: Role
  metadata: {name: crt-list-role}
  rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
"""
CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: foos.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: foos, kind: Foo, shortNames: [fo]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    m = Master(tmp_path_factory.mktemp("crt-mapping"), "apps/v1=false", "mapping")
    try:
        yield m
    finally:
        m.stop()


def manifest(m: Master, name: str, text: str) -> str:
    path = m.tmp / name
    path.write_text(text)
    return str(path)


def no_matches(path: str, name: str, kind: str, version: str) -> str:
    """Upstream kubectl's message for a kind discovery does not list."""
    return (f'error: resource mapping not found for name: "{name}" namespace: "" from "{path}": no matches for kind '
            f'"{kind}" in version "{version}"\nensure CRDs are installed first\n')


def test_unknown_kind_is_upstreams_mapping_error(master: Master) -> None:
    path = manifest(master, "foo.yaml", FOO)
    for verb in ("apply", "create"):
        r = master.kubectl(verb, "-f", path)
        assert r.returncode == 1 and r.stderr == no_matches(path, "crt-foo", "Foo", "example.com/v1"), r.stderr


def test_switched_off_group_gives_the_same_error(master: Master) -> None:
    path = manifest(master, "deploy.yaml", DEPLOY)
    r = master.kubectl("apply", "-f", path)
    assert r.returncode == 1 and r.stderr == no_matches(path, "crt-deploy", "Deployment", "apps/v1"), r.stderr


def test_list_applies_reads_and_deletes_item_by_item(master: Master) -> None:
    path = manifest(master, "list.yaml", LIST)
    assert master.ok("apply", "-f", path).splitlines() == [
        "configmap/crt-list-cm created", "role.rbac.authorization.k8s.io/crt-list-role created"]
    assert master.ok("apply", "-f", path).splitlines() == [
        "configmap/crt-list-cm unchanged", "role.rbac.authorization.k8s.io/crt-list-role unchanged"]
    assert master.ok("get", "-f", path, "-o", "name").split() == [
        "configmap/crt-list-cm", "role.rbac.authorization.k8s.io/crt-list-role"]
    rows = master.ok("get", "-f", path).splitlines()
    assert rows[0].split() == ["NAME", "DATA", "AGE"] and rows[1].split()[:2] == ["configmap/crt-list-cm", "1"]
    assert "role.rbac.authorization.k8s.io/crt-list-role" in rows[-1]  # one table per kind, as upstream
    assert "AlreadyExists" in master.fails("create", "-f", path)
    assert master.ok("delete", "-f", path).splitlines() == [
        'configmap "crt-list-cm" deleted', 'role.rbac.authorization.k8s.io "crt-list-role" deleted']
    assert master.fails("get", "-f", path) == (
        '[configmaps "crt-list-cm" not found, roles.rbac.authorization.k8s.io "crt-list-role" not found]\n')
    assert master.ok("create", "-f", path).splitlines() == [
        "configmap/crt-list-cm created", "role.rbac.authorization.k8s.io/crt-list-role created"]
    master.ok("delete", "-f", path)


def test_list_items_are_validated_against_the_v2_schemas(master: Master) -> None:
    bad = LIST.replace('  data: {a: "1"}', '  data: {a: "1"}\n  bogus: 1')
    err = master.fails("apply", "-f", manifest(master, "bad-list.yaml", bad))
    assert 'unknown field "bogus" in io.k8s.api.core.v1.ConfigMap' in err, err
    assert "NotFound" in master.fails("get", "configmap", "crt-list-cm")
    master.ok("apply", "--validate=false", "-f", manifest(master, "bad-list.yaml", bad))
    assert master.ok("get", "configmap", "crt-list-cm", "-o", "jsonpath={.data.a}") == "1"
    master.ok("delete", "-f", manifest(master, "list.yaml", LIST))


def test_crds_are_stored_listed_and_served(master: Master) -> None:
    r = master.kubectl("get", "crd")
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "No resources found\n", r
    path = manifest(master, "crd.yaml", CRD)
    assert master.ok("apply", "-f", path).strip() == "customresourcedefinition.apiextensions.k8s.io/foos.example.com created"
    assert master.ok("apply", "-f", path).strip().endswith("foos.example.com unchanged")
    rows = master.ok("get", "crds").splitlines()
    assert rows[0].split() == ["NAME", "CREATED", "AT"] and rows[1].split()[0] == "foos.example.com"
    assert rows[1].split()[1].endswith("Z")
    cond = master.ok("get", "crd", "foos.example.com", "-o",
                     'jsonpath={.status.conditions[?(@.type=="Established")].status}/{.status.conditions[0].reason}')
    assert cond == "True/NoConflicts"
    assert master.ok("get", "crd", "foos.example.com", "-o", "jsonpath={.spec.names.listKind}") == "FooList"
    # the CRD's kind is served: apply, get with the default columns (and the short name), patch
    foo = manifest(master, "foo.yaml", FOO)
    assert master.ok("apply", "-f", foo).strip() == "foo.example.com/crt-foo created"
    assert master.ok("apply", "-f", foo).strip() == "foo.example.com/crt-foo unchanged"
    rows = master.ok("get", "fo").splitlines()
    assert rows[0].split() == ["NAME", "AGE"] and rows[1].split()[0] == "crt-foo"
    assert "strategic-merge-patch+json is not supported" in master.fails("patch", "foo", "crt-foo", "-p",
                                                                          '{"spec":{"size":2}}')
    master.ok("patch", "foo", "crt-foo", "--type", "merge", "-p", '{"spec":{"size":2}}')
    assert master.ok("get", "foo", "crt-foo", "-o", "jsonpath={.spec.size}") == "2"
    bad = CRD.replace("name: foos.example.com", "name: bars.example.com")
    err = master.fails("apply", "-f", manifest(master, "bad-crd.yaml", bad))
    assert 'metadata.name: Invalid value: "bars.example.com": must be spec.names.plural+"."+spec.group' in err, err
    assert master.ok("delete", "crd", "foos.example.com").strip() == (
        'customresourcedefinition.apiextensions.k8s.io "foos.example.com" deleted')
    assert master.kubectl("get", "crd").stderr == "No resources found\n"
