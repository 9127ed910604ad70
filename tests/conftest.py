"""Shared test fixtures.

System components (Mosquitto, PostgreSQL) are real. When one is missing a
test skips with the reason locally; under CI (``CI=true``) the same test
fails, because `.ci/run` installs them and a skip there would hide a gap.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_configure(config: pytest.Config) -> None:
    """Commands print for a terminal 200 columns wide, whatever runs the tests: rich otherwise asks the
    terminal (or takes 80 without one), and a table's layout would depend on who ran the suite."""
    os.environ["COLUMNS"] = "200"


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


TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
"""Real photos and video, used by path (never copied into the repository)."""


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    """../shared/testdata/faces, or skip/fail when it is absent."""
    require((TESTDATA / "faces" / "known").is_dir(), f"test photos not found at {TESTDATA / 'faces'}")
    return TESTDATA / "faces"


# --------------------------------------------------------------------------
# Databases: a throwaway PostgreSQL cluster per session, a fresh database
# per test on both backends.
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_cluster():
    """A running throwaway PostgreSQL cluster (see tests/pg_proc.py).

    ``pg_cluster.url`` is ``postgresql://postgres@127.0.0.1:PORT/hallwatch_test``;
    ``pg_cluster.create_database()`` returns the URL of a new empty database.
    Skips locally / fails in CI when the PostgreSQL server is not installed.
    """
    try:
        from pg_proc import find_pg_bindir, start_postgres
    except ImportError:  # tests/ became a package
        from tests.pg_proc import find_pg_bindir, start_postgres

    bindir = find_pg_bindir()
    require(bindir is not None, "PostgreSQL server (initdb, pg_ctl) is not installed (apt-get install postgresql)")
    with start_postgres(bindir) as cluster:
        yield cluster


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request, tmp_path):
    """The URL of a fresh, empty database: SQLite in tmp_path, or a new
    database on the session's PostgreSQL cluster (dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/t.db"
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database()
    yield url
    cluster.drop_database(url.rsplit("/", 1)[1])
