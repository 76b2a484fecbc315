"""Where keys come from (flags, the environment, a key file that can change while serving) and where an open
server may listen.

The key file holds one key per line (`#` comments and blank lines ignored), plain or as `sha256:<hex>`. It is
re-read on SIGHUP and whenever its modification time, size or inode changes (checked every second: a stat call,
which also sees an atomic rename or a Kubernetes secret's symlink swap), so keys rotate without a restart. A file
that cannot be read keeps the keys already loaded; an empty one accepts no key at all, never none required.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vresponses.api.auth import KeyFormatError, Keys, digest_of

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "ip6-localhost")


class ExposureError(ValueError):
    """The server would listen beyond this machine without any key."""


def read_key_file(path: Path) -> list[str]:
    """The keys a key file lists, each validated; raise OSError or KeyFormatError (naming the line, not the key)."""
    keys = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        try:
            digest_of(entry)
        except KeyFormatError as exc:
            raise KeyFormatError(f"{path}, line {number}: {exc}") from None
        keys.append(entry)
    return keys


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server reachable from this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, keys_configured: bool, allow_unauthenticated: bool) -> str | None:
    """Refuse an open server beyond loopback unless allowed; return a warning to print when it is allowed."""
    if keys_configured or is_loopback(host):
        return None
    if not allow_unauthenticated:
        raise ExposureError(
            f"refusing to listen on {host} without an API key: anyone who can reach it could use it. "
            "Pass --api-key, --api-key-file or VRESPONSES_API_KEY, bind to 127.0.0.1, "
            "or pass --allow-unauthenticated to serve openly anyway."
        )
    return f"serving on {host} WITHOUT authentication (--allow-unauthenticated): anyone who can reach it can use it"


def check_sources(given: Sequence[str], file: Path | None, host: str, allow_unauthenticated: bool) -> str | None:
    """Validate the key configuration before serving (raise ValueError naming the problem, never a key) and
    return a warning to print, if any."""
    for key in given:
        if not key.strip():
            raise KeyFormatError("an API key is empty (--api-key '' or an empty VRESPONSES_API_KEY): refusing to serve")
        digest_of(key)
    if file is not None:
        try:
            read_key_file(file)
        except OSError as exc:
            raise KeyFormatError(f"cannot read the key file: {exc.strerror} ({file})") from None
    return check_exposure(host, bool(given) or file is not None, allow_unauthenticated)


@dataclass
class KeySources:
    """The configured sources: keys given directly (flags, environment) and an optional key file."""

    given: Sequence[str] = ()
    file: Path | None = None

    @property
    def configured(self) -> bool:
        """Whether any key source is configured (then every request needs a key, even if none is listed)."""
        return bool(self.given) or self.file is not None

    def load(self) -> Keys:
        """The keys at start-up; an unreadable key file is an error here (there is nothing to keep)."""
        keys = list(self.given)
        if self.file is not None:
            keys += read_key_file(self.file)
        return Keys(keys, required=self.configured)


class KeyFileWatcher:
    """Re-reads the key file when it changes or on demand (SIGHUP) and swaps the accepted keys."""

    def __init__(self, sources: KeySources, keys: Keys, interval: float = 1.0) -> None:
        assert sources.file is not None
        self.path = sources.file
        self.given = list(sources.given)
        self.keys = keys
        self.interval = interval
        self.reloads = 0
        self._seen = self._signature()
        self._task: asyncio.Task[None] | None = None

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def reload(self) -> bool:
        """Read the file now and accept exactly its keys (plus the given ones); False if it could not be read."""
        self._seen = self._signature()
        try:
            listed = read_key_file(self.path)
        except (OSError, KeyFormatError, UnicodeDecodeError) as exc:
            log.error("key file not reloaded, keeping the current keys: %s", exc)
            return False
        self.keys.replace([*self.given, *listed])
        self.reloads += 1
        log.info("key file reloaded: %d keys accepted", len(self.keys))
        return True

    def start(self) -> None:
        """Watch the file for changes (in the running event loop)."""
        self._task = asyncio.create_task(self._watch(), name="key file watcher")

    async def close(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if self._signature() != self._seen:
                self.reload()
