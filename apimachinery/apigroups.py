"""The enabled API set: which group-versions and resources this API server
serves, parsed from `--runtime-config` (pure).

Upstream's syntax (kube-apiserver `--runtime-config`, a comma-separated list
of `key=value`; a bare `key` means `true`; a later key overrides an earlier
one of the same name):

    api/all=false          every group-version off (api/ga, api/beta, api/alpha: by stability)
    api/v1=true            the core group (also `v1`); `api/legacy` is accepted and ignored
    apps/v1=false          one group-version
    apps/v1/deployments=false   one resource (an explicit resource setting wins)

The `api/*` matchers apply first (all, ga, beta, alpha), then group-versions,
then resources, whatever their order in the flag.  As upstream's validation:
an unknown group, a known group's unknown version, a malformed key or value,
and `api/all=false` alone (nothing left to serve) are errors.

The kinds table (`apimachinery.kinds`) stays static; an `APIGroups` is a
filtered view of it handed to discovery, OpenAPI, routing (`paths`) and the
controllers.  Storage is unaffected: a disabled resource's objects stay in the
store and are served again once it is turned back on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from apimachinery import kinds
from apimachinery.kinds import ResourceInfo

MATCHERS = ("api/all", "api/ga", "api/beta", "api/alpha")
_TRUE = ("1", "t", "T", "TRUE", "true", "True", "")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


class RuntimeConfigError(ValueError):
    """The --runtime-config value is malformed or names a version we do not have."""


def stability(version: str) -> str:
    """`ga`, `beta` or `alpha`, from the version string (v1, v2beta1, v1alpha1)."""
    if "alpha" in version:
        return "alpha"
    return "beta" if "beta" in version else "ga"


@dataclass(frozen=True, slots=True)
class APIGroups:
    """The served resources, in the kinds table's order (preferred versions first)."""
    served: tuple[ResourceInfo, ...]
    keys: dict[tuple[str, str, str], ResourceInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # routing asks on every request: a dict, not a scan
        object.__setattr__(self, "keys", {(r.group, r.version, r.plural): r for r in self.served})

    def with_custom(self, custom: tuple[ResourceInfo, ...]) -> APIGroups:
        """This set plus the custom resources the CRDs define (master.apiserver.customresources); a
        custom resource never shadows a built-in one."""
        return APIGroups(self.served + tuple(r for r in custom if (r.group, r.version, r.plural) not in self.keys))

    @classmethod
    def everything(cls, table: tuple[ResourceInfo, ...] = kinds.RESOURCES) -> APIGroups:
        return cls(tuple(table))

    def serves(self, res: ResourceInfo) -> bool:
        return (res.group, res.version, res.plural) in self.keys

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo | None:
        return self.keys.get((group, version, plural))

    def groups(self) -> dict[str, list[str]]:
        """Served group -> its served versions, preferred first; the core group is ""."""
        return kinds.groups(self.served)

    def versions(self, group: str) -> list[str]:
        return self.groups().get(group, [])

    def serves_version(self, group: str, version: str) -> bool:
        return version in self.versions(group)

    def in_group_version(self, group: str, version: str) -> list[ResourceInfo]:
        return kinds.in_group_version(group, version, self.served)

    def serving(self, res: ResourceInfo) -> ResourceInfo | None:
        """`res` if served, else a served version with the same storage (autoscaling/v1 for v2), else None."""
        if self.serves(res):
            return res
        return next((r for r in self.served if kinds.same_storage(r, res)), None)


ALL = APIGroups.everything()


def _bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RuntimeConfigError(f"--runtime-config: invalid value {key}={value} (want true or false)")


def parse_pairs(text: str) -> dict[str, str]:
    """`a=b,c` -> {"a": "b", "c": ""}, later keys winning; core keys normalised to `/v1[/resource]`."""
    out: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key == "api/legacy":
            continue  # upstream removed it: legacy APIs are gone
        if key == "v1" or key.startswith("v1/"):
            key = "/" + key
        elif key == "api/v1" or key.startswith("api/v1/"):
            key = key[len("api"):]
        out.pop(key, None)  # re-insert: order of last occurrence
        out[key] = value
    return out


def parse_runtime_config(text: str, table: tuple[ResourceInfo, ...] = kinds.RESOURCES) -> APIGroups:
    """The served set for a `--runtime-config` value; "" serves every resource in the table."""
    pairs = parse_pairs(text)
    if pairs == {"api/all": "false"}:
        raise RuntimeConfigError("--runtime-config: invalid key with only api/all=false")
    known = kinds.groups(table)
    gv_on: dict[tuple[str, str], bool] = {(g, v): True for g, vs in known.items() for v in vs}
    for m in MATCHERS:
        if m not in pairs:
            continue
        if pairs[m] not in ("true", "false"):
            raise RuntimeConfigError(f"--runtime-config: invalid value {m}={pairs[m]} (want true or false)")
        stage = m.split("/")[1]
        for g, v in gv_on:
            if stage == "all" or stability(v) == stage:
                gv_on[(g, v)] = pairs[m] == "true"
    res_on: dict[tuple[str, str, str], bool] = {}
    unknown: list[str] = []
    for key, value in pairs.items():
        if key in MATCHERS:
            continue
        tokens = key.split("/")
        if len(tokens) not in (2, 3) or not tokens[1]:
            raise RuntimeConfigError(f"--runtime-config: invalid key {key} (want group/version[/resource])")
        group, version = tokens[0], tokens[1]
        if group not in known:
            unknown.append(group)
            continue
        if version not in known[group]:
            gv = f"{group}/{version}" if group else version
            raise RuntimeConfigError(f"--runtime-config: group version {gv} that has not been registered")
        if len(tokens) == 2:
            gv_on[(group, version)] = _bool(key, value)
        elif not any(r.plural == tokens[2] for r in kinds.in_group_version(group, version, table)):
            raise RuntimeConfigError(f"--runtime-config: unknown resource {tokens[2]!r} in {group}/{version}")
        else:
            res_on[(group, version, tokens[2])] = _bool(key, value)
    if unknown:
        raise RuntimeConfigError(f"--runtime-config: unknown api groups {','.join(sorted(set(unknown)))}")
    served = tuple(r for r in table
                   if res_on.get((r.group, r.version, r.plural), gv_on[(r.group, r.version)]))
    return APIGroups(served)
