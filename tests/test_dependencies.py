"""Dependency floors that security depends on: an older version admits known holes."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _requirement(name: str) -> Requirement:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (req,) = [Requirement(d) for d in deps if Requirement(d).name.lower() == name]
    return req


def test_jinja2_admits_no_version_with_a_known_sandbox_escape() -> None:
    # Model chat templates run in Jinja2's sandbox: 3.1.4 and older have CVE-2024-56326 (and 56201),
    # 3.1.5 has CVE-2025-27516; 3.1.6 fixes both.
    spec = _requirement("jinja2").specifier
    assert not any(spec.contains(v) for v in ("3.0.3", "3.1.0", "3.1.2", "3.1.4", "3.1.5"))
    assert spec.contains("3.1.6")


def test_schema_patterns_have_a_time_limited_engine() -> None:
    assert _requirement("regex").specifier.contains("2024.11.6")
