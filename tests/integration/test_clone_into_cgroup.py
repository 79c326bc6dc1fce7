"""clone3(CLONE_INTO_CGROUP): a container's PID 1 started straight in its cgroup2 directory.

The engine uses it on the v2 driver (``Launch.start``); the end-to-end check runs in the cgroup2
guests (tests/vm: ``test_cgroup_drivers.py::test_v2_starts_the_container_in_its_cgroup``). Here,
on a v1 host, the mechanism itself runs against the real kernel: the child is cloned into the cgroup
this test already runs in on the hybrid host's cgroup2 mount (no cgroup is created: none may be at a
hierarchy's root here), and the cases where it must not be used fall back without starting anything.
"""

from __future__ import annotations

import os
import threading

import psutil
import pytest

from rustainer.backend.linux import syscalls
from rustainer.backend.linux.namespaces import clone_into_pid_namespace

pytestmark = [pytest.mark.root]


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return left.split()[4]
    return None


def _own_cgroup2() -> str | None:
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            if line.startswith("0::"):
                return line[3:].strip()
    return None


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children()}


def test_the_child_starts_as_pid_1_in_the_given_cgroup() -> None:
    mount, own = _cgroup2_mount(), _own_cgroup2()
    if mount is None or own is None:
        pytest.skip("no cgroup2 mount on this host")
    fd = os.open(mount + own, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    r, w = os.pipe()
    try:

        def child() -> None:
            os.close(r)
            with open("/proc/self/cgroup") as fh:
                line = [x for x in fh.read().splitlines() if x.startswith("0::")][0]
            os.write(w, f"{os.getpid()} {line}".encode())
            os._exit(7)

        pid = clone_into_pid_namespace(child, fd)
        assert pid is not None and pid > 1
        os.close(w)
        said = os.read(r, 4096).decode()
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
        os.close(r)
    assert os.waitstatus_to_exitcode(status) == 7
    assert said == f"1 0::{own}"  # PID 1 of its own namespace, in the cgroup it was given
    # the parent's own namespace and its children's are untouched (no unshare dance), its cgroup too
    assert os.readlink("/proc/self/ns/pid_for_children") == os.readlink("/proc/self/ns/pid")
    assert _own_cgroup2() == own


def test_a_directory_that_is_not_cgroup2_falls_back_without_starting_anything(tmp_path) -> None:  # type: ignore[no-untyped-def]
    fd = os.open(str(tmp_path), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    before = _children()
    try:
        assert clone_into_pid_namespace(lambda: os._exit(0), fd) is None
    finally:
        os.close(fd)
    assert _children() == before
    with pytest.raises(OSError):
        syscalls.fork_into_cgroup(syscalls.CLONE_NEWPID, -1)


def test_a_process_with_threads_falls_back() -> None:
    """glibc's own fork handlers do not run around a raw clone3: with another thread (which could
    hold a libc lock at the copy) the caller forks and moves the child instead."""
    mount, own = _cgroup2_mount(), _own_cgroup2()
    if mount is None or own is None:
        pytest.skip("no cgroup2 mount on this host")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    fd = os.open(mount + own, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    before = _children()
    try:
        assert not syscalls.single_threaded()
        assert clone_into_pid_namespace(lambda: os._exit(0), fd) is None
    finally:
        os.close(fd)
        stop.set()
        thread.join()
    assert _children() == before
    assert syscalls.single_threaded()
