"""A spill folder of its own for every DuckDB connection of the warehouse file.

DuckDB spills what does not fit its ``memory_limit`` into ``temp_directory`` under file names
that are the same in every database instance (``duckdb_temp_storage_S64K-0.tmp``), and
deletes them when done. Two processes spilling into one folder (a writing run and a check
or notebook reading the published copy) delete each other's files: "Could not remove file
.../duckdb_temp_storage_S224K-0.tmp" (the lake met the same in ``warehouse/lake.py``). So
each connection gets ``<base>/<pid>-<random>``: DuckDB creates it when it first spills and
removes it when the connection closes.

A process killed with ``kill -9`` cannot remove its folder, and spill files can be
gigabytes. Beside each folder a ``.lock`` file is held with ``flock`` for as long as its
connection lives (the kernel drops a dead process's locks, across containers sharing the
disk too, where process ids say nothing); every new connection first removes the folders in
``base`` whose lock nobody holds.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import weakref
from pathlib import Path

from spotler_pipeline.warehouse.abandoned import remove_if_abandoned

__all__ = ["SpillFolder", "remove_abandoned_spill"]

_LOCK_SUFFIX = ".lock"


class SpillFolder:
    """A spill folder for one connection (``path``, for ``temp_directory``) in ``base``.

    Call :meth:`keep_while` with the connection once it is open (the lock is then released
    when the connection is garbage-collected), or :meth:`release` if it could not be opened.
    :attr:`abandoned` lists the folders of dead processes removed on the way in.
    """

    def __init__(self, base: str | os.PathLike[str]) -> None:
        self.base = Path(base)
        self.abandoned: list[Path] = []
        self._fd = -1
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            self.abandoned = remove_abandoned_spill(self.base)
            self._claim()
        except OSError:
            # Read-only or missing disk: opening still works, only a statement that has to
            # spill fails (DuckDB says where).
            self.path = str(self.base / f"{os.getpid()}-{os.urandom(4).hex()}")

    def _claim(self) -> None:
        while True:
            self.path = str(self.base / f"{os.getpid()}-{os.urandom(4).hex()}")
            self._lock_path = Path(self.path + _LOCK_SUFFIX)
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            if _same_file(fd, self._lock_path):
                self._fd = fd
                return
            # Another process's sweep took the lock file between its creation and the lock.
            os.close(fd)

    def keep_while(self, connection: object) -> None:
        """Hold the folder until ``connection`` is gone (DuckDB removes the folder itself
        when the connection closes)."""
        if self._fd >= 0:
            weakref.finalize(connection, _release, self._lock_path, self._fd)
            self._fd = -1

    def release(self) -> None:
        """Give the folder up now (the connection was never opened, or is closed)."""
        if self._fd >= 0:
            shutil.rmtree(self.path, ignore_errors=True)
            _release(self._lock_path, self._fd)
            self._fd = -1


def _release(lock_path: Path, fd: int) -> None:
    # Unlinked before unlocking: a sweeper that finds the lock free finds no file either.
    lock_path.unlink(missing_ok=True)
    os.close(fd)


def remove_abandoned_spill(base: Path) -> list[Path]:
    """Remove spill folders in ``base`` that no living connection holds; return them.

    A folder whose lock is free belonged to a dead process (so does a free lock without a
    folder: its connection never spilled). A folder without a lock file was given up, and
    DuckDB removes it a moment later; only one untouched for a minute is taken.
    """
    if not base.is_dir():
        return []
    names = {e.name.removesuffix(_LOCK_SUFFIX) for e in base.iterdir()}
    return [
        base / name
        for name in sorted(names)
        if remove_if_abandoned(base / name, base / (name + _LOCK_SUFFIX))
    ]


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), path.stat())
    except OSError:
        return False
