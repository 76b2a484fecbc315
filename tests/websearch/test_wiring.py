"""--web-search at start: the provider made from settings (keys from the settings' environment), or a clean error."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from vresponses.cli import _search_provider
from vresponses.settings import Settings
from vresponses.websearch.local import LocalIndex


async def test_local_index_from_settings(tmp_path: Path) -> None:
    (tmp_path / "paris.md").write_text("# Paris\nParis is the capital of France.\n")
    provider = _search_provider(Settings(web_search=f"local={tmp_path}"))
    assert isinstance(provider, LocalIndex) and provider.documents == 1
    await provider.aclose()


def test_no_flag_no_provider() -> None:
    assert _search_provider(Settings()) is None


@pytest.mark.parametrize(("spec", "says"), [("nope", "names no provider"), ("brave", "BRAVE_API_KEY")])
def test_bad_values_are_a_clean_cli_error(spec: str, says: str) -> None:
    with pytest.raises(typer.BadParameter, match=says):
        _search_provider(Settings(web_search=spec, search_keys={}))


async def test_keys_come_from_the_settings() -> None:
    provider = _search_provider(Settings(web_search="brave", search_keys={"BRAVE_API_KEY": "k"}))
    assert provider is not None and provider.name == "brave"
    await provider.aclose()
