"""Kubernetes-protobuf request bodies (`application/vnd.kubernetes.protobuf`)
turned into the JSON dicts the rest of the API server uses.

kubectl's typed generators (`create configmap|secret|namespace|deployment|
service|quota|role|rolebinding|clusterrole|clusterrolebinding|serviceaccount|
job|cronjob|ingress|poddisruptionbudget|priorityclass`, `autoscale`) POST
their object as the `k8s\\0` magic followed by a `runtime.Unknown` envelope:
1 TypeMeta{1 apiVersion, 2 kind}, 2 raw (the object's own message),
3 contentEncoding, 4 contentType.  `decode_body` reads the envelope, looks the
kind up in `KINDS` and walks the object with the field tables below.

Field tables follow Kubernetes' `generated.proto` numbering.  Each message is
one line of `number name[:type]` entries; a type is `s` string (default),
`i` integer, `b` bool, `y` bytes (base64 in JSON), `map` map<string,string>,
`ymap` map<string,bytes>, `qmap` map<string,Quantity>, `q` Quantity, `time`,
`intstr`, or a message name.  `*` before the type: repeated; `!` after it:
keep the zero value (a Go pointer or a field without omitempty); `^` after a
message type: its fields are inlined into the parent (embedded Go structs).
Go's marshaller writes every non-pointer field, so other zero values are
dropped, as Go's `omitempty` JSON would.  Unknown fields are skipped, as
protobuf readers do.  Neighbours: `app._body` calls `decode_body`; responses
stay JSON.
"""
from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    """The body is not a well-formed Kubernetes-protobuf object."""


