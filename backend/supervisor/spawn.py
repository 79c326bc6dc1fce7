"""Start a detached container: prepare it here, hand it to a new supervisor, wait for its word."""

from __future__ import annotations

import os

from rustainer.backend.errors import RustainerError
from rustainer.backend.runtime import ChildFailed, Launch, require_root, validate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rustainer.backend.spec import ContainerSpec
    from rustainer.backend.state import ContainerState, StateStore


def run_detached(spec: ContainerSpec, store: StateStore) -> ContainerState:
    """Returns once the container runs under its own supervisor (or raises why it could not)."""
    require_root()
    validate(spec)
    store.ensure()
    state = store.create(spec)
    launch = Launch(store, state)
    try:
        cfg = launch.prepare()
        launch.create_cgroup()
    except BaseException:
        try:
            launch.release()
        finally:
            launch.discard()
        raise
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the supervisor reports through the pipe
        try:
            os.close(read_end)
            os.setsid()  # its own session: no terminal, no job control signals from ours
            if os.fork() != 0:
                os._exit(0)
            from rustainer.backend.supervisor.shim import become_supervisor

            become_supervisor(launch, cfg, write_end)
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    report = b""
    while chunk := os.read(read_end, 4096):
        report += chunk
    os.close(read_end)
    if report != b"ok":
        code, _, message = report.decode(errors="replace").partition("\0")
        if not report:
            message, code = "the supervisor died before the container started", "125"
        if code in ("126", "127"):
            raise ChildFailed(int(code), message, 0)
        raise RustainerError(message)
    return store.load(state.id)
