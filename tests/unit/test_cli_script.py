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


def test_the_script_skips_site_and_still_finds_the_package(tmp_path: Path) -> None:
    """`python -S` (put back by .ci/setup after pip drops it): no `site`, no sitecustomize, about
    1 ms of every start; the venv's site-packages is added by the script itself."""
    with open(SCRIPT) as fh:
        assert fh.readline().rstrip().endswith(" -S")
    done = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True,
                          env=dict(_env(tmp_path), PYTHONPROFILEIMPORTTIME="1"))
    assert done.returncode == 0 and done.stdout.startswith("usage: rustainer")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "rustainer.app.cli" in imported
    assert "site" not in imported and "sitecustomize" not in imported


def test_the_script_falls_back_to_site_where_the_package_is_elsewhere(tmp_path: Path) -> None:
    """Installed outside a virtual environment (the package not under sys.prefix), the script runs
    `site` after all: here the package is reachable only through a .pth file in a user site folder."""
    import site as site_module

    import rustainer.app.cli

    sp = os.path.dirname(os.path.dirname(os.path.dirname(rustainer.app.cli.__file__)))
    user_base = tmp_path / "userbase"
    user_site = site_module._get_path(str(user_base))  # type: ignore[attr-defined]
    os.makedirs(user_site)
    with open(os.path.join(user_site, "rustainer-test.pth"), "w") as fh:
        fh.write(sp + "\n")
    script = tmp_path / "rustainer"
    with open(SCRIPT) as src:
        script.write_text("#!/usr/bin/python3 -S\n" + "".join(src.readlines()[1:]))
    script.chmod(0o755)
    env = dict(_env(tmp_path), PYTHONUSERBASE=str(user_base))
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and done.stdout.startswith("usage: rustainer"), done.stderr


def test_the_oci_runtime_script_skips_site_too(tmp_path: Path) -> None:
    """`rustainer-oci` starts as `rustainer` does (the shim runs it four times per container)."""
    oci = os.path.join(os.path.dirname(SCRIPT), "rustainer-oci")
    with open(oci) as fh:
        assert fh.readline().rstrip().endswith(" -S")
    done = subprocess.run([oci, "--version"], capture_output=True, text=True,
                          env=dict(_env(tmp_path), PYTHONPROFILEIMPORTTIME="1"))
    assert done.returncode == 0 and done.stdout.startswith("rustainer-oci version")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "rustainer.app.oci_cli" in imported and "site" not in imported
    assert not imported & {"json", "re", "enum", "argparse", "typing"}
