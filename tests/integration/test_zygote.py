"""The supervisors' launcher (zygote) serves each start with the caller's environment and the
installed code (root): it was started by some earlier CLI, with that CLI's environment, and may
outlive an upgrade."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from helpers import inspect, wait_for

pytestmark = pytest.mark.root


def init_of(cli, name: str) -> str:  # type: ignore[no-untyped-def]
    """Which init is the container's PID 1: tini (bind-mounted at /dev/rustainer-init, so its
    command line names it) or rustainer's own (a Python process that took that name)."""
    pid1 = inspect(cli, name)["state"]["pid"]
    argv = Path(f"/proc/{pid1}/cmdline").read_bytes().split(b"\0")
    return "tini" if argv[0] == b"/dev/rustainer-init" and b"--" in argv else "own"


def supervisor_parent(cli, name: str) -> int:  # type: ignore[no-untyped-def]
    return psutil.Process(inspect(cli, name)["state"]["supervisor_pid"]).ppid()


def test_each_start_gets_its_callers_environment(cli, started, rroot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rustainer.backend.supervisor import zygote

    assert os.access("/usr/bin/tini-static", os.X_OK), "set-up installs tini (apt package tini)"
    show_term = ("sh", "-c", "echo term=$TERM; exec sleep 300")
    # A zygote started by a CLI with the default init (tini) and one TERM...
    monkeypatch.delenv("RUSTAINER_TINI", raising=False)
    monkeypatch.setenv("TERM", "first-term")
    started("c1", *show_term)
    launcher = zygote.running_pid(str(rroot))
    assert launcher is not None and init_of(cli, "c1") == "tini"
    # ...serves a CLI that asks for rustainer's own init (RUSTAINER_TINI empty) and has another TERM.
    monkeypatch.setenv("RUSTAINER_TINI", "")
    monkeypatch.setenv("TERM", "second-term")
    started("c2", *show_term)
    assert supervisor_parent(cli, "c2") == launcher
    assert init_of(cli, "c2") == "own"
    # The other way round: a zygote started with RUSTAINER_TINI empty, a caller without it: tini.
    zygote.stop(str(rroot))
    started("c3", "sleep", "300")
    launcher = zygote.running_pid(str(rroot))
    assert launcher is not None and init_of(cli, "c3") == "own"
    monkeypatch.delenv("RUSTAINER_TINI")
    monkeypatch.delenv("TERM")
    started("c4", *show_term)
    assert supervisor_parent(cli, "c4") == launcher
    assert init_of(cli, "c4") == "tini"
    for name, term in (("c1", "first-term"), ("c2", "second-term"), ("c4", "xterm-256color")):
        wait_for(lambda: f"term={term}" in cli("logs", name).stdout, what=f"TERM of {name}")  # noqa: B023


def test_an_upgrade_replaces_the_zygote(cli, started, rroot: Path) -> None:
    """Installed code that differs from the zygote's (an upgrade, a reinstall; simulated by touching
    one of the package's files): the next start replaces the zygote and succeeds."""
    from rustainer.backend.supervisor import zygote

    started("u1", "sleep", "300")
    old = zygote.running_pid(str(rroot))
    assert old is not None
    marker = Path(zygote.__file__).with_name("py.typed")
    st = marker.stat()
    os.utime(marker, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        started("u2", "sleep", "300")
        new = zygote.running_pid(str(rroot))
        assert new not in (None, old)
        assert supervisor_parent(cli, "u2") == new
        wait_for(lambda: not psutil.pid_exists(old), what="the old zygote to leave")
        # and the other container, whose supervisor the old zygote forked, goes on
        assert inspect(cli, "u1")["state"]["status"] == "running"
        started("u3", "sleep", "300")  # the new zygote serves the next start
        assert supervisor_parent(cli, "u3") == new
    finally:
        os.utime(marker, ns=(st.st_atime_ns, st.st_mtime_ns))
