"""Shared fixtures: a private RUSTAINER_ROOT per test, a busybox rootfs, the CLI, and leak checks.

The leak checks are the safety net for "tests clean up after themselves": after every test and once
more at the end of the session, no mount under a test's folders, no cgroup named ``rustainer-*``, no
network link and no child process may be left that was not there before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from helpers import CLI

CGROUP_ROOT = "/sys/fs/cgroup"


def is_root() -> bool:
    return os.geteuid() == 0


def rustainer_cgroups() -> set[str]:
    found: set[str] = set()
    for top, dirs, _files in os.walk(CGROUP_ROOT):
        depth = top[len(CGROUP_ROOT):].count("/")
        for d in dirs:
            if top == CGROUP_ROOT and d == "rustainer.slice":
                continue  # systemd's parent slice of the systemd driver's containers: shared, kept
            if d.startswith("rustainer") and not _someone_elses(os.path.join(top, d)):
                found.add(os.path.join(top, d))
        if depth >= 4:
            dirs[:] = []
    return found


def _someone_elses(cgroup: str) -> bool:
    """A live container of another rustainer on this machine (a developer's shell, say): its
    processes descend from a supervisor or CLI that is not ours. Ours descend from this pytest, or
    from a supervisor that a test's CLI started (those run in their own session: see below)."""
    try:
        with open(os.path.join(cgroup, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return False
    if not pids:
        return False
    return not any(_started_by_this_session(pid) for pid in pids)


def _started_by_this_session(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        chain = [proc, *proc.parents()]
        environ_roots = []
        for p in chain:
            if p.pid == os.getpid():
                return True
            try:
                environ_roots.append(p.environ().get("RUSTAINER_ROOT", ""))
            except psutil.Error:
                continue
        base = str(_BASETEMP or "")
        return bool(base) and any(root.startswith(base) for root in environ_roots if root)
    except psutil.Error:
        return False


_BASETEMP: Path | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _BASETEMP
    _BASETEMP = session.config._tmp_path_factory.getbasetemp()  # type: ignore[attr-defined]
    # A suite started in the background by a non-interactive shell (``cmd &``) inherits SIGINT and
    # SIGQUIT ignored, and so would every CLI it runs (an ignored signal survives exec): Ctrl-C in
    # a test's pty would then do nothing. Users' shells do not do that to their commands.
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def rustainer_mounts() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f if "rustainer" in line or "/pytest-of-" in line.split()[4]}


def net_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def child_pids() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def zygotes() -> set[int]:
    """Supervisor launchers serving one of this session's roots (they are not our descendants)."""
    base = os.fsencode(str(_BASETEMP or "/nonexistent"))
    found = set()
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        if "rustainer.backend.supervisor.zygote" in argv and any(os.fsencode(a).startswith(base) for a in argv):
            found.add(proc.pid)
    return found


def snapshot() -> dict[str, set]:  # type: ignore[type-arg]
    return {"cgroups": rustainer_cgroups(), "mounts": rustainer_mounts(), "links": net_links(),
            "processes": child_pids(), "zygotes": zygotes()}


def leaks_since(before: dict[str, set], deadline_s: float = 5.0) -> dict[str, set]:  # type: ignore[type-arg]
    """What is new since ``before``; processes get a short grace period to finish exiting."""
    import time

    end = time.monotonic() + deadline_s
    while True:
        now = snapshot()
        new = {k: now[k] - before[k] for k in now}
        if not any(new.values()) or time.monotonic() > end:
            return {k: v for k, v in new.items() if v}
        time.sleep(0.05)


@pytest.fixture(scope="session", autouse=True)
def users_environment() -> Iterator[None]:
    """The suite's subprocesses (the CLI, pexpect and tmux sessions) see what users see: none of the
    machine's PYTHON* (PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE...) or PIP_* variables, which
    would change stdio buffering and more from what the CLI meets for real."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("PYTHON", "PIP_"))}
    for key in saved:
        del os.environ[key]
    yield
    os.environ.update(saved)


@pytest.fixture(scope="session", autouse=True)
def session_leak_check(users_environment: None) -> Iterator[None]:
    before = snapshot()
    yield
    leaked = leaks_since(before)
    assert not leaked, f"the test session left things behind: {leaked}"


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    before = snapshot()
    yield
    leaked = leaks_since(before)
    assert not leaked, f"{request.node.nodeid} left things behind: {leaked}"


@pytest.fixture
def rroot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private RUSTAINER_ROOT for this test (also exported for the CLI subprocesses); its
    supervisor launcher (zygote), if one was started, is stopped at the end."""
    from rustainer.backend.supervisor import zygote

    root = tmp_path / "rustainer-root"
    monkeypatch.setenv("RUSTAINER_ROOT", str(root))
    # A network goes down with its last member's end, not a grace period later (users' default, 2 s:
    # backend/network/linger.py): what a test made is gone when its commands return, and the leak
    # check need not wait. tests/integration/test_linger.py runs the default.
    monkeypatch.setenv("RUSTAINER_NETWORK_LINGER", "0")
    yield root
    zygote.stop(str(root))


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal root filesystem: a static busybox and a symlink per applet."""
    busybox = shutil.which("busybox")
    if busybox is None:
        pytest.skip("busybox-static is not installed (the test set-up command installs it)")
    root = tmp_path_factory.mktemp("busybox-rootfs")
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev", "usr/bin", "sbin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "tmp").chmod(0o1777)
    return root


@pytest.fixture
def cli(rroot: Path):  # type: ignore[no-untyped-def]
    """Run the rustainer CLI; returns the CompletedProcess (text mode)."""

    def run(*args: str, input: str | None = None, timeout: float = 60, cwd: str | None = None,
            check_rc: int | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*CLI, *args], input=input if input is not None else "", capture_output=True,
                              text=True, timeout=timeout, cwd=cwd)
        if check_rc is not None:
            assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
        return proc

    return run


@pytest.fixture
def started(cli, busybox_rootfs: Path):  # type: ignore[no-untyped-def]
    """``start(name, *command, opts=())`` runs a detached busybox container and returns its inspect
    record; every one started is removed with rm -f at the end."""
    from helpers import inspect

    names: list[str] = []

    def start(name: str, *command: str, opts: tuple[str, ...] = ()) -> dict:  # type: ignore[type-arg]
        cli("run", "--detach", "--name", name, "--rootfs", str(busybox_rootfs), *opts, "--", *command, check_rc=0)
        names.append(name)
        return inspect(cli, name)

    yield start
    for name in names:
        cli("rm", "-f", name)


@pytest.fixture
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real OCI registry (Debian's docker-registry) on 127.0.0.1 at a free port, with its own config
    and storage under the test's folder; stopped at the end."""
    from imagetools import RegistryServer

    server = RegistryServer(tmp_path / "registry")
    yield server
    server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_root():
        return
    skip = pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups); CI runs as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
