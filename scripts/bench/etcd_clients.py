"""Per-call latency and CPU of etcd v3 client libraries against a throwaway
etcd (tests/etcd_fixture.py: Debian's `etcd-server` on free loopback ports,
removed at the end): a range of one key and a create txn (create_revision ==
0), each sequentially and from 8 threads (8 tasks for asyncio clients).
CPU is the client process's (all its threads), per call.

How `master/store/etcd.py` chose its library:

    .venv/bin/pip install aetcd etcd3gw      # the candidates not in pyproject
    .venv/bin/python scripts/bench/etcd_clients.py [pyetcd aetcd etcd3gw]

Each library runs in its own process (aetcd and etcd-sdk-python register the
same protobuf file names, so one process cannot import both); a library that
is not installed is skipped.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SEQUENTIAL, THREADS, PER_THREAD = 2000, 8, 400
VALUE = json.dumps({"metadata": {"name": "x" * 40}, "spec": {"containers": [{"image": "busybox"}] * 3}}).encode()


def report(label: str, calls: int, wall: float, cpu: float, parallel: bool) -> None:
    rate = f"{calls / wall:7.0f} calls/s" if parallel else f"{1e6 * wall / calls:7.0f} us/call"
    print(f"{label:34s} {rate}   {1e6 * cpu / calls:5.0f} us CPU/call", flush=True)


def sync_suite(lib: str, get: Callable[[int], Any], create: Callable[[int], Any]) -> None:
    for _ in range(200):
        get(0)
    for name, fn, base in (("range", get, 0), ("create", create, 0)):
        t, c = time.perf_counter(), time.process_time()
        for i in range(SEQUENTIAL):
            fn(base + i)
        report(f"{lib} {name}", SEQUENTIAL, time.perf_counter() - t, time.process_time() - c, False)
    for name, fn, base in (("range", get, 0), ("create", create, 10**7)):
        def worker(k: int, fn: Callable[[int], Any] = fn, base: int = base) -> None:
            for i in range(PER_THREAD):
                fn(base + k * 100_000 + i)
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
        t, c = time.perf_counter(), time.process_time()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        report(f"{lib} {name} x{THREADS} threads", THREADS * PER_THREAD, time.perf_counter() - t,
               time.process_time() - c, True)


async def async_suite(lib: str, get: Callable[[int], Awaitable[Any]], create: Callable[[int], Awaitable[Any]]) -> None:
    for _ in range(200):
        await get(0)
    for name, fn in (("range", get), ("create", create)):
        t, c = time.perf_counter(), time.process_time()
        for i in range(SEQUENTIAL):
            await fn(i)
        report(f"{lib} {name}", SEQUENTIAL, time.perf_counter() - t, time.process_time() - c, False)
    for name, fn, base in (("range", get, 0), ("create", create, 10**7)):
        async def worker(k: int, fn: Callable[[int], Awaitable[Any]] = fn, base: int = base) -> None:
            for i in range(PER_THREAD):
                await fn(base + k * 100_000 + i)
        t, c = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(k) for k in range(THREADS)))
        report(f"{lib} {name} x{THREADS} tasks", THREADS * PER_THREAD, time.perf_counter() - t,
               time.process_time() - c, True)


def run(lib: str, port: int) -> None:
    prefix = f"/bench-{uuid.uuid4().hex[:6]}/".encode()
    key = prefix + b"k"
    if lib == "pyetcd":
        import pyetcd

        c = pyetcd.client("127.0.0.1", port)
        c.put(key, VALUE)
        t = c.transactions
        sync_suite(lib, lambda i: c.get_response(key), lambda i: c.transaction(
            compare=[t.create(prefix + b"%d" % i) == 0], success=[t.put(prefix + b"%d" % i, VALUE)], failure=[]))
    elif lib == "etcd3gw":
        import etcd3gw

        g = etcd3gw.client("127.0.0.1", port)
        g.put(key.decode(), VALUE)
        sync_suite(lib, lambda i: g.get(key.decode()), lambda i: g.create(f"{prefix.decode()}{i}", VALUE))
    elif lib == "aetcd":
        import aetcd

        async def main() -> None:
            a = aetcd.Client("127.0.0.1", port)
            await a.connect()
            await a.put(key, VALUE)
            t = a.transactions
            await async_suite(lib, lambda i: a.get(key), lambda i: a.transaction(
                compare=[t.create(prefix + b"%d" % i) == 0], success=[t.put(prefix + b"%d" % i, VALUE)],
                failure=[]))
            await a.close()

        asyncio.run(main())


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--run":
        lib, port = sys.argv[2].split(":")
        run(lib, int(port))
        return 0
    sys.path.insert(0, str(ROOT / "tests"))
    import etcd_fixture

    if not etcd_fixture.available():
        print("etcd_clients: no `etcd` binary (apt-get install etcd-server)", file=sys.stderr)
        return 2
    libs = sys.argv[1:] or ["pyetcd", "aetcd", "etcd3gw"]
    with etcd_fixture.EtcdServer() as etcd:
        for lib in libs:
            if importlib.util.find_spec(lib) is None:
                print(f"{lib}: not installed, skipped", flush=True)
                continue
            subprocess.run([sys.executable, __file__, "--run", f"{lib}:{etcd.client_port}"], timeout=600, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
