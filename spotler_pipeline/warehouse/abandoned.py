"""Folders a process works in while it lives, and their removal once it is gone.

A run's staging folder and a connection's spill folder are each held by an ``flock`` on a
lock file for as long as their process lives. The kernel drops the lock when the process
dies, ``kill -9`` included, so whichever process comes next can tell a folder that is in use
from one that was abandoned, and remove only the latter.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from pathlib import Path

__all__ = ["remove_if_abandoned"]

#: A folder with no lock file yet may be one being created this instant: only one left
#: untouched this long is taken for abandoned (a crash between creating it and locking).
GRACE_SECONDS = 60.0


def remove_if_abandoned(folder: Path, lock: Path, grace_seconds: float = GRACE_SECONDS) -> bool:
    """Remove ``folder`` and ``lock`` unless a living process holds an flock on ``lock``;
    True when ``folder`` was removed."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except FileNotFoundError:
        if folder.is_dir() and _age(folder) > grace_seconds:
            shutil.rmtree(folder, ignore_errors=True)
            return True
        return False
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a living process holds it
        existed = folder.is_dir()
        shutil.rmtree(folder, ignore_errors=True)
        lock.unlink(missing_ok=True)  # a lock inside the folder went with it
        return existed
    finally:
        os.close(fd)


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0
