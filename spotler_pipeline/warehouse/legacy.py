"""Convert, once, a warehouse file written by a newer DuckDB (the first release's DuckDB 2.x).

The package pins DuckDB 1.5.5: it is the only DuckDB for which the package registry has the
``ducklake`` and ``postgres`` extensions as wheels, so the lake works with no network. DuckDB
1.5.5 cannot open a file written by DuckDB 2.x ("Trying to read a database file with version
number 999, but we can only read versions between 64 and 68"), and release 0.1.0 wrote its
warehouse with DuckDB 2.0.1. :func:`upgrade_file_format` turns such a file into one DuckDB
1.5.5 reads, keeping every table (rows, DDL, comments) and view:

1. The file's header tells which storage version and DuckDB wrote it; when the installed DuckDB
   cannot read that storage version, the file needs converting.
2. The DuckDB that wrote it (``duckdb==<that version>``, 2.0.1 for release 0.1.0) is installed
   once in a side folder with ``python -m pip install --target``: ``$SPOTLER_LEGACY_DUCKDB_DIR``
   if set, else ``<venv>/share/spotler_pipeline/duckdb2`` (or ``~/.cache/spotler_pipeline/duckdb2``
   when the venv is not writable). A subprocess runs that DuckDB alone (``python -S``) and
   exports every table as Parquet plus a manifest (DDL, comments, row counts, views); see
   :mod:`._legacy_export`.
3. The installed DuckDB builds a new file beside the old one from the export and checks every
   table's row count against the old file's.
4. Swap: the old file is kept as ``<name>.duckdb2-backup`` (a hard link, so no copy) and the
   new file atomically replaces ``<name>``. A crash at any step leaves ``<name>`` a complete
   file, old or new; the next call simply starts again.

Concurrent callers (several run workers starting at once) take turns on a lock file beside the
warehouse; whoever comes second finds the file already converted.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from spotler_pipeline.warehouse.sql import sql_identifier, sql_string

#: Environment variable naming the folder for (or holding) the side installs of DuckDB 2.x.
LEGACY_DIR_ENV = "SPOTLER_LEGACY_DUCKDB_DIR"
#: The DuckDB that release 0.1.0 wrote its warehouse with; installed when a file's header does
#: not name a plain release version.
DEFAULT_LEGACY_DUCKDB = "2.0.1"
#: Suffix of the old file kept beside the converted one.
BACKUP_SUFFIX = ".duckdb2-backup"

_EXPORT_SCRIPT = Path(__file__).with_name("_legacy_export.py")
_MAGIC = b"DUCK"
_VERSION_ERRORS = ("version number", "can only read versions", "newer version of DuckDB")


class LegacyUpgradeError(RuntimeError):
    """The file needs converting and it could not be done; the message says what to do."""


@dataclass(frozen=True)
class FileHeader:
    """What a DuckDB file's main header says about who wrote it."""

    storage_version: int
    library_version: str | None  # e.g. "v2.0.1"; None in files written before DuckDB 1.2


def read_header(path: str | os.PathLike[str]) -> FileHeader | None:
    """The header of DuckDB file ``path``, or None if it is missing or not a DuckDB file."""
    try:
        with open(path, "rb") as f:
            head = f.read(128)
    except (FileNotFoundError, IsADirectoryError):
        return None
    if len(head) < 20 or head[8:12] != _MAGIC:
        return None
    storage = int.from_bytes(head[12:20], "little")
    raw = head[52:84].split(b"\0", 1)[0]
    library = raw.decode("ascii", "replace") if raw.startswith(b"v") else None
    return FileHeader(storage, library)


@functools.cache
def _own_storage_version() -> int:
    """The storage version the installed DuckDB writes (it can read it, by definition)."""
    with tempfile.TemporaryDirectory(prefix="spotler-duckdb-probe-") as tmp:
        probe = Path(tmp) / "probe.duckdb"
        duckdb.connect(str(probe)).close()
        header = read_header(probe)
        assert header is not None
        return header.storage_version


def _major(version: str | None) -> int | None:
    m = re.match(r"v?(\d+)\.", version or "")
    return int(m.group(1)) if m else None