class UnknownKind(ProtobufError):
    """Well-formed, but of a kind this server has no field table for."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: str            # scalar code or message name
    repeated: bool = False
    keep: bool = False   # keep zero values
    inline: bool = False


_MESSAGES_SRC: dict[str, str] = {
    # meta/v1, runtime, intstr
    "TypeMeta": "1 apiVersion; 2 kind",
    "ObjectMeta": "1 name; 2 generateName; 3 namespace; 4 selfLink; 5 uid; 6 resourceVersion; 7 generation:i; "
                  "8 creationTimestamp:time; 9 deletionTimestamp:time; 10 deletionGracePeriodSeconds:i!; "
                  "11 labels:map; 12 annotations:map; 13 ownerReferences:*OwnerReference; 14 finalizers:*s",
    "OwnerReference": "5 apiVersion!; 1 kind!; 3 name!; 4 uid!; 6 controller:b!; 7 blockOwnerDeletion:b!",
    "LabelSelector": "1 matchLabels:map; 2 matchExpressions:*LabelSelectorRequirement",
    "LabelSelectorRequirement": "1 key!; 2 operator!; 3 values:*s",
    # core/v1: pods
    "PodTemplateSpec": "1 metadata:ObjectMeta; 2 spec:PodSpec",
    "PodSpec": "1 volumes:*Volume; 20 initContainers:*Container; 2 containers:*Container; 3 restartPolicy; "
               "4 terminationGracePeriodSeconds:i!; 5 activeDeadlineSeconds:i!; 6 dnsPolicy; 7 nodeSelector:map; "
               "8 serviceAccountName; 9 serviceAccount; 21 automountServiceAccountToken:b!; 10 nodeName; "
               "11 hostNetwork:b; 12 hostPID:b; 13 hostIPC:b; 27 shareProcessNamespace:b!; "
               "15 imagePullSecrets:*LocalObjectReference; 16 hostname; 17 subdomain; 19 schedulerName; "
               "22 tolerations:*Toleration; 24 priorityClassName; 25 priority:i!; 30 enableServiceLinks:b!",
    "Container": "1 name!; 2 image; 3 command:*s; 4 args:*s; 5 workingDir; 6 ports:*ContainerPort; "
                 "19 envFrom:*EnvFromSource; 7 env:*EnvVar; 8 resources:ResourceRequirements; "
                 "9 volumeMounts:*VolumeMount; 13 terminationMessagePath; 20 terminationMessagePolicy; "
                 "14 imagePullPolicy; 16 stdin:b; 17 stdinOnce:b; 18 tty:b",
    "ContainerPort": "1 name; 2 hostPort:i; 3 containerPort:i!; 4 protocol; 5 hostIP",
    "EnvVar": "1 name!; 2 value; 3 valueFrom:EnvVarSource",
    "EnvVarSource": "1 fieldRef:ObjectFieldSelector; 2 resourceFieldRef:ResourceFieldSelector; "
                    "3 configMapKeyRef:KeySelector; 4 secretKeyRef:KeySelector",
    "ObjectFieldSelector": "1 apiVersion; 2 fieldPath!",
    "ResourceFieldSelector": "1 containerName; 2 resource!; 3 divisor:q",
    "KeySelector": "1 ref:LocalObjectReference^; 2 key!; 3 optional:b!",
    "EnvFromSource": "1 prefix; 2 configMapRef:EnvSource; 3 secretRef:EnvSource",
    "EnvSource": "1 ref:LocalObjectReference^; 2 optional:b!",
    "LocalObjectReference": "1 name",
    "ResourceRequirements": "1 limits:qmap; 2 requests:qmap",
    "VolumeMount": "1 name!; 2 readOnly:b; 3 mountPath!; 4 subPath; 5 mountPropagation!; 6 subPathExpr",
    "Volume": "1 name!; 2 source:VolumeSource^",
    "VolumeSource": "1 hostPath:HostPathVolumeSource; 2 emptyDir:EmptyDirVolumeSource; 6 secret:SecretVolumeSource; "
                    "10 persistentVolumeClaim:PVCVolumeSource; 19 configMap:ConfigMapVolumeSource",
    "HostPathVolumeSource": "1 path!; 2 type!",
    "EmptyDirVolumeSource": "1 medium; 2 sizeLimit:q",
    "SecretVolumeSource": "1 secretName; 2 items:*KeyToPath; 3 defaultMode:i!; 4 optional:b!",
    "ConfigMapVolumeSource": "1 ref:LocalObjectReference^; 2 items:*KeyToPath; 3 defaultMode:i!; 4 optional:b!",
    "PVCVolumeSource": "1 claimName!; 2 readOnly:b",
    "KeyToPath": "1 key!; 2 path!; 3 mode:i!",
    "Toleration": "1 key; 2 operator; 3 value; 4 effect; 5 tolerationSeconds:i!",
    "ObjectReference": "1 kind; 2 namespace; 3 name; 4 uid; 5 apiVersion; 6 resourceVersion; 7 fieldPath",
    # core/v1: the generators' kinds
    "ConfigMap": "1 metadata:ObjectMeta; 4 immutable:b!; 2 data:map; 3 binaryData:ymap",
    "Secret": "1 metadata:ObjectMeta; 5 immutable:b!; 2 data:ymap; 4 stringData:map; 3 type",
    "Namespace": "1 metadata:ObjectMeta; 2 spec:NamespaceSpec; 3 status:NamespaceStatus",
    "NamespaceSpec": "1 finalizers:*s",
    "NamespaceStatus": "1 phase",
    "ServiceAccount": "1 metadata:ObjectMeta; 2 secrets:*ObjectReference; "
                      "4 imagePullSecrets:*LocalObjectReference; 3 automountServiceAccountToken:b!",
    "Service": "1 metadata:ObjectMeta; 2 spec:ServiceSpec; 3 status:ServiceStatus",
    "ServiceSpec": "1 ports:*ServicePort; 2 selector:map; 3 clusterIP; 18 clusterIPs:*s; 4 type; 5 externalIPs:*s; "
                   "7 sessionAffinity; 8 loadBalancerIP; 9 loadBalancerSourceRanges:*s; 10 externalName; "
                   "11 externalTrafficPolicy; 12 healthCheckNodePort:i; 13 publishNotReadyAddresses:b; "
                   "19 ipFamilies:*s; 17 ipFamilyPolicy!; 20 allocateLoadBalancerNodePorts:b!; "
                   "21 loadBalancerClass!; 22 internalTrafficPolicy!",
    "ServicePort": "1 name; 2 protocol; 6 appProtocol!; 3 port:i!; 4 targetPort:intstr; 5 nodePort:i",
    "ServiceStatus": "1 loadBalancer:LoadBalancerStatus",
    "LoadBalancerStatus": "1 ingress:*LoadBalancerIngress",
    "LoadBalancerIngress": "1 ip; 2 hostname",
    "ResourceQuota": "1 metadata:ObjectMeta; 2 spec:ResourceQuotaSpec; 3 status:ResourceQuotaStatus",
    "ResourceQuotaSpec": "1 hard:qmap; 2 scopes:*s; 3 scopeSelector:ScopeSelector",
    "ScopeSelector": "1 matchExpressions:*ScopedResourceSelectorRequirement",
    "ScopedResourceSelectorRequirement": "1 scopeName!; 2 operator!; 3 values:*s",
    "ResourceQuotaStatus": "1 hard:qmap; 2 used:qmap",
    # apps/v1
    "Deployment": "1 metadata:ObjectMeta; 2 spec:DeploymentSpec; 3 status:DeploymentStatus",
    "DeploymentSpec": "1 replicas:i!; 2 selector:LabelSelector; 3 template:PodTemplateSpec; "
                      "4 strategy:DeploymentStrategy; 5 minReadySeconds:i; 6 revisionHistoryLimit:i!; 7 paused:b; "
                      "9 progressDeadlineSeconds:i!",
    "DeploymentStrategy": "1 type; 2 rollingUpdate:RollingUpdateDeployment",
    "RollingUpdateDeployment": "1 maxUnavailable:intstr; 2 maxSurge:intstr",
    "DeploymentStatus": "1 observedGeneration:i; 2 replicas:i; 3 updatedReplicas:i; 7 readyReplicas:i; "
                        "4 availableReplicas:i; 5 unavailableReplicas:i; 8 collisionCount:i!",
    # autoscaling/v1 and v2
    "HPAv1": "1 metadata:ObjectMeta; 2 spec:HPASpecV1; 3 status:HPAStatusV1",
    "HPASpecV1": "1 scaleTargetRef:CrossVersionObjectReference; 2 minReplicas:i!; 3 maxReplicas:i!; "
                 "4 targetCPUUtilizationPercentage:i!",
    "HPAStatusV1": "1 observedGeneration:i!; 2 lastScaleTime:time; 3 currentReplicas:i!; 4 desiredReplicas:i!; "
                   "5 currentCPUUtilizationPercentage:i!",
    "CrossVersionObjectReference": "1 kind!; 2 name!; 3 apiVersion",
    "HPAv2": "1 metadata:ObjectMeta; 2 spec:HPASpecV2; 3 status:HPAStatusV2",
    "HPASpecV2": "1 scaleTargetRef:CrossVersionObjectReference; 2 minReplicas:i!; 3 maxReplicas:i!; "
                 "4 metrics:*MetricSpec; 5 behavior:HPABehavior",
    "HPAStatusV2": "1 observedGeneration:i!; 2 lastScaleTime:time; 3 currentReplicas:i; 4 desiredReplicas:i!",
    "MetricSpec": "1 type!; 2 object:ObjectMetricSource; 3 pods:PodsMetricSource; 4 resource:ResourceMetricSource; "
                  "5 containerResource:ContainerResourceMetricSource; 6 external:ExternalMetricSource",
    "ResourceMetricSource": "1 name!; 2 target:MetricTarget",
    "ContainerResourceMetricSource": "1 name!; 2 target:MetricTarget; 3 container!",
    "PodsMetricSource": "1 metric:MetricIdentifier; 2 target:MetricTarget",
    "ExternalMetricSource": "1 metric:MetricIdentifier; 2 target:MetricTarget",
    "ObjectMetricSource": "1 describedObject:CrossVersionObjectReference; 2 target:MetricTarget; "
                          "3 metric:MetricIdentifier",
    "MetricIdentifier": "1 name!; 2 selector:LabelSelector",
    "MetricTarget": "1 type!; 2 value:q; 3 averageValue:q; 4 averageUtilization:i!",
    "HPABehavior": "1 scaleUp:HPAScalingRules; 2 scaleDown:HPAScalingRules",
    "HPAScalingRules": "3 stabilizationWindowSeconds:i!; 1 selectPolicy!; 2 policies:*HPAScalingPolicy",
    "HPAScalingPolicy": "1 type!; 2 value:i!; 3 periodSeconds:i!",
    # rbac.authorization.k8s.io/v1
    "Role": "1 metadata:ObjectMeta; 2 rules:*PolicyRule",
    "ClusterRole": "1 metadata:ObjectMeta; 2 rules:*PolicyRule; 3 aggregationRule:AggregationRule",
    "AggregationRule": "1 clusterRoleSelectors:*LabelSelector",
    "PolicyRule": "1 verbs:*s; 2 apiGroups:*s; 3 resources:*s; 4 resourceNames:*s; 5 nonResourceURLs:*s",
    "RoleBinding": "1 metadata:ObjectMeta; 2 subjects:*Subject; 3 roleRef:RoleRef",
    "Subject": "1 kind!; 2 apiGroup; 3 name!; 4 namespace",
    "RoleRef": "1 apiGroup!; 2 kind!; 3 name!",
    # batch/v1
    "Job": "1 metadata:ObjectMeta; 2 spec:JobSpec; 3 status:JobStatus",
    "JobSpec": "1 parallelism:i!; 2 completions:i!; 3 activeDeadlineSeconds:i!; 7 backoffLimit:i!; "
               "4 selector:LabelSelector; 5 manualSelector:b!; 6 template:PodTemplateSpec; "
               "8 ttlSecondsAfterFinished:i!; 9 completionMode!; 10 suspend:b!",
    "JobStatus": "2 startTime:time; 3 completionTime:time; 4 active:i; 5 succeeded:i; 6 failed:i; 7 completedIndexes",
    "CronJob": "1 metadata:ObjectMeta; 2 spec:CronJobSpec; 3 status:CronJobStatus",
    "CronJobSpec": "1 schedule!; 8 timeZone!; 2 startingDeadlineSeconds:i!; 3 concurrencyPolicy; 4 suspend:b!; "
                   "5 jobTemplate:JobTemplateSpec; 6 successfulJobsHistoryLimit:i!; 7 failedJobsHistoryLimit:i!",
    "JobTemplateSpec": "1 metadata:ObjectMeta; 2 spec:JobSpec",
    "CronJobStatus": "1 active:*ObjectReference; 4 lastScheduleTime:time; 5 lastSuccessfulTime:time",
    # networking.k8s.io/v1, policy/v1, scheduling.k8s.io/v1
    "Ingress": "1 metadata:ObjectMeta; 2 spec:IngressSpec; 3 status:IngressStatus",
    "IngressSpec": "4 ingressClassName!; 1 defaultBackend:IngressBackend; 2 tls:*IngressTLS; 3 rules:*IngressRule",
    "IngressTLS": "1 hosts:*s; 2 secretName",
    "IngressRule": "1 host; 2 value:IngressRuleValue^",
    "IngressRuleValue": "1 http:HTTPIngressRuleValue",
    "HTTPIngressRuleValue": "1 paths:*HTTPIngressPath",
    "HTTPIngressPath": "1 path; 3 pathType!; 2 backend:IngressBackend",
    "IngressBackend": "4 service:IngressServiceBackend; 3 resource:TypedLocalObjectReference",
    "IngressServiceBackend": "1 name!; 2 port:ServiceBackendPort",
    "ServiceBackendPort": "1 name; 2 number:i",
    "TypedLocalObjectReference": "1 apiGroup!; 2 kind!; 3 name!",
    "IngressStatus": "1 loadBalancer:LoadBalancerStatus",
    "PodDisruptionBudget": "1 metadata:ObjectMeta; 2 spec:PDBSpec; 3 status:PDBStatus",
    "PDBSpec": "1 minAvailable:intstr; 2 selector:LabelSelector; 3 maxUnavailable:intstr; "
               "4 unhealthyPodEvictionPolicy!",
    "PDBStatus": "1 observedGeneration:i; 3 disruptionsAllowed:i!; 4 currentHealthy:i!; 5 desiredHealthy:i!; "
                 "6 expectedPods:i!",
    "PriorityClass": "1 metadata:ObjectMeta; 2 value:i!; 3 globalDefault:b; 4 description; 5 preemptionPolicy!",
    # authentication.k8s.io/v1 (kubectl create token POSTs it to serviceaccounts/NAME/token)
    "TokenRequest": "1 metadata:ObjectMeta; 2 spec:TokenRequestSpec; 3 status:TokenRequestStatus",
    "TokenRequestSpec": "1 audiences:*s; 4 expirationSeconds:i!; 3 boundObjectRef:BoundObjectReference",
    "BoundObjectReference": "1 kind; 2 apiVersion; 3 name; 4 uid",
    "TokenRequestStatus": "1 token; 2 expirationTimestamp:time",
}

# (apiVersion, kind) -> top-level message
KINDS: dict[tuple[str, str], str] = {
    ("v1", k): k for k in ("ConfigMap", "Secret", "Namespace", "Service", "ServiceAccount", "ResourceQuota")
} | {
    ("apps/v1", "Deployment"): "Deployment",
    ("autoscaling/v1", "HorizontalPodAutoscaler"): "HPAv1",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "HPAv2",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
    ("networking.k8s.io/v1", "Ingress"): "Ingress",
    ("policy/v1", "PodDisruptionBudget"): "PodDisruptionBudget",
    ("scheduling.k8s.io/v1", "PriorityClass"): "PriorityClass",
    ("authentication.k8s.io/v1", "TokenRequest"): "TokenRequest",
} | {
    ("rbac.authorization.k8s.io/v1", k): m for k, m in (
        ("Role", "Role"), ("ClusterRole", "ClusterRole"),
        ("RoleBinding", "RoleBinding"), ("ClusterRoleBinding", "RoleBinding"))
}

def _parse_fields(src: str) -> dict[int, Field]:
    out: dict[int, Field] = {}
    for entry in filter(None, (e.strip() for e in src.split(";"))):
        num, spec = entry.split(" ", 1)
        name, _, kind = spec.partition(":")
        keep = name.endswith("!") or kind.endswith("!")
        name, kind = name.rstrip("!"), kind.rstrip("!") or "s"
        repeated, kind = kind.startswith("*"), kind.lstrip("*")
        inline, kind = kind.endswith("^"), kind.rstrip("^")
        out[int(num)] = Field(name, kind, repeated, keep, inline)
    return out


MESSAGES: dict[str, dict[int, Field]] = {name: _parse_fields(src) for name, src in _MESSAGES_SRC.items()}


# -- wire format -------------------------------------------------------------

def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise ProtobufError("varint longer than 10 bytes")


def read_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Split one message into (field number, value) pairs: varints as int,
    length-delimited as bytes, fixed32/fixed64 as raw bytes."""
    out: list[tuple[int, int | bytes]] = []
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise ProtobufError("field number 0")
        if wire == 0:
            v, i = _varint(buf, i)
            out.append((num, v))
            continue
        if wire == 2:
            n, i = _varint(buf, i)
        elif wire in (1, 5):
            n = 8 if wire == 1 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire} for field {num}")
        if i + n > len(buf):
            raise ProtobufError(f"field {num} runs past the end of its message")
        out.append((num, buf[i:i + n]))
        i += n
    return out


