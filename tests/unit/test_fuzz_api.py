"""Fuzz of the in-process API server: no request may answer 5xx or leak a traceback.

Deterministic (fixed seeds) and bounded (a few thousand requests, well under 30 s).  Every
answer must be a success or a 4xx whose body is a `Status` with that code, and the server must
still answer afterwards.  Inputs: garbage and mistyped bodies (every field of a pod, service,
deployment and configmap given a wrong type), deep nesting, huge strings, unicode and nulls;
label and field selectors, resourceVersions, continue tokens, names, query parameters, patch
types and patch bodies.  A failure prints the request that caused it, so that it becomes a
regression test of its own (tests/unit/test_api_bad_input.py).
"""
from __future__ import annotations

import base64
import copy
import json
import random
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from apiserver_fixture import ServerThread

NS = "fuzz"
SEEDS = (1, 2, 3)
PER_SEED = 900  # requests per seed
JSON_T = "application/json"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml", "application/yaml",
               "application/json", "text/plain", "application/vnd.kubernetes.protobuf", "")

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "a"}, "annotations": {"x": "y"}},
       "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "1"], "args": ["x"],
                                "ports": [{"containerPort": 80, "protocol": "TCP"}], "env": [{"name": "A", "value": "b"}],
                                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "1"}},
                                "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
                "volumes": [{"name": "v", "emptyDir": {}}], "restartPolicy": "Always", "nodeSelector": {"a": "b"},
                "terminationGracePeriodSeconds": 30, "tolerations": [{"key": "k", "operator": "Exists"}]}}
SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP", "name": "h"}],
                    "type": "ClusterIP", "sessionAffinity": "None"}}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "a"}},
                       "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                       "template": {"metadata": {"labels": {"app": "a"}}, "spec": copy.deepcopy(POD["spec"])}}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"},
             "binaryData": {"b": "aGk="}}
WIDGET = {"apiVersion": "fuzz.example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
          "spec": {"size": 3, "tags": ["a"], "nested": {"k": "v"}}}  # a custom resource keeping any field
WIDGET_CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
              "metadata": {"name": "widgets.fuzz.example.com"},
              "spec": {"group": "fuzz.example.com", "scope": "Namespaced",
                       "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                       "versions": [{"name": "v1", "served": True, "storage": True,
                                     "subresources": {"status": {}},
                                     "schema": {"openAPIV3Schema": {"type": "object",
                                                                    "x-kubernetes-preserve-unknown-fields": True}}}]}}
KINDS = {"/api/v1/namespaces/fuzz/pods": POD, "/api/v1/namespaces/fuzz/services": SERVICE,
         "/apis/apps/v1/namespaces/fuzz/deployments": DEPLOYMENT, "/api/v1/namespaces/fuzz/configmaps": CONFIGMAP,
         "/apis/fuzz.example.com/v1/namespaces/fuzz/widgets": WIDGET}
OTHER_PATHS = ("/api/v1/pods", "/api/v1/namespaces", "/api/v1/nodes", "/apis/apps/v1/deployments",
               "/api/v1/namespaces/fuzz/events", "/apis/rbac.authorization.k8s.io/v1/clusterroles",
               "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "/api/v1/namespaces/fuzz/secrets",
               "/api/v1/namespaces/fuzz/serviceaccounts", "/api/v1/namespaces/fuzz/replicationcontrollers",
               "/apis/coordination.k8s.io/v1/namespaces/fuzz/leases")
SUBS = ("status", "scale", "binding", "log", "exec", "attach", "portforward", "proxy", "token", "finalize",
        "eviction", "ephemeralcontainers", "nope")
WEIRD = ("", " ", "%2E%2E", "a.", "-", "a" * 300, "ü", "日本", "\x00", "%00", "a/b", "a%2Fb", "A", "a..b", "-a", "a-",
         "null", "true", "0", "1e9", "💥", "a b", "a\tb", "x" * 64, "default", "kube-system", NS)


def scalars(r: random.Random) -> Any:
    return r.choice([None, True, False, 0, -1, 1, 2**63, -(2**64), 1.5, float("1e308"), "", "x", "ü💥", "0",
                     "true", "null", "-1", " ", "a" * r.choice((10, 1000, 70000)), [], {}, [None], {"": None},
                     {"a": [1, {"b": None}]}, "\u0000", "\ud7ff", "10Gi", "-5m", "1e3", "NaN"])


