"""Node IPAM: the pure subnet choice, and the controller against an
in-process API server (distinct /24s, an existing podCIDR kept)."""
from __future__ import annotations

import asyncio
import ipaddress
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apiserver_fixture import ServerThread, node  # noqa: E402

from apimachinery import kinds  # noqa: E402
from apimachinery.client import Client, StatusError  # noqa: E402
from master.controllers.nodeipam import NodeIPAM, next_free  # noqa: E402

NODES = kinds.lookup("", "v1", "nodes")


def test_next_free_skips_used_and_reports_exhaustion() -> None:
    assert next_free("10.244.0.0/16", 24, set()) == "10.244.0.0/24"
    assert next_free("10.244.0.0/16", 24, {"10.244.0.0/24", "10.244.1.0/24"}) == "10.244.2.0/24"
    assert next_free("10.250.0.0/23", 24, {"10.250.0.0/24", "10.250.1.0/24"}) is None
    assert next_free("10.250.0.0/22", 25, {"10.250.0.0/25"}) == "10.250.0.128/25"


def test_controller_assigns_distinct_subnets_and_keeps_existing() -> None:
    assert NODES is not None

    async def main(url: str) -> None:
        client = Client(url)
        ipam = NodeIPAM(client, "10.244.0.0/16", 24)
        task = asyncio.create_task(ipam.run())
        try:
            pinned = node("crt-pinned")
            pinned["spec"]["podCIDR"] = "10.244.0.0/24"
            await client.create(NODES, None, pinned)
            await client.create(NODES, None, node("crt-a"))
            await client.create(NODES, None, node("crt-b"))
            cidrs: dict[str, Any] = {}
            for _ in range(160):
                items = (await client.list(NODES))["items"]
                cidrs = {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in items}
                if all(cidrs.values()) and len(cidrs) == 3:
                    break
                await asyncio.sleep(0.05)
            assert cidrs["crt-pinned"] == "10.244.0.0/24"
            assert len(set(cidrs.values())) == 3, cidrs
            for c in cidrs.values():
                net = ipaddress.ip_network(c)
                assert net.prefixlen == 24 and net.subnet_of(ipaddress.ip_network("10.244.0.0/16"))
            got = await client.get(NODES, None, "crt-a")
            assert got["spec"]["podCIDRs"] == [got["spec"]["podCIDR"]]
            # the API server itself refuses to move a podCIDR once set
            try:
                await client.patch(NODES, None, "crt-a", {"spec": {"podCIDR": "10.244.99.0/24"}})
                raise AssertionError("podCIDR change accepted")
            except StatusError as e:
                assert e.code == 422
            # a late node gets the next free subnet; sync twice changes nothing
            await client.create(NODES, None, node("crt-late"))
            for _ in range(160):
                late = (await client.get(NODES, None, "crt-late"))["spec"].get("podCIDR")
                if late:
                    break
                await asyncio.sleep(0.05)
            assert late and late not in cidrs.values()
            for _ in range(160):  # let the informer catch up before syncing by hand
                if (ipam.nodes.get("crt-late") or {}).get("spec", {}).get("podCIDR"):
                    break
                await asyncio.sleep(0.05)
            before = (await client.list(NODES))["metadata"]["resourceVersion"]
            await ipam.sync()
            assert (await client.list(NODES))["metadata"]["resourceVersion"] == before
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await client.close()

    with ServerThread() as srv:
        asyncio.run(main(srv.url))
