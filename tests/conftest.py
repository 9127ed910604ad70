"""Shared test fixtures.

System components (Mosquitto, PostgreSQL) are real. When one is missing a
test skips with the reason locally; under CI (``CI=true``) the same test
fails, because `.ci/run` installs them and a skip there would hide a gap.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (in CI) when a system component is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"missing in CI: {reason}")
    pytest.skip(reason)


def require_executable(name: str) -> str:
    """Path of a system executable, or skip/fail naming the Debian package."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None
    )
    require(path is not None, f"{name} is not installed (apt-get install mosquitto mosquitto-clients postgresql)")
    assert path is not None
    return path
