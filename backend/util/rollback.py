"""Undo stacks: a multi-step operation is all or nothing.

Each step that succeeds pushes how to undo it; when a later step fails, ``unwind`` runs every undo
in reverse order at once, in the same command - each one even if an earlier undo failed, and never
hiding the error that caused the unwinding. Nothing is left for a later ``ps`` to find.

``fault(step)`` is the test suite's seam: ``RUSTAINER_FAULT=step`` makes that step fail as if the
system had refused it, once per process (an undo that passes the same step again, such as
``update`` putting the old limits back, then goes through: the fault models one refusal, not a
broken system). ``RUSTAINER_FAULT=list`` records every step reached in ``$RUSTAINER_FAULT_LOG``,
so a test can enumerate them. It costs one dictionary lookup.

Steps are named by what they are about to do: a start's (``state``, ``cgroup``, ``network-veth``...),
the end's releases (``release-cgroup``, ``network-teardown-bridge``...), a verb's own (``stop-kill``,
``rm-state``, ``exec-go``, ``limit-memory``, ``network-create-record``...); README.md, Tests, lists
them with what a failure at each leaves.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import InjectedFault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


_fired = False  # the one injected fault of this process has happened


def fault(step: str) -> None:
    """Fail here if the tests asked for it (see the module's docstring)."""
    global _fired
    wanted = os.environ.get("RUSTAINER_FAULT")
    if wanted is None:
        return
    if wanted == step:
        if _fired:
            return
        _fired = True
        raise InjectedFault(f"injected fault at step {step!r}")
    if wanted == "list":
        _log_step(step)


_log: tuple[int, int, int] | None = None  # (fd, st_dev, st_ino) of $RUSTAINER_FAULT_LOG, once opened


def _log_step(step: str) -> None:
    """Append ``step`` to the list. The log stays open, so a process that has since entered a
    container's root (an exec'd process before its exec) still reaches it; a descriptor closed or
    reused since (a process that closed its descriptors) is noticed and the path opened again."""
    global _log
    path = os.environ.get("RUSTAINER_FAULT_LOG")
    if not path:
        return
    fd = -1
    if _log is not None:
        try:
            st = os.fstat(_log[0])
            if (st.st_dev, st.st_ino) == _log[1:]:
                fd = _log[0]
        except OSError:
            pass
    if fd < 0:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return  # out of reach (inside a container's root): the step goes unlisted
        st = os.fstat(fd)
        _log = (fd, st.st_dev, st.st_ino)
    os.write(fd, (step + "\n").encode())


class Rollback:
    """An undo stack (see the module's docstring)."""

    __slots__ = ("_steps",)

    def __init__(self) -> None:
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, step: str, undo: Callable[[], object]) -> None:
        self._steps.append((step, undo))

    def drop(self, step: str) -> None:
        """Forget the newest undo of ``step`` (its resource was handed over or released normally)."""
        for i in range(len(self._steps) - 1, -1, -1):
            if self._steps[i][0] == step:
                del self._steps[i]
                return

    def steps(self) -> list[str]:
        return [step for step, _ in self._steps]

    def unwind(self) -> list[tuple[str, BaseException]]:
        """Run every undo, newest first; returns the ones that failed (the caller is already
        raising the error that matters)."""
        failed: list[tuple[str, BaseException]] = []
        while self._steps:
            step, undo = self._steps.pop()
            try:
                undo()
            except BaseException as err:  # noqa: BLE001 - every undo must get its turn
                failed.append((step, err))
        return failed
