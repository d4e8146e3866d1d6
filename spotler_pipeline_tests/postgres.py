"""A throwaway PostgreSQL server for the lake tests: initdb + pg_ctl in a temp folder.

The cluster listens on 127.0.0.1 only, on a free port, with no Unix socket; its superuser
``postgres`` needs no password (nothing but this machine's loopback can reach it, and it lives
only as long as the test session), roles made with :meth:`PostgresServer.create_role` do.
PostgreSQL refuses to run as root, so when the tests run as root every server command runs as
the ``postgres`` user (``runuser``) and the temp folder is handed to that user.

The binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<major>/bin``);
:func:`postgres_binaries` finds them (or the folder in ``SPOTLER_TEST_PG_BIN``), and
:func:`ensure_postgres_binaries` installs the package with apt-get when they are missing and
we are root, as ``make postgresql`` does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

#: Superuser of the throwaway cluster (trust authentication on loopback).
SUPERUSER = "postgres"
#: The OS user that runs the server when the tests run as root.
OS_USER = "postgres"
#: The database created at start-up; tests wanting a lake of their own call
#: :meth:`PostgresServer.create_database`.
DEFAULT_DATABASE = "spotler_lake"


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing and cannot be installed here (the reason says why)."""


def postgres_binaries() -> Path | None:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    candidates: list[Path] = []
    if env := os.environ.get("SPOTLER_TEST_PG_BIN"):
        candidates.append(Path(env))
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(versions)
    if initdb := shutil.which("initdb"):
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return folder
    return None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def ensure_postgres_binaries(*, install: bool = True) -> Path:
    """Return the binaries folder, installing Debian's ``postgresql`` if missing and possible.

    Raises :class:`PostgresUnavailable` with the reason when there is no server to run.
    """
    found = postgres_binaries()
    if found is not None:
        return found
    if not install:
        raise PostgresUnavailable("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if not _is_root() or shutil.which("apt-get") is None:
        raise PostgresUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing and cannot be installed "
            "here (needs root and apt-get): run `make postgresql` as root, "
            "or `apt-get install postgresql`, or set SPOTLER_TEST_PG_BIN to their folder"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"])
    for step in steps:
        done = subprocess.run(step, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise PostgresUnavailable(
                f"PostgreSQL server binaries are missing and `{' '.join(step)}` failed "
                f"(exit {done.returncode}): {done.stderr.strip()[-500:]}"
            )
    found = postgres_binaries()
    if found is None:
        raise PostgresUnavailable("apt-get installed postgresql but initdb/pg_ctl were not found")
    return found


def _check_identifier(name: str) -> None:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain identifier: {name!r}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway cluster; :meth:`start` / :meth:`stop`, or use it as a context."""

    bin_dir: Path
    root: Path = field(init=False)
    port: int = field(init=False, default=0)
    host: str = "127.0.0.1"
    user: str = SUPERUSER
    dbname: str = DEFAULT_DATABASE
    _as_other_user: bool = field(init=False, default=False)

    # -- connection strings ---------------------------------------------------------------

    def dsn(self, dbname: str | None = None) -> str:
        """libpq key/value connection string (what DuckDB's postgres extension takes)."""
        return f"dbname={dbname or self.dbname} host={self.host} port={self.port} user={self.user}"

    def catalog(self, dbname: str | None = None) -> str:
        """The value for ``SPOTLER_DUCKLAKE_CATALOG``: ``postgres:<dsn>``."""
        return f"postgres:{self.dsn(dbname)}"

    # -- life cycle -------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = list(args)
        if self._as_other_user:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root, env=self._env()
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args[:2])} failed (exit {done.returncode}): "
                f"{(done.stdout + done.stderr).strip()[-2000:]}"
            )
        return done

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        env["LANG"] = "C"
        return env

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def start(self) -> PostgresServer:
        """initdb, configure loopback + a free port, start and create :attr:`dbname`."""
        # Not under pytest's tmp folder: that is private to root (0700) and the server runs as
        # another user when we are root.
        self.root = Path(tempfile.mkdtemp(prefix="spotler-pg-"))
        self._as_other_user = _is_root()
        if self._as_other_user:
            shutil.chown(self.root, OS_USER, OS_USER)
        bin_dir = self.bin_dir
        self._run(
            str(bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        self._write_hba()
        last_error: Exception | None = None
        for _attempt in range(5):
            self.port = _free_port()
            self._write_config()
            try:
                self._run(
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    "60",
                    "start",
                )
                break
            except RuntimeError as exc:  # e.g. the port was taken in between
                last_error = exc
                time.sleep(0.2)
        else:
            raise RuntimeError(f"PostgreSQL did not start: {last_error}\n{self._log_tail()}")
        self.create_database(self.dbname)
        return self

    def _write_hba(self) -> None:
        """Loopback only: the superuser without a password, every other role with one."""
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            f"host all {self.user} 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        if self._as_other_user:
            shutil.chown(hba, OS_USER, OS_USER)

    def _write_config(self) -> None:
        conf = self.data_dir / "postgresql.auto.conf"
        conf.write_text(
            "listen_addresses = '127.0.0.1'\n"
            f"port = {self.port}\n"
            "unix_socket_directories = ''\n"
            "max_connections = 200\n"
            # A throwaway cluster: durability buys nothing and costs the tests time.
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
        )
        if self._as_other_user:
            shutil.chown(conf, OS_USER, OS_USER)

    def _log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run ``sql`` with psql (superuser) and return its unaligned output."""
        done = self._run(
            str(self.bin_dir / "psql"),
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            self.dsn(dbname or "postgres"),
            "-c",
            sql,
        )
        return done.stdout.strip()

    def create_database(self, name: str, owner: str | None = None) -> str:
        """Create database ``name`` (an identifier) and return its ``postgres:`` catalog."""
        _check_identifier(name)
        owned = ""
        if owner is not None:
            _check_identifier(owner)
            owned = f' OWNER "{owner}"'
        self.psql(f'CREATE DATABASE "{name}"{owned}')
        return self.catalog(name)

    def create_role(self, name: str, password: str) -> None:
        """A login role that must give ``password`` (scram-sha-256 on loopback)."""
        _check_identifier(name)
        literal = "'" + password.replace("'", "''") + "'"
        self.psql(f'CREATE ROLE "{name}" LOGIN PASSWORD {literal}')

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is worth a clean shutdown) and delete it."""
        if not getattr(self, "root", None):
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-m",
                    "immediate",
                    "stop",
                )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_postgres(*, install: bool = True) -> PostgresServer:
    """Find (or install) the binaries and start a throwaway server."""
    return PostgresServer(ensure_postgres_binaries(install=install)).start()
