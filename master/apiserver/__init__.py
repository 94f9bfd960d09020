"""The API server: REST handlers, discovery, printing and errors."""
