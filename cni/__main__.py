"""The CNI executable: `python -m cni` reads env + stdin, writes JSON to stdout.

Env: CNI_COMMAND (ADD, DEL, CHECK, VERSION), CNI_CONTAINERID, CNI_NETNS,
CNI_IFNAME, CNI_PATH.  Errors: the spec's error JSON on stdout, exit 1.
Only wiring: the verbs live in `cni.plugin`.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any

from cni.errors import DECODE_FAILURE, INTERNAL, INVALID_ENV, CNIError


def run(env: dict[str, str], stdin: str) -> tuple[int, dict[str, Any] | None]:
    cmd = env.get("CNI_COMMAND", "")
    version = "1.0.0"
    try:
        if cmd == "VERSION":
            from cni import plugin
            return 0, plugin.version()
        if cmd not in ("ADD", "DEL", "CHECK"):
            raise CNIError(INVALID_ENV, "CNI_COMMAND must be ADD, DEL, CHECK or VERSION", repr(cmd))
        try:
            conf = json.loads(stdin)
        except ValueError as e:
            raise CNIError(DECODE_FAILURE, "cannot decode network config", str(e)) from None
        if isinstance(conf, dict):
            version = str(conf.get("cniVersion", version))
        from cni import plugin  # pyroute2 import only when needed
        cid, ifname = env.get("CNI_CONTAINERID", ""), env.get("CNI_IFNAME", "eth0")
        netns = env.get("CNI_NETNS", "")
        if cmd == "ADD":
            if not netns:
                raise CNIError(INVALID_ENV, "CNI_NETNS is required for ADD")
            return 0, plugin.add(conf, cid, netns, ifname)
        if cmd == "DEL":
            plugin.delete(conf, cid, netns or None, ifname)
            return 0, None
        if not netns:
            raise CNIError(INVALID_ENV, "CNI_NETNS is required for CHECK")
        plugin.check(conf, cid, netns, ifname)
        return 0, None
    except CNIError as e:
        return 1, e.to_json(version)
    except Exception as e:  # noqa: BLE001 - the spec wants JSON on stdout, never a traceback
        return 1, CNIError(INTERNAL, "internal error", f"{type(e).__name__}: {e}").to_json(version)


def main() -> int:
    rc, out = run(dict(os.environ), sys.stdin.read() if os.environ.get("CNI_COMMAND") != "VERSION" else "")
    if out is not None:
        sys.stdout.write(json.dumps(out) + "\n")
    return rc


if __name__ == "__main__":
    sys.exit(main())
