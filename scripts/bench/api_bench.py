"""API server benchmark (run by `scripts/bench/api`).

For each backend asked for (`--store sqlite|etcd|both`) starts `coracle master
--components apiserver` on a free loopback port and a fresh store: a tmp SQLite
file, or its own `etcd` (Debian's `etcd-server`) on free loopback ports with a
tmp data dir. Then it measures: GET of one pod (requests/s with N keep-alive
clients, by `wrk` when installed, else forked httpx clients), creates/s (wrk
POSTs with generateName), LIST of all pods (seconds: a whole list and one with
resourceVersion=0, both served by the API server's watch cache, and a list in
pages of 500 as kubectl does, served by the store), watch fan-out (one change delivered to
N raw-socket watchers, p50/p99), and mutating p99 at 20 writes/s sustained.
Prints one table per backend (or JSON); the server, etcd and their data are
removed at the end, also on errors, Ctrl-C and SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
NS = "bench"
POD = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"generateName": "bench-", "labels": {"app": "bench", "tier": "load"}},
       "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sleep", "3600"],
                                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Etcd:
    """A throwaway single-member etcd on free loopback ports (as tests/etcd_fixture.py)."""

    def __init__(self, base: str) -> None:
        self.dir = os.path.join(base, "etcd")
        self.url = f"http://127.0.0.1:{free_port()}"
        peer = f"http://127.0.0.1:{free_port()}"
        self.log = open(os.path.join(base, "etcd.log"), "wb")
        self.proc = subprocess.Popen(
            [shutil.which("etcd") or "/usr/bin/etcd", "--name", "crt-bench", "--data-dir", self.dir,
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"crt-bench={peer}", "--logger", "zap", "--log-level", "error"],
            stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.post(f"{self.url}/v3/kv/range", json={"key": "AA=="}, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"etcd did not start; see {base}/etcd.log")

    def store_url(self) -> str:
        return "etcd://" + self.url.split("://", 1)[1] + "?prefix=/coracle"

    def stop(self) -> None:
        _stop(self.proc)
        self.log.close()


class Master:
    """`coracle master --components apiserver` on a fresh store of the given kind."""

    def __init__(self, backend: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="coracle-tbench-")
        self.etcd: Etcd | None = None
        try:
            if backend == "etcd":
                self.etcd = Etcd(self.dir)
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        store = self.etcd.store_url() if self.etcd else f"sqlite://{self.dir}/state.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.dir, "master.log"), "wb")
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/coracle"), "--log-level", "warning", "master", "--components", "apiserver",
             "--store", store, "--port", str(self.port),
             "--service-account-key-file", os.path.join(self.dir, "sa.key")],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        with open(os.path.join(self.dir, "master.log"), errors="replace") as f:
            tail = f.read()[-2000:]
        raise RuntimeError(f"the master did not start:\n{tail}")

    def stop(self) -> None:
        try:
            if getattr(self, "proc", None) is not None:
                _stop(self.proc)
                self.log.close()
        finally:
            try:
                if self.etcd is not None:
                    self.etcd.stop()
            finally:
                shutil.rmtree(self.dir, ignore_errors=True)


# -- load generators ---------------------------------------------------------
def _wrk(url: str, conns: int, seconds: float, script: str | None = None) -> tuple[float, int, int]:
    """(requests/s, requests, non-2xx) from wrk."""
    args = ["wrk", "-t2", f"-c{conns}", f"-d{max(1, int(seconds))}s", "--latency"]
    tmp = None
    if script:
        fd, tmp = tempfile.mkstemp(suffix=".lua", prefix="coracle-tbench-")
        os.write(fd, script.encode())
        os.close(fd)
        args += ["-s", tmp]
    try:
        out = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 30).stdout
    finally:
        if tmp:
            os.unlink(tmp)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, total, int(bad.group(1)) if bad else 0


def _py_worker(args: tuple[str, str, float, int, bytes | None]) -> tuple[int, int]:
    url, method, seconds, conns, body = args

    async def one(client: httpx.AsyncClient, stop: float, counts: list[int]) -> None:
        while time.monotonic() < stop:
            r = await client.request(method, url, content=body, headers={"Content-Type": "application/json"})
            counts[0 if r.status_code < 300 else 1] += 1

    async def main() -> tuple[int, int]:
        counts = [0, 0]
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=conns)) as c:
            stop = time.monotonic() + seconds
            await asyncio.gather(*(one(c, stop, counts) for _ in range(conns)))
        return counts[0], counts[1]

    return asyncio.run(main())


def load(url: str, conns: int, seconds: float, method: str = "GET", body: bytes | None = None) -> tuple[float, int, int]:
    if shutil.which("wrk"):
        script = None
        if method != "GET":
            script = (f'wrk.method = "{method}"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [[{body.decode() if body else ''}]]\n")
        return _wrk(url, conns, seconds, script)
    procs = 2
    with multiprocessing.Pool(procs) as pool:
        res = pool.map(_py_worker, [(url, method, seconds, max(1, conns // procs), body)] * procs)
    ok, bad = sum(r[0] for r in res), sum(r[1] for r in res)
    return (ok + bad) / seconds, ok + bad, bad


# -- phases ------------------------------------------------------------------
def top_up(url: str, want: int, conns: int = 16) -> None:
    """Create pods until the namespace holds `want`: threads on kept-alive
    http.client connections, which cost the server's CPU little client CPU."""
    with httpx.Client(base_url=url, timeout=60) as c:
        have = len(c.get(f"/api/v1/namespaces/{NS}/pods").json()["items"])
    todo = max(0, want - have)
    host, port = url.rsplit("/", 1)[1].split(":")
    body = json.dumps(POD).encode()
    errors: list[str] = []

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            for _ in range(n):
                conn.request("POST", f"/api/v1/namespaces/{NS}/pods", body=body,
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 201:
                    errors.append(f"create answered {r.status}")
                    return
        except (OSError, http.client.HTTPException) as e:
            errors.append(repr(e))
        finally:
            conn.close()
    threads = [threading.Thread(target=worker, args=(todo // conns + (i < todo % conns),)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"top-up failed: {errors[0]}")


def time_paged_list(url: str, limit: int = 500, repeats: int = 2) -> tuple[float, int]:
    """All pods in pages of `limit`, as kubectl get does: from the store, not the watch cache."""
    best, n = float("inf"), 0
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(repeats):
            t, n, token = time.perf_counter(), 0, ""
            while True:
                page = c.get("/api/v1/pods", params={"limit": limit, **({"continue": token} if token else {})}).json()
                n += len(page["items"])
                token = page["metadata"].get("continue", "")
                if not token:
                    break
            best = min(best, time.perf_counter() - t)
    return best, n


def time_list(url: str, query: str, repeats: int = 3) -> tuple[float, int]:
    best, n = float("inf"), 0
    with httpx.Client(base_url=url, timeout=60) as c:
        for _ in range(repeats):
            t = time.perf_counter()
            r = c.get(f"/api/v1/pods{query}")
            body = r.content
            best = min(best, time.perf_counter() - t)
            n = body.count(b'"uid"')
    return best, n


async def fanout(url: str, watchers: int, changes: int) -> list[float]:
    host, port = url.rsplit("/", 1)[1].split(":")
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        listed = await c.get(f"/api/v1/namespaces/{NS}/pods", params={"fieldSelector": "metadata.name=p0"})
        rv = listed.json()["metadata"]["resourceVersion"]  # watch from now, as an informer after its list
        req = (f"GET /api/v1/namespaces/{NS}/pods?watch=1&resourceVersion={rv}&fieldSelector=metadata.name%3Dp0 "
               f"HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n").encode()
        conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        try:
            for _ in range(watchers):
                r, w = await asyncio.open_connection(host, int(port))
                w.write(req)
                conns.append((r, w))
            for r, _w in conns:
                await r.readuntil(b"\r\n\r\n")
            lat: list[float] = []
            for i in range(changes):
                got: list[float] = []

                async def recv(r: asyncio.StreamReader, got: list[float] = got) -> None:
                    data = b""
                    while b"\n" not in data.split(b"\r\n", 1)[-1]:
                        data += await r.read(65536)
                    got.append(time.perf_counter())
                tasks = [asyncio.create_task(recv(r)) for r, _w in conns]
                await asyncio.sleep(0.2)
                t0 = time.perf_counter()
                await c.patch(f"/api/v1/namespaces/{NS}/pods/p0", json={"metadata": {"annotations": {"n": str(i)}}},
                              headers={"Content-Type": "application/merge-patch+json"})
                await asyncio.wait_for(asyncio.gather(*tasks), 30)
                lat += [g - t0 for g in got]
            return lat
        finally:
            for _r, w in conns:
                w.close()


async def mutating(url: str, rate: float, seconds: float) -> list[float]:
    lat: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=64)) as c:
        async def one(i: int) -> None:
            t = time.perf_counter()
            r = await c.patch(f"/api/v1/namespaces/{NS}/pods/p0", json={"metadata": {"labels": {"i": str(i)}}},
                              headers={"Content-Type": "application/merge-patch+json"})
            if r.status_code == 200:
                lat.append(time.perf_counter() - t)
        tasks = []
        start = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return lat


def phase(name: str, t0: list[float]) -> None:
    now = time.monotonic()
    print(f"api bench: {name} done in {now - t0[0]:.1f} s", file=sys.stderr)
    t0[0] = now


def run(backend: str, a: argparse.Namespace) -> dict[str, Any]:
    """Every measure against a fresh master on `backend`; stops it whatever happens."""
    t0 = [time.monotonic()]
    m = Master(backend)
    res: dict[str, Any] = {"store": backend, "loadgen": "wrk" if shutil.which("wrk") else "httpx",
                           "conns": a.conns, "seconds": a.seconds}
    try:
        phase(f"{backend}: start", t0)
        with httpx.Client(base_url=m.url, timeout=30) as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
            p0 = json.loads(json.dumps(POD))
            p0["metadata"] = {"name": "p0", "labels": {"app": "bench"}}
            c.post(f"/api/v1/namespaces/{NS}/pods", json=p0).raise_for_status()
        rps, n, bad = load(f"{m.url}/api/v1/namespaces/{NS}/pods/p0", a.conns, a.seconds)
        res["get_rps"], res["get_errors"] = round(rps), bad
        phase(f"{backend}: GET", t0)
        rps, n, bad = load(f"{m.url}/api/v1/namespaces/{NS}/pods", 16, a.seconds, "POST", json.dumps(POD).encode())
        res["create_rps"], res["create_errors"] = round(rps * (n - bad) / max(n, 1)), bad
        phase(f"{backend}: creates", t0)
        top_up(m.url, a.pods)
        phase(f"{backend}: top-up to {a.pods} pods", t0)
        res["list_s"], res["list_items"] = time_list(m.url, "")
        res["list_rv0_s"], _ = time_list(m.url, "?resourceVersion=0")
        res["list_paged_s"], res["list_paged_items"] = time_paged_list(m.url)
        phase(f"{backend}: LIST", t0)
        lat = asyncio.run(fanout(m.url, a.watchers, 3))
        phase(f"{backend}: fan-out", t0)
        res["fanout_watchers"], res["fanout_p50_ms"], res["fanout_p99_ms"] = a.watchers, pct(lat, 50) * 1e3, pct(lat, 99) * 1e3
        lat = asyncio.run(mutating(m.url, 20, max(a.seconds, 5)))
        res["mutating_p50_ms"], res["mutating_p99_ms"] = pct(lat, 50) * 1e3, pct(lat, 99) * 1e3
        phase(f"{backend}: mutating", t0)
    finally:
        m.stop()
    return res


def table(res: dict[str, Any]) -> str:
    rows = [("GET one pod", f"{res['get_rps']} req/s ({res['conns']} conns, {res['loadgen']})", ">= 3000"),
            ("creates", f"{res['create_rps']} /s", ">= 1000"),
            (f"LIST {res['list_items']} pods", f"{res['list_s']:.3f} s", "< 0.5 s"),
            ("LIST resourceVersion=0", f"{res['list_rv0_s']:.3f} s", "< 0.5 s"),
            (f"LIST {res['list_paged_items']} in pages of 500", f"{res['list_paged_s']:.3f} s", "(store)"),
            (f"watch fan-out ({res['fanout_watchers']})",
             f"p50 {res['fanout_p50_ms']:.1f} ms, p99 {res['fanout_p99_ms']:.1f} ms", "p99 < 100 ms"),
            ("mutating at 20/s", f"p50 {res['mutating_p50_ms']:.1f} ms, p99 {res['mutating_p99_ms']:.1f} ms",
             "p99 < 1 s")]
    out = [f"store: {res['store']}", f"{'measure':28} {'result':48} target"]
    out += [f"{r[0]:28} {r[1]:48} {r[2]}" for r in rows]
    return "\n".join(out)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through run()'s finally, which stops master and etcd


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", choices=["sqlite", "etcd", "both"], default="both")
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each load phase")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    backends = ["sqlite", "etcd"] if a.store == "both" else [a.store]
    if "etcd" in backends and not shutil.which("etcd"):
        print("api bench: no `etcd` binary (apt-get install etcd-server)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * a.watchers + 1024)), hard))
    try:
        results = [run(b, a) for b in backends]
    except KeyboardInterrupt:
        print("api bench: interrupted; servers and data removed", file=sys.stderr)
        return 130
    if a.json:
        print(json.dumps(results if len(results) > 1 else results[0], indent=2))
    else:
        print("\n\n".join(table(r) for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
