"""Helpers shared by test modules (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "rustainer.app.cli"]


def tree_digest(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every entry of a tree with its mode, size and (for files) content hash or link target."""
    import hashlib

    out: dict[str, tuple[int, int, str]] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            extra = ""
            if os.path.islink(path):
                extra = os.readlink(path)
            elif os.path.isfile(path):
                extra = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_size, extra)
    return out


def wait_for(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.02):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something true (returned) or the deadline passes."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def ps(cli) -> dict[str, dict]:  # type: ignore[no-untyped-def, type-arg]
    """Every container of the test's root by name, as `rustainer ps -a --format json` gives them."""
    import json

    return {s["name"]: s for s in json.loads(cli("ps", "-a", "--format", "json", check_rc=0).stdout)}


def inspect(cli, name: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    import json

    return json.loads(cli("inspect", name, check_rc=0).stdout)[0]  # type: ignore[no-any-return]


def commands_in(cli, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The command names of a running container's processes (its PID 1 and all below it)."""
    import psutil

    try:
        top = psutil.Process(ps(cli)[name]["pid"])
        return [p.name() for p in (top, *top.children(recursive=True))]
    except psutil.Error:
        return []


def assert_nothing_left(rroot: Path, folder: Path | None, port: int | None) -> None:
    """No state entry or name, no -d folder rustainer made, no lease, no nft table of the default
    network, and the published port free again (cgroups, mounts, links and processes: the leak check)."""
    import socket
    import subprocess

    from rustainer.backend.network import ipam

    containers = rroot / "containers"
    assert not containers.exists() or os.listdir(containers) == [], os.listdir(containers)
    names = rroot / "names"
    assert not names.exists() or os.listdir(names) == [], os.listdir(names)
    assert folder is None or not folder.exists(), "the -d folder rustainer made is left"
    from rustainer.backend.network.store import NetworkStore

    networks = NetworkStore(str(rroot))
    for name in networks.names():
        data = networks.load(name) or {}
        assert data.get("leases", {}) == {}, data
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert ipam.nft_table(str(rroot), "bridge") not in tables
    if port is not None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # the published port is free again


def ended(pid: int) -> bool:
    """Whether process ``pid`` is gone or a zombie (it may go between two looks: never an error)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
