"""Run a throwaway PostgreSQL cluster for the test session.

    from pg_proc import find_pg_bindir, start_postgres   # tests/ is on sys.path

    with start_postgres() as cluster:                    # initdb + pg_ctl start
        url = cluster.url                                # .../hallwatch_test
        fresh = cluster.create_database()                # a new empty database
        ...
                                                         # pg_ctl stop -m fast, rm -rf

The cluster lives in a fresh temporary directory with trust authentication,
listens on 127.0.0.1 (a free port) and on a Unix socket inside that
directory, and runs with ``fsync=off``: it exists only to be thrown away.
PostgreSQL refuses to run as root, so when the tests run as root the cluster
is created and started as the ``postgres`` system user (``runuser``) and the
directory is handed to that user; otherwise it runs as the current user.

API: :func:`find_pg_bindir`, :func:`start_postgres`,
:class:`PostgresCluster` (``port``, ``url``, ``admin_url``, ``start()``,
``stop()``, ``create_database(name=None)``, ``drop_database(name)``,
``url_for(name)``, ``log()``, context manager) and :class:`PostgresError`.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

__all__ = ["PostgresCluster", "PostgresError", "find_pg_bindir", "start_postgres"]

PG_ROOT = Path("/usr/lib/postgresql")
DEFAULT_DB = "hallwatch_test"
SYSTEM_USER = "postgres"  # the OS user the server runs as when we are root
START_TIMEOUT_S = 60
_counter = itertools.count(1)


class PostgresError(RuntimeError):
    """The cluster could not be created, started or used; the message says why."""


def find_pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` holding initdb and pg_ctl, else
    the directory of ``pg_ctl`` on PATH when initdb sits beside it, else None."""
    candidates: list[tuple[tuple[int, ...], Path]] = []
    if PG_ROOT.is_dir():
        for child in PG_ROOT.iterdir():
            version = tuple(int(part) for part in re.findall(r"\d+", child.name))
            bindir = child / "bin"
            if version and (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
                candidates.append((version, bindir))
    if candidates:
        return max(candidates)[1]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl and (Path(pg_ctl).parent / "initdb").exists():
        return Path(pg_ctl).parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _valid_name(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain database name: {name!r}")
    return name


class PostgresCluster:
    """One ``initdb``'d data directory and the ``postgres`` server running on it.

    Construction creates nothing; :meth:`start` runs initdb (once), starts the
    server and creates the database ``hallwatch_test``; :meth:`stop` stops the
    server and removes the directory.
    """

    def __init__(self, bindir: Path | None = None, *, base_dir: Path | None = None) -> None:
        found = bindir or find_pg_bindir()
        if found is None:
            raise PostgresError(f"PostgreSQL server binaries (initdb, pg_ctl) not found under {PG_ROOT}/*/bin")
        self.bindir = Path(found)
        self.as_root = os.geteuid() == 0
        self._runuser: list[str] = []
        if self.as_root:
            try:
                pw = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresError(f"running as root but there is no {SYSTEM_USER!r} system user to run PostgreSQL") from None
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            if not os.path.exists(runuser):
                raise PostgresError("running as root but runuser is missing (util-linux)")
            self._runuser = [runuser, "-u", SYSTEM_USER, "--"]
            self._uid, self._gid = pw.pw_uid, pw.pw_gid
        # Not under pytest's tmp_path: /tmp/pytest-of-root is 0700 and the
        # postgres user could not reach it.  Short, too: the socket path
        # must stay under ~100 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="hw-pg-", dir=base_dir))
        self.datadir = self.root / "data"
        self.sockdir = self.root / "sock"
        self.log_path = self.root / "server.log"
        self.port = 0
        self._initialised = False
        self._running = False
        if self.as_root:
            os.chown(self.root, self._uid, self._gid)
        os.chmod(self.root, 0o700)

    # ------------------------------------------------------------- URLs

    @property
    def url(self) -> str:
        """The session database, ``postgresql://postgres@127.0.0.1:PORT/hallwatch_test``."""
        return self.url_for(DEFAULT_DB)

    @property
    def admin_url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    # --------------------------------------------------------- processes

    def _run(self, args: list[str], what: str) -> subprocess.CompletedProcess[str]:
        cmd = self._runuser + args
        try:
            result = subprocess.run(
                cmd, cwd=self.root, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30,
                env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            )
        except subprocess.TimeoutExpired as exc:
            raise PostgresError(f"{what} timed out: {' '.join(cmd)}\n{self.log()}") from exc
        return result

    def _initdb(self) -> None:
        if self._initialised:
            return
        if self.as_root:
            for sub in (self.sockdir,):
                sub.mkdir(exist_ok=True)
                os.chown(sub, self._uid, self._gid)
        else:
            self.sockdir.mkdir(exist_ok=True)
        errors = []
        for locale in ("C.UTF-8", "C"):
            result = self._run(
                [str(self.bindir / "initdb"), "-D", str(self.datadir), "--auth=trust", "-U", "postgres",
                 "--encoding=UTF8", f"--locale={locale}", "--no-sync"],
                "initdb",
            )
            if result.returncode == 0:
                self._initialised = True
                return
            errors.append(f"--locale={locale}:\n{result.stdout}{result.stderr}")
            shutil.rmtree(self.datadir, ignore_errors=True)
        raise PostgresError("initdb failed:\n" + "\n".join(errors))

    def start(self) -> PostgresCluster:
        """initdb (first time), start the server on a free port, create ``hallwatch_test``."""
        if self._running:
            return self
        self._initdb()
        failures = []
        for _attempt in range(3):  # a free port may be taken before the server binds it
            self.port = _free_port()
            options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockdir} -c fsync=off"
            result = self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.log_path),
                 "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start"],
                "pg_ctl start",
            )
            if result.returncode == 0:
                self._running = True
                break
            failures.append(f"port {self.port}: {result.stdout}{result.stderr}")
            if "already in use" not in self.log():
                break
        if not self._running:
            raise PostgresError(
                "PostgreSQL did not start:\n" + "\n".join(failures) + f"\n--- {self.log_path} ---\n{self.log()}"
            )
        self.create_database(DEFAULT_DB)
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete the cluster directory."""
        try:
            if self._running:
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"], "pg_ctl stop")
                self._running = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """The server log so far (for failure messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no server log)"

    # --------------------------------------------------------- databases

    def _admin(self, sql: str) -> None:
        import psycopg

        try:
            with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
                conn.execute(sql)  # type: ignore[arg-type]
        except psycopg.Error as exc:
            raise PostgresError(f"{sql!r} failed: {exc}\n--- {self.log_path} ---\n{self.log()}") from exc

    def create_database(self, name: str | None = None) -> str:
        """Create a new empty database (a generated name by default); its URL."""
        name = _valid_name(name or f"hw_t{os.getpid()}_{next(_counter)}")
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, disconnecting anyone still connected to it."""
        self._admin(f'DROP DATABASE IF EXISTS "{_valid_name(name)}" WITH (FORCE)')

    def __enter__(self) -> PostgresCluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_postgres(bindir: Path | None = None, *, base_dir: Path | None = None) -> PostgresCluster:
    """A cluster not yet started; use it as a context manager (or start()/stop())."""
    return PostgresCluster(bindir, base_dir=base_dir)
