"""``make dev`` (``spotler_pipeline.devserver``): ``dg dev``, and a clean stop on Ctrl-C."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from spotler_pipeline import devserver


class _DgDev:
    """Stands in for the ``dg dev`` process: Ctrl-C arrives while waiting for it, and it
    then exits with status 1 (what ``dagster dev`` does when interrupted)."""

    started: list[list[str]] = []

    def __init__(self, cmd: list[str], **_: Any) -> None:
        self.started.append(cmd)
        self.waits = 0

    def wait(self, timeout: float | None = None) -> int:
        self.waits += 1
        if self.waits == 1:
            raise KeyboardInterrupt
        return 1

    def terminate(self) -> None:  # pragma: no cover - only on a timeout
        raise AssertionError("it stopped by itself")


def test_ctrl_c_stops_dev_cleanly_with_status_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPOTLER_CONSUMER_KEY", "k")  # real credentials: no simulator
    monkeypatch.setenv("SPOTLER_CONSUMER_SECRET", "s")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(devserver.subprocess, "Popen", _DgDev)
    monkeypatch.setattr(devserver.signal, "signal", lambda *_: None)
    assert devserver.main(["--port", "3999"]) == 0
    assert "Stopped (SIGINT)." in capsys.readouterr().out
    (cmd,) = _DgDev.started
    assert cmd[1:] == ["dev", "--use-active-venv", "-p", "3999"]
    assert Path(cmd[0]).name == "dg"


def test_dg_dev_is_installed_and_knows_the_project() -> None:
    """``dg`` (dagster-dg-cli) is in this environment and loads the code location."""
    dg = devserver.dg_dev_command(3000)[0]
    out = subprocess.run(
        [dg, "list", "defs", "--json"], cwd=devserver.PROJECT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "spotler/mailings" in out.stdout and "spotler_automation" in out.stdout