def needs_upgrade(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a DuckDB file the installed DuckDB cannot open (newer format)."""
    header = read_header(path)
    if header is None or header.storage_version == _own_storage_version():
        return False
    conn = duckdb.connect()
    try:
        conn.execute(f"ATTACH {sql_string(str(path))} AS probe (READ_ONLY)")
        return False
    except duckdb.Error as exc:
        if any(s in str(exc) for s in _VERSION_ERRORS):
            return True
        own_major = _major(duckdb.__version__)
        file_major = _major(header.library_version)
        if own_major is not None and file_major is not None and file_major > own_major:
            raise LegacyUpgradeError(
                f"{path} was written by DuckDB {header.library_version} and must be converted "
                f"once for this DuckDB ({duckdb.__version__}), but it cannot be read now: {exc}. "
                "Stop the process using it (an older spotler_pipeline still running?) and retry."
            ) from None
        return False  # e.g. locked by a writer of our own version: the caller's open handles it
    finally:
        conn.close()


def upgrade_file_format(path: str | os.PathLike[str]) -> bool:
    """Convert ``path`` in place if it was written by a DuckDB too new to read it.

    Returns True if it converted the file (the old one is kept as ``<name>.duckdb2-backup``),
    False if there was nothing to do (no such file, or the installed DuckDB reads it). Raises
    :class:`LegacyUpgradeError` if the file needs converting and that failed; the warehouse is
    then exactly as it was.
    """
    path = Path(path)
    if not needs_upgrade(path):
        return False
    with _upgrade_lock(path):
        if not needs_upgrade(path):  # another process converted it while we waited
            return False
        header = read_header(path)
        assert header is not None
        side = ensure_legacy_duckdb(_wanted_version(header.library_version))
        _convert(path, side)
    return True


# -- the side install ------------------------------------------------------------------------


def _wanted_version(library_version: str | None) -> str:
    """The DuckDB release to read a file with: the one that wrote it, when that is a release."""
    m = re.fullmatch(r"v?(\d+\.\d+\.\d+)", library_version or "")
    return m.group(1) if m else DEFAULT_LEGACY_DUCKDB


def legacy_root() -> Path:
    """Where side installs of other DuckDB versions live (see the module docstring)."""
    if env := os.environ.get(LEGACY_DIR_ENV):
        return Path(env).expanduser()
    in_venv = Path(sys.prefix) / "share" / "spotler_pipeline" / "duckdb2"
    if sys.prefix != sys.base_prefix and _writable(in_venv):
        return in_venv
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "spotler_pipeline" / "duckdb2"


def _writable(folder: Path) -> bool:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _installed(target: Path, version: str) -> bool:
    return (target / "duckdb" / "__init__.py").is_file() and any(
        target.glob(f"duckdb-{version}.dist-info")
    )


def ensure_legacy_duckdb(version: str = DEFAULT_LEGACY_DUCKDB) -> Path:
    """The side folder holding ``duckdb==version``, installing it with pip if missing."""
    root = legacy_root()
    target = root / f"duckdb-{version}"
    if _installed(target, version):
        return target
    install = f"{sys.executable} -m pip install --no-deps --target {target} duckdb=={version}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".duckdb-{version}-", dir=root))
    except OSError as exc:
        reason = f"cannot create {root}: {exc}"
        raise LegacyUpgradeError(_install_advice(version, install, reason)) from None
    try:
        done = _pip_install(staging, version)
        if done.returncode != 0 or not _installed(staging, version):
            detail = (done.stderr or done.stdout).strip().splitlines()
            reason = "; ".join(detail[-3:]) or f"pip exited with {done.returncode}"
            raise LegacyUpgradeError(_install_advice(version, install, reason))
        staging.chmod(0o755)  # mkdtemp made it private; other users may convert files too
        try:
            staging.rename(target)
        except OSError:
            if not _installed(target, version):  # not someone else's finished install
                raise
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _pip_install(target: Path, version: str) -> subprocess.CompletedProcess[str]:
    """``pip install --target`` DuckDB ``version`` (its wheel has no required dependencies)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--no-deps",
            "--target",
            str(target),
            f"duckdb=={version}",
        ],
        capture_output=True,
        text=True,
        timeout=1800,
    )


def _install_advice(version: str, command: str, reason: str) -> str:
    return (
        f"This warehouse file was written by DuckDB {version} (spotler_pipeline 0.1.0) and "
        f"must be converted once for DuckDB {duckdb.__version__}. The conversion reads it with "
        f"DuckDB {version} installed in a side folder, and installing that failed ({reason}). "
        f"Run `{command}` (or install duckdb=={version} into any folder and set "
        f"{LEGACY_DIR_ENV} to the folder that contains duckdb-{version}/), then retry. "
        "The warehouse file is unchanged."
    )


# -- the conversion --------------------------------------------------------------------------


