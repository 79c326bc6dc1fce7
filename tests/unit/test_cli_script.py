"""The installed ``rustainer`` script: it leaves through ``os._exit`` (no interpreter clean-up, a
few ms of every short container's run), so what it printed must still arrive, and a reader that
goes away must not produce a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = os.path.join(os.path.dirname(sys.executable), "rustainer")


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, RUSTAINER_ROOT=str(tmp_path / "state"))


def test_output_written_before_exit_arrives_in_full(tmp_path: Path) -> None:
    direct = subprocess.run([sys.executable, "-m", "rustainer.app.cli", "--help"], capture_output=True, text=True)
    via_script = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True, env=_env(tmp_path))
    assert via_script.returncode == 0
    assert via_script.stdout == direct.stdout and len(via_script.stdout) > 500


def test_errors_keep_their_line_and_exit_code(tmp_path: Path) -> None:
    done = subprocess.run([SCRIPT, "run", "--name", "a b", "--", "true"], capture_output=True, text=True,
                          env=_env(tmp_path))
    assert done.returncode == 125
    assert done.stderr.startswith("rustainer: ") and done.stderr.count("\n") == 1, done.stderr


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.close(r)  # nobody will ever read: the first write fails with EPIPE
    try:
        done = subprocess.run([SCRIPT, "--help"], stdout=w, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
    finally:
        os.close(w)
    assert done.returncode == 141
    assert "Traceback" not in done.stderr, done.stderr


def test_every_verb_has_help_even_without_its_arguments(tmp_path: Path) -> None:
    from rustainer.app.cli import COMMANDS

    for verb in [v for v in COMMANDS if v]:
        done = subprocess.run([SCRIPT, verb, "--help"], capture_output=True, text=True, env=_env(tmp_path))
        assert done.returncode == 0 and done.stdout.startswith(f"usage: rustainer {verb} "), (verb, done)
        assert done.stderr == ""


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    done = subprocess.run([SCRIPT, "--version"], capture_output=True, text=True, env=_env(tmp_path))
    assert done.returncode == 0 and done.stdout == f"rustainer {version('rustainer')}\n" and done.stderr == ""
