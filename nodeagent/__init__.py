"""The node agent: the kubelet of Coracle (pods, runtime, images, volumes on one node)."""
