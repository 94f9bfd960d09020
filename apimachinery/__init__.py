"""Shared API machinery: kinds, selectors, quantities, patches and the client."""
