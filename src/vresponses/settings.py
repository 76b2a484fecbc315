"""One settings object; the CLI builds it and nothing else reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vresponses.engines.remote import RemoteOptions
from vresponses.engines.vllm_local import VllmOptions
from vresponses.pipeline.admission import AdmissionLimits
from vresponses.pipeline.limits import Limits
from vresponses.pipeline.ratelimit import KeyLimits
from vresponses.websearch.config import KEY_VARIABLES


def default_home() -> Path:
    """The data directory: $VRESPONSES_HOME, else ~/.cache/vresponses."""
    return Path(os.environ.get("VRESPONSES_HOME") or Path.home() / ".cache" / "vresponses")


def env_api_keys() -> tuple[str, ...]:
    """Keys from VRESPONSES_API_KEY (space-separated), besides any --api-key; set but blank is one empty key,
    which the server refuses rather than serving without one."""
    value = os.environ.get("VRESPONSES_API_KEY")
    if value is None:
        return ()
    return tuple(value.split()) or ("",)


def search_keys() -> dict[str, str]:
    """The web search providers' API keys set in the environment (BRAVE_API_KEY, TAVILY_API_KEY)."""
    return {name: os.environ[name] for name in KEY_VARIABLES.values() if os.environ.get(name)}


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
    # The dialect served under /v1 (each is also under /gradient/v1 and /openai/v1).
    dialect: str = "gradient"
    tool_call_parser: str = "hermes"
    reasoning_parser: str | None = None
    max_body_bytes: int = 8 * 1024 * 1024
    limits: Limits = field(default_factory=Limits)
    max_background_jobs: int = 16
    max_background_jobs_per_key: int = 8
    retention_max_age_seconds: float | None = 30 * 24 * 3600
    retention_max_rows: int | None = 1_000_000
    retention_max_rows_per_key: int | None = 100_000
    # --web-search PROVIDER[=CONFIG]; None: a request that asks for web search is a 400.
    web_search: str | None = None
    web_search_timeout: float = 10.0
    # Searches one response may make (a request's max_tool_calls may lower it).
    web_search_max_calls: int = 3
    search_keys: Mapping[str, str] = field(default_factory=search_keys)
    # Resilience: where keys come from, admission bounds, and how the server ends and recovers.
    api_key_file: Path | None = None
    allow_unauthenticated: bool = False
    admission: AdmissionLimits = field(default_factory=AdmissionLimits)
    key_limits: KeyLimits = field(default_factory=KeyLimits)
    drain_timeout: float = 30.0
    engine_restarts: int = 3

    @property
    def store(self) -> str:
        """The store URL: the given one, or a SQLite file in the data directory."""
        return self.store_url or f"sqlite:///{self.home / 'responses.db'}"