# -- typed decoding ----------------------------------------------------------

def _as_bytes(v: int | bytes, f: Field) -> bytes:
    if not isinstance(v, bytes):
        raise ProtobufError(f"field {f.name} should be length-delimited")
    return v


def _as_int(v: int | bytes, f: Field) -> int:
    if not isinstance(v, int):
        raise ProtobufError(f"field {f.name} should be a varint")
    return v - (1 << 64) if v >= 1 << 63 else v


def _text(b: bytes) -> str:
    try:
        return b.decode()
    except UnicodeDecodeError:
        raise ProtobufError("a string field is not valid UTF-8") from None


def _time(b: bytes) -> str | None:
    parts = {n: v for n, v in read_fields(b) if isinstance(v, int)}
    secs = parts.get(1, 0)
    secs = secs - (1 << 64) if secs >= 1 << 63 else secs
    if not secs and not parts.get(2):
        return None
    return dt.datetime.fromtimestamp(secs, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _intstr(b: bytes) -> int | str:
    typ, ival, sval = 0, 0, ""
    for n, v in read_fields(b):
        if n == 1 and isinstance(v, int):
            typ = v
        elif n == 2 and isinstance(v, int):
            ival = v - (1 << 64) if v >= 1 << 63 else v
        elif n == 3 and isinstance(v, bytes):
            sval = _text(v)
    return sval if typ == 1 else ival


def _map(b: bytes, kind: str) -> tuple[str, Any]:
    key, val = "", b""
    for n, v in read_fields(b):
        if n == 1 and isinstance(v, bytes):
            key = _text(v)
        elif n == 2 and isinstance(v, bytes):
            val = v
    if kind == "map":
        return key, _text(val)
    if kind == "ymap":
        return key, base64.b64encode(val).decode()
    return key, _quantity(val)


def _quantity(b: bytes) -> str:
    return "".join(_text(v) for n, v in read_fields(b) if n == 1 and isinstance(v, bytes))


def _value(v: int | bytes, f: Field) -> Any:
    k = f.kind
    if k == "i":
        return _as_int(v, f)
    if k == "b":
        return bool(_as_int(v, f))
    raw = _as_bytes(v, f)
    if k == "s":
        return _text(raw)
    if k == "y":
        return base64.b64encode(raw).decode()
    if k == "q":
        return _quantity(raw)
    if k == "time":
        return _time(raw)
    if k == "intstr":
        return _intstr(raw)
    return decode_message(raw, k)


def _is_zero(value: Any) -> bool:
    """Go's omitempty zero for scalars; messages (dicts) are never zero."""
    return value is None or value is False or (not isinstance(value, dict) and not value)


def decode_message(buf: bytes, message: str) -> dict[str, Any]:
    """Decode `buf` as the named message into a JSON dict (pure)."""
    fields = MESSAGES[message]
    out: dict[str, Any] = {}
    for num, v in read_fields(buf):
        f = fields.get(num)
        if f is None:
            continue
        if f.kind in ("map", "ymap", "qmap"):
            key, val = _map(_as_bytes(v, f), f.kind)
            out.setdefault(f.name, {})[key] = val
            continue
        value = _value(v, f)
        if f.inline:
            out.update(value)
        elif f.repeated:
            out.setdefault(f.name, []).append(value)
        elif value is not None and (f.keep or not _is_zero(value)):
            out[f.name] = value
        else:
            out.pop(f.name, None)
    return out


def decode_body(body: bytes) -> dict[str, Any]:
    """Turn a `k8s\\0`-framed Kubernetes-protobuf body into the object's JSON
    dict with apiVersion and kind.  Raises UnknownKind for kinds without a
    field table and ProtobufError for malformed bodies."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic k8s\\0")
    env = {n: v for n, v in read_fields(body[len(MAGIC):]) if isinstance(v, bytes)}
    if env.get(3):
        raise ProtobufError(f"content encoding {_text(env[3])!r} is not supported")
    tm = decode_message(env.get(1, b""), "TypeMeta")
    api_version, kind = tm.get("apiVersion", ""), tm.get("kind", "")
    message = KINDS.get((api_version, kind))
    if message is None:
        raise UnknownKind(f"no protobuf decoder for {kind or '(no kind)'} in {api_version or '(no apiVersion)'}; "
                          f"send the object as application/json")
    return {"apiVersion": api_version, "kind": kind, **decode_message(env.get(2, b""), message)}
