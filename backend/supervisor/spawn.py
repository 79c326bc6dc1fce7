"""Start a detached container: prepare it here, hand it to a new supervisor, wait for its word."""

from __future__ import annotations

import os

from rustainer.backend.container.config import require_root, validate
from rustainer.backend.container.launch import Launch
from rustainer.backend.errors import CommandFailed, RustainerError, ZygoteUnavailable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rustainer.backend.container.state import ContainerState, StateStore
    from rustainer.backend.spec import ContainerSpec


def run_detached(spec: ContainerSpec, store: StateStore, *, fork_fallback: bool = True) -> ContainerState:
    """Returns once the container runs under its own supervisor (or raises why it could not).

    The supervisor is forked by the root's launcher (zygote); if none can be had, by this process,
    unless ``fork_fallback`` is False (a caller running threads, such as the dashboard, must never
    fork: the child would inherit locks other threads held)."""
    require_root()
    validate(spec)
    launch = Launch.new(store, spec)
    state = launch.state
    report = _through_zygote(store, state.id, required=not fork_fallback)
    if report is None:
        report = _fork_supervisor(store, state.id)
    if report != b"ok":
        _clean_after_failure(store, launch)
        code, _, message = report.decode(errors="replace").partition("\0")
        if not report:
            message, code = "the supervisor died before the container started", "125"
        if code in ("126", "127"):
            raise CommandFailed(int(code), message, 0)
        raise RustainerError(message)
    return store.load(state.id)


def _clean_after_failure(store: StateStore, launch: Launch) -> None:
    """A supervisor that failed early may have left the prepared container behind: release it."""
    from rustainer.backend.container.cleanup import reconcile
    from rustainer.backend.container.liveness import reopen_cgroup
    from rustainer.backend.errors import ContainerNotFoundError

    try:
        state = reconcile(store, store.load(launch.state.id))
    except ContainerNotFoundError:
        return  # the supervisor cleaned up (or died before the container ran: reconciled away)
    if state.status == "running":
        return  # its supervisor lives (the report alone was lost)
    launch.state = state
    launch.cgroup = reopen_cgroup(state)
    if launch.cgroup is not None and not launch.cgroup.exists():
        launch.cgroup = None
    launch.remove_everything()


def _through_zygote(store: StateStore, cid: str, *, required: bool = False) -> bytes | None:
    """The report of a supervisor forked by the root's zygote; None if no zygote can be had (with
    ``required``, the reason, as a failed report: the launch is then undone like any failure)."""
    if os.environ.get("RUSTAINER_NO_ZYGOTE") and not required:
        return None
    from rustainer.backend.supervisor.zygote import request, start_env

    try:
        return request(store.root, cid, start_env(os.environ))
    except ZygoteUnavailable as err:
        if required:
            return f"125\0the supervisor launcher is not available: {err}".encode()
        return None


def _fork_supervisor(store: StateStore, cid: str) -> bytes:
    """The fallback: a supervisor forked from this CLI process (a private copy of its heap)."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the supervisor reports through the pipe
        try:
            os.close(read_end)
            os.setsid()  # its own session: no terminal, no job control signals from ours
            if os.fork() != 0:
                os._exit(0)
            from rustainer.backend.supervisor.shim import become_supervisor
            from rustainer.backend.supervisor.zygote import start_env

            become_supervisor(store.root, cid, start_env(os.environ), write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    report = b""
    while chunk := os.read(read_end, 4096):
        report += chunk
    os.close(read_end)
    return report
