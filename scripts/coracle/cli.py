"""The `coracle` command: one entry point for every process and tool.

    coracle master [--store sqlite:///var/lib/coracle/master/state.db] [--port 6443]
    coracle agent  --api http://127.0.0.1:6443 [--node-name NAME] [--node-ip IP]
    coracle debug  pods | inspect POD            (the agent's local view; works with the master down)
    coracle image  import-busybox | list
    coracle up | down [--purge]                  (a one-node cluster on this host; see coracle.localcluster.py)
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

from apimachinery import netplan


def _logging(a: argparse.Namespace) -> None:
    from apimachinery import logs
    node = (a.node_name or socket.gethostname().lower()) if a.cmd == "agent" else ""
    logs.configure(a.log_level, a.log_format, {"node": node})


def cmd_master(a: argparse.Namespace) -> int:
    from master import main as m
    comps = [c.strip() for c in a.components.split(",") if c.strip()]
    bad = [c for c in comps if c not in m.COMPONENTS]
    if bad:
        print(f"coracle master: unknown component(s) {bad}; choose from {', '.join(m.COMPONENTS)}", file=sys.stderr)
        return 2
    from apimachinery.apigroups import RuntimeConfigError, parse_runtime_config
    try:
        apis = parse_runtime_config(a.runtime_config)
    except RuntimeConfigError as e:
        print(f"coracle master: {e}", file=sys.stderr)
        return 2
    from master.apiserver.eventttl import parse_duration
    try:
        event_ttl = parse_duration(a.event_ttl)
        if event_ttl <= 0:
            raise ValueError(f"--event-ttl must be positive, not {a.event_ttl!r}")
    except ValueError as e:
        print(f"coracle master: --event-ttl: {e}", file=sys.stderr)
        return 2
    api = a.api or f"http://{a.bind}:{a.port}"
    if a.kubeconfig:
        os.makedirs(os.path.dirname(a.kubeconfig) or ".", exist_ok=True)
        m.write_kubeconfig(a.kubeconfig, api)
    asyncio.run(m.run(a.store, a.bind, a.port, comps, api, a.cluster_cidr, watch_window=a.watch_window_seconds,
                      apis=apis, sa_key_file=a.service_account_key_file, sa_issuer=a.service_account_issuer,
                      event_ttl=event_ttl))
    return 0


def cmd_agent(a: argparse.Namespace) -> int:
    from nodeagent.agent import AgentConfig, run_agent
    cfg = AgentConfig(node_name=a.node_name or socket.gethostname().lower(), api_url=a.api, node_ip=a.node_ip,
                      run_dir=a.run_dir, state_dir=a.state_dir, cgroup_root=a.cgroup_root, port=a.port,
                      cluster_cidr=a.cluster_cidr, service_cidr=a.service_cidr, bridge=a.bridge,
                      backoff_base=a.backoff_base)
    asyncio.run(run_agent(cfg))
    return 0


def cmd_reset(a: argparse.Namespace) -> int:
    from nodeagent.agent import AgentConfig, reset_node
    cfg = AgentConfig(node_name=a.node_name or socket.gethostname().lower(), run_dir=a.run_dir,
                      state_dir=a.state_dir, cgroup_root=a.cgroup_root, cluster_cidr=a.cluster_cidr,
                      service_cidr=a.service_cidr, bridge=a.bridge)
    errs = reset_node(cfg, a.pod_cidr or None)
    for e in errs:
        print(f"coracle node-reset: {e}", file=sys.stderr)
    return 1 if errs else 0


def cmd_image(a: argparse.Namespace) -> int:
    from nodeagent.runtime.images import ImageStore
    store = ImageStore(os.path.join(a.state_dir, "images"))
    if a.action == "import-busybox":
        img = store.import_busybox()
        print(f"{img.ref} {img.id[:12]}")
    else:
        for img in store.list():
            print(f"{img.ref}\t{img.id[:12]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="coracle", description="A small Kubernetes-compatible cluster.")
    p.add_argument("--log-level", default=os.environ.get("CORACLE_LOG_LEVEL", "info"))
    p.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("CORACLE_LOG_FORMAT", "text"),
                   help="text: one line an event, with key=value fields (pod, namespace, uid, node); json: one "
                        "JSON object a line")
    sub = p.add_subparsers(dest="cmd", required=True)

    m = sub.add_parser("master", help="run the API server, scheduler and controllers")
    m.add_argument("--store", default=f"sqlite://{netplan.MASTER_DIR}/state.db")
    m.add_argument("--bind", default="127.0.0.1")
    m.add_argument("--port", type=int, default=6443)
    m.add_argument("--api", default="", help="URL the scheduler/controllers use (default: this server)")
    m.add_argument("--components", default=",".join(("apiserver", "scheduler", "controllers")))
    m.add_argument("--cluster-cidr", default=netplan.CLUSTER_CIDR)
    m.add_argument("--kubeconfig", default="", help="write an admin kubeconfig for this server here")
    m.add_argument("--watch-window-seconds", type=float, default=300.0,
                   help="how long a watch may resume from an old resourceVersion before 410 Gone")
    m.add_argument("--runtime-config", default="",
                   help="switch API group-versions on/off as upstream: api/all=false,api/v1=true,apps/v1=false,"
                        "autoscaling/v2=false (default: all on)")
    m.add_argument("--service-account-key-file", default="",
                   help="PEM private key (RSA or ECDSA) that signs service-account tokens, created if missing "
                        "(upstream's --service-account-signing-key-file; default: sa.key in the master's data dir)")
    m.add_argument("--service-account-issuer", default=f"https://{netplan.api_server_host()}",
                   help="the iss claim of service-account tokens")
    m.add_argument("--event-ttl", default="1h0m0s",
                   help="how long an Event is kept after its last write, a Go duration (1h, 30m, 90s)")
    m.set_defaults(fn=cmd_master)

    ag = sub.add_parser("agent", help="run the node agent (as root)")
    ag.add_argument("--api", default="http://127.0.0.1:6443")
    ag.add_argument("--node-name", default="")
    ag.add_argument("--node-ip", default="127.0.0.1")
    ag.add_argument("--port", type=int, default=10250)
    ag.add_argument("--run-dir", default=netplan.RUN_DIR)
    ag.add_argument("--state-dir", default=netplan.STATE_DIR)
    ag.add_argument("--cgroup-root", default="coracle")
    ag.add_argument("--cluster-cidr", default=netplan.CLUSTER_CIDR)
    ag.add_argument("--service-cidr", default=netplan.SERVICE_CIDR)
    ag.add_argument("--bridge", default=netplan.BRIDGE)
    ag.add_argument("--backoff-base", type=float, default=10.0, help="first restart back-off in seconds")
    ag.set_defaults(fn=cmd_agent)

    r = sub.add_parser("node-reset", help="remove every pod, route, bridge and cgroup the agent made on this node")
    r.add_argument("--node-name", default="")
    r.add_argument("--run-dir", default=netplan.RUN_DIR)
    r.add_argument("--state-dir", default=netplan.STATE_DIR)
    r.add_argument("--cgroup-root", default="coracle")
    r.add_argument("--cluster-cidr", default=netplan.CLUSTER_CIDR)
    r.add_argument("--service-cidr", default=netplan.SERVICE_CIDR)
    r.add_argument("--pod-cidr", default="", help="this node's pod subnet (its bridge and routes are removed)")
    r.add_argument("--bridge", default=netplan.BRIDGE)
    r.set_defaults(fn=cmd_reset)

    d = sub.add_parser("debug", help="inspect this node's pods from local state")
    d.add_argument("--state-dir", default=netplan.STATE_DIR)
    d.add_argument("--run-dir", default=netplan.RUN_DIR)
    d.add_argument("--cgroup-root", default="coracle")
    d.add_argument("rest", nargs=argparse.REMAINDER)
    d.set_defaults(fn=lambda a: __import__("nodeagent.debug.cli", fromlist=["main"]).main(a))

    up = sub.add_parser("up", help="start master (SQLite) + one agent on this host in the background (as scripts/up)")
    up.set_defaults(fn=lambda a: __import__("coracle.localcluster", fromlist=["main"]).main([]))
    down = sub.add_parser("down", help="stop them and remove every kernel object they made (as scripts/down)")
    down.add_argument("--purge", action="store_true", help="also delete the data, logs and kubeconfig")
    down.set_defaults(fn=lambda a: __import__("coracle.localcluster", fromlist=["main"]).main(["down"] + (["--purge"] if a.purge else [])))

    im = sub.add_parser("image", help="manage the node's local images")
    im.add_argument("action", choices=("import-busybox", "list"))
    im.add_argument("--state-dir", default=netplan.STATE_DIR)
    im.set_defaults(fn=cmd_image)

    a = p.parse_args(argv)
    _logging(a)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return int(a.fn(a) or 0)


if __name__ == "__main__":
    sys.exit(main())
