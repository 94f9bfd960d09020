"""API server benchmark (run by `scripts/bench/api`).

Starts `coracle master --components apiserver` on a tmp SQLite store and a
free loopback port, then measures: GET of one pod (requests/s with N keep-alive
clients, by `wrk` when installed, else forked httpx clients), creates/s (wrk
POSTs with generateName), LIST of all pods (seconds, from the store and with
resourceVersion=0 from the watch cache), watch fan-out (one change delivered to
N raw-socket watchers, p50/p99), and mutating p99 at 20 writes/s sustained.
Prints a table (or JSON); the server and its store are removed at the end.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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


class Master:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="coracle-tbench-")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(self.dir, "master.log"), "wb")
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/coracle"), "--log-level", "warning", "master", "--components", "apiserver",
             "--store", f"sqlite://{self.dir}/state.db", "--port", str(self.port)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the master did not start; see its log")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
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
async def top_up(url: str, want: int) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        have = len((await c.get(f"/api/v1/namespaces/{NS}/pods")).json()["items"])
        body = json.dumps(POD).encode()
        sem = asyncio.Semaphore(16)

        async def one() -> None:
            async with sem:
                await c.post(f"/api/v1/namespaces/{NS}/pods", content=body, headers={"Content-Type": "application/json"})
        await asyncio.gather(*(one() for _ in range(max(0, want - have))))


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

                async def recv(r: asyncio.StreamReader) -> None:
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--watchers", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each load phase")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * a.watchers + 1024)), hard))
    t0 = [time.monotonic()]
    m = Master()
    res: dict[str, Any] = {"loadgen": "wrk" if shutil.which("wrk") else "httpx"}
    try:
        with httpx.Client(base_url=m.url, timeout=30) as c:
            c.post("/api/v1/namespaces", json={"metadata": {"name": NS}}).raise_for_status()
            p0 = json.loads(json.dumps(POD))
            p0["metadata"] = {"name": "p0", "labels": {"app": "bench"}}
            c.post(f"/api/v1/namespaces/{NS}/pods", json=p0).raise_for_status()
        rps, n, bad = load(f"{m.url}/api/v1/namespaces/{NS}/pods/p0", a.conns, a.seconds)
        res["get_rps"], res["get_errors"] = round(rps), bad
        phase("GET", t0)
        rps, n, bad = load(f"{m.url}/api/v1/namespaces/{NS}/pods", 16, a.seconds, "POST", json.dumps(POD).encode())
        res["create_rps"], res["create_errors"] = round(rps * (n - bad) / max(n, 1)), bad
        phase("creates", t0)
        asyncio.run(top_up(m.url, a.pods))
        phase(f"top-up to {a.pods} pods", t0)
        res["list_s"], res["list_items"] = time_list(m.url, "")
        res["list_rv0_s"], _ = time_list(m.url, "?resourceVersion=0")
        phase("LIST", t0)
        lat = asyncio.run(fanout(m.url, a.watchers, 3))
        phase("fan-out", t0)
        res["fanout_watchers"], res["fanout_p50_ms"], res["fanout_p99_ms"] = a.watchers, pct(lat, 50) * 1e3, pct(lat, 99) * 1e3
        lat = asyncio.run(mutating(m.url, 20, max(a.seconds, 5)))
        res["mutating_p50_ms"], res["mutating_p99_ms"] = pct(lat, 50) * 1e3, pct(lat, 99) * 1e3
    finally:
        m.stop()
    if a.json:
        print(json.dumps(res, indent=2))
        return 0
    rows = [("GET one pod", f"{res['get_rps']} req/s ({a.conns} conns, {res['loadgen']})", ">= 3000"),
            ("creates", f"{res['create_rps']} /s", ">= 1000"),
            (f"LIST {res['list_items']} pods", f"{res['list_s']:.3f} s", "< 0.5 s"),
            ("LIST resourceVersion=0", f"{res['list_rv0_s']:.3f} s", "< 0.5 s"),
            (f"watch fan-out ({a.watchers})", f"p50 {res['fanout_p50_ms']:.1f} ms, p99 {res['fanout_p99_ms']:.1f} ms",
             "p99 < 100 ms"),
            ("mutating at 20/s", f"p50 {res['mutating_p50_ms']:.1f} ms, p99 {res['mutating_p99_ms']:.1f} ms", "p99 < 1 s")]
    print(f"{'measure':28} {'result':48} target")
    for r in rows:
        print(f"{r[0]:28} {r[1]:48} {r[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
