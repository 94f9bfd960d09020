"""Coracle's CNI plugin: a bridge plugin with host-local style IPAM.

`cni.plugin` holds the verbs (ADD, DEL, CHECK, VERSION) that the node agent
calls in-process and `python -m cni` exposes as a CNI executable.  Below it:
`conf` (config parsing), `ipam` + `ipam_store` (addresses), and the netlink
drivers `bridge`, `veth`, `podside`, `netns`, `routes`.
"""
from __future__ import annotations
