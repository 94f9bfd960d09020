"""The `coracle` command and the clusters it starts on one machine.

Above every other package: it may import master, nodeagent, cni and cgroups,
and none of them imports it."""
