"""Convert, once, a warehouse file written by a newer DuckDB (the first release's DuckDB 2.x).

The package pins DuckDB 1.5.5: it is the only DuckDB for which the package registry has the
``ducklake`` and ``postgres`` extensions as wheels, so the lake works with no network. DuckDB
1.5.5 cannot open a file written by DuckDB 2.x ("Trying to read a database file with version
number 999, but we can only read versions between 64 and 68"), and release 0.1.0 wrote its
warehouse with DuckDB 2.0.1. Opening such a file fails with :class:`LegacyFileError`, one line
naming the command that converts it, ``spotler-pipeline convert-legacy``; the file is left as
it is. The command (:func:`convert_legacy_file`) turns it into one DuckDB 1.5.5 reads, keeping
every table (rows, DDL, comments) and view:

1. The file's header tells which storage version and DuckDB wrote it; when the installed DuckDB
   cannot read that storage version, the file needs converting.
2. DuckDB 2.0.1 is installed once in a side folder with ``python -m pip install --target
   --require-hashes``, its wheels' SHA-256 pinned here (:data:`LEGACY_DUCKDB_WHEELS`): in
   ``$SPOTLER_LEGACY_DUCKDB_DIR`` if set, else ``<venv>/share/spotler_pipeline/duckdb2`` (or
   ``~/.cache/spotler_pipeline/duckdb2`` when the venv is not writable). The command says what
   it installs where before it does. A subprocess runs that DuckDB alone (``python -S``) and
   exports every table as Parquet plus a manifest (DDL, comments, row counts, views); see
   :mod:`._legacy_export`.
3. The installed DuckDB builds a new file beside the old one from the export and checks every
   table's row count against the old file's.
4. Swap: the old file is kept as ``<name>.duckdb2-backup`` (a hard link, so no copy) and the
   new file atomically replaces ``<name>``. A crash at any step leaves ``<name>`` a complete
   file, old or new; the next call simply starts again.

Two conversions started at once take turns on a lock file beside the warehouse; whoever comes
second finds the file already converted.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from spotler_pipeline.warehouse.sql import sql_identifier, sql_string

#: Environment variable naming the folder for (or holding) the side installs of DuckDB 2.x.
LEGACY_DIR_ENV = "SPOTLER_LEGACY_DUCKDB_DIR"
#: The DuckDB that release 0.1.0 wrote its warehouse with, the one the conversion installs.
DEFAULT_LEGACY_DUCKDB = "2.0.1"
#: SHA-256 of each published wheel of DuckDB 2.0.1 that pip may install (``--require-hashes``):
#: CPython 3.11 and 3.12+ (abi3) on Linux x86_64 and aarch64 (manylinux 2.28) and macOS arm64,
#: as the package registry lists them. Elsewhere pip refuses, and the error says how to
#: provide DuckDB 2.0.1 by hand (:data:`LEGACY_DIR_ENV`).
LEGACY_DUCKDB_WHEELS = {
    "duckdb-2.0.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl": (
        "eb32b389d99d14cbbec4c110f58237c77eacefc65ef6f737619f413c97a91a77"
    ),
    "duckdb-2.0.1-cp311-cp311-manylinux_2_26_aarch64.manylinux_2_28_aarch64.whl": (
        "dd8961476eb9e048d1e784eb6bad7aad39304d72b4e4fd8c021f1863b7ee6425"
    ),
    "duckdb-2.0.1-cp311-cp311-macosx_11_0_arm64.whl": (
        "6034635ec5da2d204e671858287aba90b9174d3e2773db6680f939cbfb810683"
    ),
    "duckdb-2.0.1-cp312-abi3-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl": (
        "39ffeb136abed770a496e5592a464f18a07b1543e7ddb1ff6453215e179f1647"
    ),
    "duckdb-2.0.1-cp312-abi3-manylinux_2_26_aarch64.manylinux_2_28_aarch64.whl": (
        "ba06918b64d4061bd9ed722dc10adf66f9a10f96426e2403db93a36f590ba3dc"
    ),
    "duckdb-2.0.1-cp312-abi3-macosx_11_0_arm64.whl": (
        "68ff6c4ff3dda16762019db0591ee775954094c266f99e16212884a4e656009d"
    ),
}
#: The command that converts a file (the one line a refused open names).
CONVERT_COMMAND = "spotler-pipeline convert-legacy"
#: Suffix of the old file kept beside the converted one.
BACKUP_SUFFIX = ".duckdb2-backup"

_EXPORT_SCRIPT = Path(__file__).with_name("_legacy_export.py")
_MAGIC = b"DUCK"
_VERSION_ERRORS = ("version number", "can only read versions", "newer version of DuckDB")


class LegacyUpgradeError(RuntimeError):
    """The file needs converting and it could not be done; the message says what to do."""


class LegacyFileError(LegacyUpgradeError):
    """A warehouse file written by DuckDB 2.x was opened: it must be converted first, with
    ``spotler-pipeline convert-legacy``; nothing was changed."""


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert_legacy_file` did: the file converted, where the old one is kept,
    and what it carried over."""

    path: Path
    backup: Path
    written_by: str
    tables: int
    views: int
    rows: int

    def describe(self) -> str:
        return (
            f"converted {self.path} (written by DuckDB {self.written_by}) for DuckDB "
            f"{duckdb.__version__}: {self.tables} tables with {self.rows:,} rows and "
            f"{self.views} views; the old file is kept as {self.backup}"
        )


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