def mutate(r: random.Random, obj: Any, depth: int = 0) -> Any:
    """`obj` with one value somewhere replaced by something of the wrong type (or removed)."""
    if isinstance(obj, dict) and obj and (depth == 0 or r.random() < 0.8):
        k = r.choice(list(obj))
        out = dict(obj)
        roll = r.random()
        if roll < 0.1:
            del out[k]
        elif roll < 0.6:
            out[k] = scalars(r)
        else:
            out[k] = mutate(r, obj[k], depth + 1)
        if r.random() < 0.05:
            out[r.choice(("", "💥", "spec", "status", "extra" * 20))] = scalars(r)
        return out
    if isinstance(obj, list) and obj and r.random() < 0.8:
        out_l = list(obj)
        i = r.randrange(len(out_l))
        out_l[i] = mutate(r, out_l[i], depth + 1) if r.random() < 0.6 else scalars(r)
        if r.random() < 0.2:
            out_l.append(scalars(r))
        return out_l
    return scalars(r)


def nested(depth: int, opener: str = "[", closer: str = "]") -> bytes:
    return (opener * depth + closer * depth).encode()


def nested_dict(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


def body_for(r: random.Random, template: dict[str, Any], name: str) -> tuple[bytes, str]:
    roll = r.random()
    if roll < 0.03:
        return nested(r.choice((100_000, 5_000, 2_000, 990, 500))), JSON_T
    if roll < 0.06:
        doc = copy.deepcopy(template)
        doc["metadata"]["name"] = name
        doc["metadata"]["annotations"] = {"deep": None}
        doc["deep"] = None  # an unknown field: dropped from built-in kinds, kept in a Widget
        raw = json.dumps(doc).encode()
        depth = r.choice((100_000, 3_000, 990, 400, 260, 240, 190))
        return raw.replace(b'"deep": null', b'"deep": ' + nested_dict(depth)), JSON_T
    if roll < 0.08:
        size = r.choice((1_600_000, 3_200_000, 20 * 1024 * 1024))
        doc = copy.deepcopy(template)
        doc["metadata"]["name"] = name
        doc["metadata"]["annotations"] = {"big": "x" * size}
        return json.dumps(doc).encode(), JSON_T
    if roll < 0.14:
        return r.choice([b"", b"{", b"}", b"[]", b"null", b"1", b'"s"', b"\xff\xfe", b"{\"a\":}", b"{'a': 1}",
                         b"\x00" * 10, b"NaN", b"[1,2", b'{"metadata": null}', b'{"metadata": []}',
                         b'{"kind": 1}', b'{"apiVersion": {}}', b'{"metadata": {"name": 5}}',
                         b'{"metadata": {"name": "x", "labels": []}}', bytes(r.randrange(256) for _ in range(64)),
                         b"- a\n- b", b"a: &a [*a]", b"!!python/object:os.system 1", b"{{{{",
                         b'{"metadata":{"name":"x"}}' * 3]), r.choice((JSON_T, "application/yaml"))
    doc = copy.deepcopy(template)
    doc["metadata"]["name"] = name
    for _ in range(r.choice((1, 1, 2, 4))):
        part = r.choice(("spec", "data", "metadata", ""))
        if part in doc and r.random() < 0.7:
            doc[part] = mutate(r, doc[part])  # a wrong type deep inside an otherwise valid object
        else:
            doc = mutate(r, doc)
    if r.random() < 0.2:
        import yaml
        return yaml.safe_dump(doc).encode(), "application/yaml"
    return json.dumps(doc).encode(), JSON_T


def patch_body(r: random.Random, template: dict[str, Any], ctype: str) -> bytes:
    if ctype == "application/json-patch+json":
        ops = []
        for _ in range(r.randrange(1, 4)):
            op = {"op": r.choice(("add", "remove", "replace", "move", "copy", "test", "bogus", None)),
                  "path": r.choice(("/metadata/labels/x", "/spec", "/spec/containers/0", "/spec/containers/-",
                                    "/spec/containers/99", "", "/", "x", "/metadata/name", "/~2", "/a~1b",
                                    "/spec/replicas", "/status", None, 5)),
                  "value": scalars(r), "from": r.choice(("/spec", "/metadata/labels", "", None, "/x/y"))}
            ops.append({k: v for k, v in op.items() if r.random() < 0.9})
        return json.dumps(ops if r.random() < 0.9 else scalars(r)).encode()
    if r.random() < 0.15:
        return json.dumps(scalars(r)).encode()
    doc = mutate(r, copy.deepcopy(template))
    if ctype == "application/strategic-merge-patch+json" and r.random() < 0.4:
        doc.setdefault("spec", {}) if isinstance(doc.get("spec", {}), dict) else None
        doc["$patch"] = r.choice(("delete", "replace", "merge", "bogus", 1))
        doc["$setElementOrder/containers"] = scalars(r)
        doc["$retainKeys"] = scalars(r)
    return json.dumps(doc).encode()


def continue_token(r: random.Random) -> str:
    raw = r.choice([b"", b"x", b"{}", b'{"start": 1, "rv": "x"}', b'{"start": "/registry/core/pods/fuzz/", "rv": 1}',
                    b'{"start": "/registry/other/", "rv": 99999999}', b'{"start": "/registry/core/pods/fuzz/p", "rv": -1}',
                    b"[]", b"null", b'{"start": "/registry/core/pods/fuzz/", "rv": 1e400}',
                    b'{"start": "/registry/core/pods/fuzz/", "rv": 99999999999999999999999}'])
    return r.choice([base64.urlsafe_b64encode(raw).decode(), raw.decode(errors="replace"), "%%%", "a" * 1000, "==="])


def params(r: random.Random) -> dict[str, str]:
    p: dict[str, str] = {}
    choices = {
        "labelSelector": ("a=b", "a in (b,c)", "a notin (", "!a", "a", "a==b", "a=b,c!=d", "=", "a=(b", "a in ()",
                          "a!", ",", "a=" + "b" * 100, "ü=x", "a in (b", "x,,y", "a>1", "a<", "a=b=c", "  "),
        "fieldSelector": ("metadata.name=p", "metadata.name!=x", "spec.nodeName=", "status.phase=Running", "a=b",
                          "metadata.namespace==fuzz", "=", "metadata.name", "metadata.name=a,b", "!x", "x in (a)",
                          "metadata.name=\\", "spec.nodeName=a\\,b"),
        "resourceVersion": ("", "0", "1", "-1", "abc", "99999999999", "1e3", "9" * 40, " 1", "v1", "0x10"),
        "resourceVersionMatch": ("", "Exact", "NotOlderThan", "bogus"),
        "limit": ("0", "1", "-1", "x", "500", "9" * 30, "1.5"),
        "watch": ("true", "True", "1", "false", "0", "t", "F", "yes", "", "TRUE", "bogus"),
        "allowWatchBookmarks": ("true", "x", "True", "0"),
        "sendInitialEvents": ("true", "false", "x"),
        "timeoutSeconds": ("0", "1", "x", "-1"),
        "gracePeriodSeconds": ("0", "1", "-1", "x", "9" * 30, "30"),
        "propagationPolicy": ("Foreground", "Background", "Orphan", "x", ""),
        "orphanDependents": ("true", "false", "x", "1"),
        "dryRun": ("All", "x", ""),
        "fieldManager": ("m", "x" * 200, "", "ü"),
        "fieldValidation": ("Strict", "Warn", "Ignore", "bogus", ""),
        "force": ("true", "false", "x", "1"),
        "pretty": ("true", "x", "1"),
        "includeObject": ("None", "Object", "Metadata", "x"),
        "stdout": ("True", "x"), "follow": ("true", "x"), "container": ("c", "x"), "tailLines": ("x", "-1"),
    }
    for k in r.sample(sorted(choices), r.randrange(0, 5)):
        p[k] = r.choice(choices[k])
    if r.random() < 0.15:
        p["continue"] = continue_token(r)
    if p.get("watch") is not None:
        p["timeoutSeconds"] = r.choice(("0", "1", "x"))  # a watch that parses ends at once
    return p


def one_request(r: random.Random) -> tuple[str, str, dict[str, str], bytes, dict[str, str]]:
    if r.random() < 0.12:
        path = r.choice(OTHER_PATHS)
        template = CONFIGMAP
    else:
        path = r.choice(sorted(KINDS))
        template = KINDS[path]
    roll = r.random()
    if roll < 0.55:
        name = template["metadata"]["name"]  # the object the fixture keeps in place
    elif roll < 0.75:
        name = "fresh-" + str(r.randrange(10**6))
    else:
        name = r.choice(WEIRD)
    headers: dict[str, str] = {}
    if r.random() < 0.1:
        headers["Accept"] = r.choice(("application/json;as=Table;v=v1;g=meta.k8s.io", "application/yaml",
                                      "application/vnd.kubernetes.protobuf", "*/*", "text/html", "x"))
    method = r.choice(("GET", "GET", "POST", "POST", "PUT", "PATCH", "PATCH", "DELETE"))
    url = path
    if method != "POST" or r.random() < 0.1:
        url += "/" + quote(name, safe="/%:")
        if r.random() < 0.15:
            url += "/" + r.choice(SUBS)
    body = b""
    if method in ("POST", "PUT"):
        body, headers["Content-Type"] = body_for(r, template, name)
    elif method == "PATCH":
        ctype = r.choice(PATCH_TYPES[:4] * 3 + PATCH_TYPES[4:])
        headers["Content-Type"] = ctype
        body = patch_body(r, template, ctype) if r.random() > 0.05 else body_for(r, template, name)[0]
    elif method == "DELETE" and r.random() < 0.3:
        headers["Content-Type"] = JSON_T
        body = json.dumps(r.choice([{"gracePeriodSeconds": scalars(r)}, {"propagationPolicy": scalars(r)},
                                    {"preconditions": scalars(r)}, {"preconditions": {"uid": scalars(r)}},
                                    {"orphanDependents": scalars(r)}, {"dryRun": scalars(r)}, scalars(r)])).encode()
    return method, url, params(r), body, headers


def restore(c: httpx.Client) -> None:
    """Put the fixture's objects back (deleted or changed by the run) so most requests reach them."""
    c.post("/api/v1/namespaces", json={"metadata": {"name": NS}})
    if c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=WIDGET_CRD).status_code == 201:
        deadline = time.monotonic() + 10
        while c.get("/apis/fuzz.example.com/v1/namespaces/fuzz/widgets").status_code != 200:
            assert time.monotonic() < deadline, "the fuzz CRD is not served"
            time.sleep(0.05)
    for path, template in KINDS.items():
        name = template["metadata"]["name"]
        c.delete(f"{path}/{name}", params={"gracePeriodSeconds": "0"})
        c.patch(f"{path}/{name}", json={"metadata": {"finalizers": None}},
                headers={"Content-Type": "application/merge-patch+json"})
        resp = c.post(path, json=template)
        assert resp.status_code in (201, 409), (path, resp.text)


