"""vresponses: the Responses API (`POST /v1/responses`) served from a vLLM engine."""

__version__ = "0.1.0"
