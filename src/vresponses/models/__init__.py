"""The models vresponses can serve, starting with the embedded default (see `prepare`)."""