@pytest.fixture(scope="module")
def http(srv: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        restore(c)
        yield c


def check(resp: httpx.Response, what: str) -> None:
    if resp.status_code == 504 and "ResourceVersionTooLarge" in resp.text:
        return  # upstream's answer to a resourceVersion from the future, which reflectors act on: kept
    assert resp.status_code < 500, f"{what} answered {resp.status_code}: {resp.text[:500]}"
    if resp.status_code >= 400:
        status = resp.json()
        assert status.get("kind") == "Status" and status.get("code") == resp.status_code, (what, resp.text[:300])
        assert "Traceback" not in resp.text, what


@pytest.mark.parametrize("seed", SEEDS)
def test_no_request_answers_5xx(http: httpx.Client, seed: int) -> None:
    r = random.Random(seed)
    start = time.monotonic()
    for i in range(PER_SEED):
        if i % 50 == 0:
            restore(http)
        method, url, q, body, headers = one_request(r)
        if method == "DELETE" and url.strip("/").split("/")[:3] == ["api", "v1", "namespaces"] and url.count("/") <= 4:
            continue  # the namespace the run works in (and the collection of namespaces)
        what = f"seed {seed} #{i}: {method} {url} {q} {headers} {body[:200]!r}"
        resp = http.request(method, url, params=q, content=body, headers=headers)
        check(resp, what)
    assert time.monotonic() - start < 20, "the fuzz run must stay short"
    assert http.get("/api/v1/namespaces/default").status_code == 200  # the server still answers
    for path in KINDS:  # and every collection the run wrote to can still be listed and watched
        check(http.get(path), f"LIST {path} after seed {seed}")
        check(http.get(path, params={"watch": "1", "timeoutSeconds": "0"}), f"WATCH {path} after seed {seed}")
