"""Test helper: a throwaway etcd (Debian's `etcd-server`) on 127.0.0.1,
free ports, its data in a temp dir; stop() kills it and removes the data.

Neighbours: the store contract suite and the API tests on etcd use it
(`tests/integration/test_store_contract.py`, `test_apiserver_etcd.py`,
`test_apiserver_etcd_consistency.py`), as do the Python-client e2e suite and
`scripts/bench/etcd_clients.py`.

    with EtcdServer() as etcd:
        store = open_store(etcd.store_url("/crt-x"))
"""
from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import tempfile
import time

import httpx

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def available() -> bool:
    return shutil.which("etcd") is not None


class EtcdServer:
    def __init__(self) -> None:
        self.data_dir = tempfile.mkdtemp(prefix="crt-etcd-")
        self.client_port = _free_port()
        self.peer_port = _free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.log_path = self.data_dir + ".log"
        self.proc: subprocess.Popen[bytes] | None = None

    def store_url(self, prefix: str = "") -> str:
        return f"etcd://127.0.0.1:{self.client_port}" + (f"?prefix={prefix}" if prefix else "")

    def start(self) -> EtcdServer:
        peer = f"http://127.0.0.1:{self.peer_port}"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [ETCD, "--name", "crt-etcd", "--data-dir", self.data_dir,
                 "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", f"crt-etcd={peer}", "--logger", "zap", "--log-level", "error"],
                stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                with open(self.log_path, errors="replace") as f:
                    err = f.read()
                self.stop()
                raise RuntimeError(f"etcd exited {self.proc.returncode}: {err[-2000:]}")
            try:
                if httpx.post(f"{self.url}/v3/kv/range", json={"key": "AA=="}, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("etcd did not answer within 15 s")

    def restart(self) -> None:
        """Stop the process and start it again on the same ports and data."""
        self._terminate()
        self.start()

    def _terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def stop(self) -> None:
        try:
            self._terminate()
        finally:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            if os.path.exists(self.log_path):
                os.unlink(self.log_path)

    def __enter__(self) -> EtcdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
