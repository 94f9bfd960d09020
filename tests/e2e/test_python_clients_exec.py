"""Exec through the official `kubernetes` Python client against a real
one-node cluster: `kubernetes.stream.stream(connect_post_namespaced_pod_exec,
..., _preload_content=False)` with stdin, on v5.channel.k8s.io (the client's
first offer) and v4.channel.k8s.io (asked for by header), with the client's
text framing (its default: `chr(channel) + data` in a text message) and its
binary one (`binary=True`), and v5's close message ending `cat`'s stdin.

One node `crt-pyx` with its own bridge, cgroup root and CIDRs (10.253.0.0/16
pods, 10.105.0.0/16 services); torn down at the end with a leftover check.
Client -> API server (WebSocket relay, master/apiserver/proxy.py) -> agent
(nodeagent/server/exec.py) -> `runc exec`.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

kubernetes = pytest.importorskip("kubernetes")
from kubernetes import client, config  # noqa: E402
from kubernetes.stream import stream  # noqa: E402
from kubernetes.stream.ws_client import V4_CHANNEL_PROTOCOL, V5_CHANNEL_PROTOCOL, WSClient  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from cluster_fixture import E2ECluster, have_tools, running_cluster, sleeper_pod  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.root,
              pytest.mark.skipif(have_tools() is not None, reason=str(have_tools()))]

POD = "crt-pyx"
POD_YAML = sleeper_pod(POD)


@pytest.fixture(scope="module")
def kc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2ECluster]:
    yield from running_cluster(Path(tmp_path_factory.mktemp("crt-pyx")), "crt-pyx", "crt-by", "10.253.0.0/16",
                               "10.105.0.0/16", POD_YAML, (POD,))


@pytest.fixture(scope="module")
def core(kc: E2ECluster) -> Iterator[client.CoreV1Api]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=kc.cluster.kubeconfig, client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield client.CoreV1Api(api)


def _open(core: client.CoreV1Api, command: list[str], protocol: str, binary: bool) -> WSClient:
    headers = {} if protocol == V5_CHANNEL_PROTOCOL else {"sec-websocket-protocol": protocol}
    ws: WSClient = stream(core.connect_post_namespaced_pod_exec, POD, "default", command=command,
                          stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False,
                          binary=binary, _headers=headers, _request_timeout=30)
    assert ws.subprotocol == protocol
    return ws


def _enc(binary: bool, text: str) -> Any:
    return text.encode() if binary else text


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("protocol", [V5_CHANNEL_PROTOCOL, V4_CHANNEL_PROTOCOL])
def test_stdin_write_and_readline(core: client.CoreV1Api, protocol: str, binary: bool) -> None:
    """The issue's session: write_stdin then readline_stdout answers at once; stderr apart; the exit code."""
    ws = _open(core, ["/bin/sh"], protocol, binary)
    try:
        ws.write_stdin(_enc(binary, "echo test string 1\n"))
        assert ws.readline_stdout(timeout=10) == _enc(binary, "test string 1")
        ws.write_stdin(_enc(binary, "echo test string 2 >&2\n"))
        assert ws.readline_stderr(timeout=10) == _enc(binary, "test string 2")
        ws.write_stdin(_enc(binary, "echo \u00e9t\u00e9\n"))   # non-ASCII survives either framing
        assert ws.readline_stdout(timeout=10) == _enc(binary, "\u00e9t\u00e9")
        ws.write_stdin(_enc(binary, "exit 3\n"))
        ws.run_forever(timeout=20)
        assert not ws.is_open()
        assert ws.returncode == 3
    finally:
        ws.close()


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_v5_close_channel_ends_stdin(core: client.CoreV1Api, binary: bool) -> None:
    """close_channel(0) (v5's 255 message) gives `cat` EOF: it exits 0 and the stream ends."""
    ws = _open(core, ["cat"], V5_CHANNEL_PROTOCOL, binary)
    try:
        ws.write_stdin(_enc(binary, "hello\n"))
        assert ws.readline_stdout(timeout=10) == _enc(binary, "hello")
        ws.close_channel(0)
        ws.run_forever(timeout=20)
        assert not ws.is_open(), "cat did not end after stdin was closed"
        assert ws.returncode == 0
    finally:
        ws.close()


def test_exec_without_stdin_returns_output(core: client.CoreV1Api) -> None:
    """The preloaded form: the whole output as one string."""
    out = stream(core.connect_get_namespaced_pod_exec, POD, "default", command=["sh", "-c", "echo hi; echo there"],
                 stdin=False, stdout=True, stderr=True, tty=False)
    assert out == "hi\nthere\n"
