"""One settings object; the CLI builds it and nothing else reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from vresponses.engines.remote import RemoteOptions
from vresponses.engines.vllm_local import VllmOptions


def default_home() -> Path:
    """The data directory: $VRESPONSES_HOME, else ~/.cache/vresponses."""
    return Path(os.environ.get("VRESPONSES_HOME") or Path.home() / ".cache" / "vresponses")


@dataclass(frozen=True)
class Settings:
    """Everything the server is configured with."""

    # The engine and its options, named as vLLM names them (vllm itself is imported only when it starts).
    engine: VllmOptions = field(default_factory=lambda: VllmOptions(model=""))
    # Set when --engine-url names vLLM replicas: they generate and this process renders, routes and stores.
    remote: RemoteOptions | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = ()
    home: Path = field(default_factory=default_home)
    store_url: str | None = None
    tool_call_parser: str = "hermes"
    reasoning_parser: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    max_background_jobs: int = 16
    retention_max_age_seconds: float | None = 30 * 24 * 3600
    retention_max_rows: int | None = 1_000_000

    @property
    def store(self) -> str:
        """The store URL: the given one, or a SQLite file in the data directory."""
        return self.store_url or f"sqlite:///{self.home / 'responses.db'}"
