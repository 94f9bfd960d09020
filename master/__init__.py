"""The control plane: API server, store, scheduler and controllers."""