@contextlib.contextmanager
def _upgrade_lock(path: Path) -> Iterator[None]:
    lock_path = path.with_name(path.name + ".upgrade-lock")
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                lock_path.unlink()
            fcntl.flock(lock, fcntl.LOCK_UN)


def _convert(path: Path, side: Path) -> None:
    export = path.with_name(path.name + ".duckdb2-export")
    new = path.with_name(path.name + ".converting")
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    for leftover in (export, new, Path(f"{new}.wal")):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    try:
        manifest = _export(path, side, export)
        _build(new, export, manifest)
        _swap(path, new, backup)
    finally:
        shutil.rmtree(export, ignore_errors=True)
        for leftover in (new, Path(f"{new}.wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _export(path: Path, side: Path, export: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(_EXPORT_SCRIPT), str(side), str(path), str(export)],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
    )
    if done.returncode != 0:
        raise LegacyUpgradeError(
            f"exporting {path} with the DuckDB in {side} failed (exit {done.returncode}): "
            f"{done.stderr.strip()[-2000:]}. The warehouse file is unchanged."
        )
    manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
    if manifest["unsupported"]:
        raise LegacyUpgradeError(
            f"{path} holds objects the conversion does not carry over: "
            f"{', '.join(manifest['unsupported'])}. The warehouse file is unchanged."
        )
    return manifest


def _build(new: Path, export: Path, manifest: dict) -> None:
    conn = duckdb.connect(
        config={"memory_limit": "256MB", "temp_directory": str(export / ".spill-new")}
    )
    try:
        conn.execute(f"ATTACH {sql_string(str(new))} AS converted")
        conn.execute("USE converted")
        for schema in manifest["schemas"]:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_identifier(schema)}")
        for t in manifest["tables"]:
            name = f"{sql_identifier(t['schema'])}.{sql_identifier(t['name'])}"
            conn.execute(t["sql"])
            conn.execute(
                f"INSERT INTO {name} BY NAME "
                f"SELECT * FROM read_parquet({sql_string(str(export / t['file']))})"
            )
            if t["comment"] is not None:
                conn.execute(f"COMMENT ON TABLE {name} IS {sql_string(t['comment'])}")
            for col in t["columns"]:
                if col["comment"] is not None:
                    conn.execute(
                        f"COMMENT ON COLUMN {name}.{sql_identifier(col['name'])} "
                        f"IS {sql_string(col['comment'])}"
                    )
        _create_views(conn, manifest["views"])
        mismatches = []
        for t in manifest["tables"]:
            name = f"{sql_identifier(t['schema'])}.{sql_identifier(t['name'])}"
            got = conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]
            if got != t["rows"]:
                mismatches.append(f"{t['schema']}.{t['name']}: {got} rows, expected {t['rows']}")
        if mismatches:
            raise LegacyUpgradeError(
                "the converted warehouse does not match the old one ("
                + "; ".join(mismatches)
                + "). The warehouse file is unchanged."
            )
        conn.execute("CHECKPOINT converted")
    finally:
        conn.close()


def _create_views(conn: duckdb.DuckDBPyConnection, views: list[dict]) -> None:
    """Create views, in whatever order their dependencies on each other allow."""
    pending = list(views)
    while pending:
        failed: list[tuple[dict, duckdb.Error]] = []
        for v in pending:
            try:
                conn.execute(v["sql"])
            except duckdb.CatalogException as exc:  # refers to a view not created yet
                failed.append((v, exc))
                continue
            if v["comment"] is not None:
                conn.execute(
                    f"COMMENT ON VIEW {sql_identifier(v['schema'])}.{sql_identifier(v['name'])} "
                    f"IS {sql_string(v['comment'])}"
                )
        if len(failed) == len(pending):
            raise LegacyUpgradeError(
                "cannot recreate views "
                + "; ".join(f"{v['schema']}.{v['name']}: {exc}" for v, exc in failed)
                + ". The warehouse file is unchanged."
            )
        pending = [v for v, _ in failed]


def _swap(path: Path, new: Path, backup: Path) -> None:
    if backup.exists():
        raise LegacyUpgradeError(
            f"{backup} already exists; move it away and retry. The warehouse file is unchanged."
        )
    try:
        os.link(path, backup)  # keep the old file under its new name without copying it
    except OSError:
        shutil.copy2(path, backup)
    os.replace(new, path)
    with contextlib.suppress(FileNotFoundError):
        os.replace(f"{path}.wal", f"{backup}.wal")  # exported already; never replay it here