def refuse_legacy(path: str | os.PathLike[str]) -> None:
    """Raise :class:`LegacyFileError` if ``path`` was written by a DuckDB too new to open it."""
    if needs_upgrade(path):
        header = read_header(path)
        written_by = (header.library_version if header else None) or "2.x"
        raise LegacyFileError(
            f"{path} was written by DuckDB {written_by.lstrip('v')} (spotler_pipeline 0.1.0) and "
            f"DuckDB {duckdb.__version__} cannot open it: convert it once with "
            f"`{CONVERT_COMMAND} --database {path}` (the file is unchanged)"
        )


def convert_legacy_file(
    path: str | os.PathLike[str], *, say: Callable[[str], None] = lambda _msg: None
) -> Conversion | None:
    """Convert ``path`` in place if it was written by a DuckDB too new to read it, telling
    ``say`` what it installs and does.

    Returns what it converted (the old file is kept as ``<name>.duckdb2-backup``), or None if
    there was nothing to do (no such file, or the installed DuckDB reads it). Raises
    :class:`LegacyUpgradeError` if the file needs converting and that failed; the warehouse is
    then exactly as it was.
    """
    path = Path(path)
    if not needs_upgrade(path):
        return None
    with _upgrade_lock(path):
        if not needs_upgrade(path):  # another process converted it while we waited
            return None
        header = read_header(path)
        assert header is not None
        side = ensure_legacy_duckdb(_wanted_version(header.library_version), say=say)
        say(f"exporting {path} with the DuckDB in {side}")
        return _convert(path, side, (header.library_version or "2.x").lstrip("v"))


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


def ensure_legacy_duckdb(
    version: str = DEFAULT_LEGACY_DUCKDB, *, say: Callable[[str], None] = lambda _msg: None
) -> Path:
    """The side folder holding ``duckdb==version``, installing it with pip if missing (only
    :data:`DEFAULT_LEGACY_DUCKDB`, whose wheels' hashes are pinned; another version must be
    provided by hand)."""
    root = legacy_root()
    target = root / f"duckdb-{version}"
    if _installed(target, version):
        return target
    if version != DEFAULT_LEGACY_DUCKDB:
        reason = f"only DuckDB {DEFAULT_LEGACY_DUCKDB} is installed automatically"
        raise LegacyUpgradeError(_install_advice(version, target, reason))
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".duckdb-{version}-", dir=root))
    except OSError as exc:
        reason = f"cannot create {root}: {exc}"
        raise LegacyUpgradeError(_install_advice(version, target, reason)) from None
    try:
        say(
            f"installing duckdb=={version} into {target} with pip, checked against the "
            "SHA-256 of its wheels pinned in spotler_pipeline.warehouse.legacy"
        )
        done = _pip_install(staging, version)
        if done.returncode != 0 or not _installed(staging, version):
            detail = (done.stderr or done.stdout).strip().splitlines()
            reason = "; ".join(detail[-3:]) or f"pip exited with {done.returncode}"
            raise LegacyUpgradeError(_install_advice(version, target, reason))
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
    """``pip install --target`` DuckDB ``version`` (its wheel has no required dependencies),
    only a wheel whose SHA-256 is one of :data:`LEGACY_DUCKDB_WHEELS`."""
    hashes = " ".join(f"--hash=sha256:{h}" for h in LEGACY_DUCKDB_WHEELS.values())
    with tempfile.TemporaryDirectory(prefix="spotler-duckdb-pin-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"duckdb=={version} {hashes}\n", encoding="utf-8")
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
                "--only-binary=:all:",
                "--require-hashes",
                "--target",
                str(target),
                "-r",
                str(requirements),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )


def _install_advice(version: str, target: Path, reason: str) -> str:
    return (
        f"This warehouse file was written by DuckDB {version} (spotler_pipeline 0.1.0); "
        f"converting it reads it with DuckDB {version} installed in a side folder, and "
        f"installing that failed ({reason}). Install duckdb=={version} into {target} yourself "
        f"(`python -m pip install --no-deps --target {target} duckdb=={version}`), or into any "
        f"folder and set {LEGACY_DIR_ENV} to the folder that contains duckdb-{version}/, then "
        f"run `{CONVERT_COMMAND}` again. The warehouse file is unchanged."
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


def _convert(path: Path, side: Path, written_by: str) -> Conversion:
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
        return Conversion(
            path,
            backup,
            written_by,
            tables=len(manifest["tables"]),
            views=len(manifest["views"]),
            rows=sum(t["rows"] for t in manifest["tables"]),
        )
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
