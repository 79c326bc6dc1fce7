"""An in-memory engine for the dashboard's tests that need no real container (and no root).

It has the methods the dashboard calls (``rustainer.app.tui_engine.DashboardEngine``, checked by
mypy below), keeps containers as plain ``ContainerState`` records, records every call in ``calls``,
and raises what ``fail`` maps a method's name to, so a test can make any action fail with a typed
engine error. Its containers run in the foreground (``detached=False``): the dashboard then has no
supervisor to attach a session to, and shows the note about the container instead of a shell.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rustainer.app.tui_engine import DashboardEngine
from rustainer.backend.container.lifecycle import Counters
from rustainer.backend.container.state import EXITED, RUNNING, ContainerState
from rustainer.backend.errors import (
    ContainerNotFoundError,
    ContainerStateError,
    ImageError,
    NameInUseError,
    RustainerError,
)
from rustainer.backend.spec import ContainerSpec, Resources
from rustainer.backend.util.record import replace


def fake_state(name: str, *, status: str = RUNNING, exit_code: int | None = None, oom_killed: bool = False,
               rootfs: str | None = "/images/busybox", memory: int | None = 64 << 20,
               cpus: tuple[int, ...] | None = (0,), network: str = "none", address: str | None = None,
               created_at: float | None = None, error: str | None = None,
               image: str | None = None) -> ContainerState:
    """A container record as the engine would list it (``image``: started from that image, no rootfs)."""
    cid = (name.encode().hex() + "0" * 64)[:64]
    spec = ContainerSpec(name=name, rootfs=None if image else rootfs, resources=Resources(cpus=cpus, memory=memory),
                         network=network, tty=True, image=f"sha256:{cid}" if image else None, image_name=image)
    return ContainerState(id=cid, name=name, spec=spec, status=status, pid=4242 if status == RUNNING else None,
                          created_at=time.time() if created_at is None else created_at, exit_code=exit_code,
                          oom_killed=oom_killed, network_address=address, error=error)


class FakeEngine:
    """Containers in a dict; no files, no processes, no kernel."""

    def __init__(self, *states: ContainerState, root: str = "/nonexistent/fake-root",
                 cpus: tuple[int, ...] = (0, 1), networks: tuple[str, ...] = ("bridge",),
                 images: dict[str, tuple[str, ...]] | None = None) -> None:
        self._root = root
        self.images = dict(images or {})  # a local image's name -> its command (Entrypoint + Cmd)
        self._cpus = cpus
        self._networks = list(networks)
        self._lock = threading.Lock()
        self.states: dict[str, ContainerState] = {s.id: s for s in states}
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.fail: dict[str, RustainerError] = {}  # method name -> the error it raises
        self.logs_data: dict[str, bytes] = {}  # container id -> its recorded output
        self.shells: dict[str, str | None] = {}  # container id -> its shell (default /bin/sh), None: none
        self._serial = 0

    @property
    def root(self) -> str:
        return self._root

    # ---- bookkeeping --------------------------------------------------------------------------------

    def _called(self, method: str, *args: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls.append((method, args, kwargs))
        error = self.fail.get(method)
        if error is not None:
            raise error

    def called(self, method: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        with self._lock:
            return [(args, kwargs) for name, args, kwargs in self.calls if name == method]

    def add(self, state: ContainerState) -> ContainerState:
        with self._lock:
            self.states[state.id] = state
        return state

    def _find(self, ref: str) -> ContainerState:
        with self._lock:
            for state in self.states.values():
                if ref in (state.id, state.name) or (len(ref) >= 3 and state.id.startswith(ref)):
                    return state
        raise ContainerNotFoundError(f"no such container: {ref}", container=ref)

    def _set(self, state: ContainerState, **changes: Any) -> ContainerState:
        new = replace(state, **changes)
        with self._lock:
            self.states[state.id] = new
        return new

    # ---- queries ------------------------------------------------------------------------------------

    def containers(self, *, all: bool = True) -> list[ContainerState]:
        self._called("containers", all=all)
        with self._lock:
            states = sorted(self.states.values(), key=lambda s: s.created_at)
        return [s for s in states if all or s.status == RUNNING]

    def exists(self, name: str) -> bool:
        with self._lock:
            return any(s.name == name for s in self.states.values())

    def inspect(self, ref: str) -> dict[str, Any]:
        self._called("inspect", ref)
        state = self._find(ref)
        return {"name": state.name, "id": state.id, "state": {"running": state.status == RUNNING}}

    def running(self, ref: str, verb: str = "act on") -> ContainerState:
        self._called("running", ref, verb)
        state = self._find(ref)
        if state.status != RUNNING:
            raise ContainerStateError(f"cannot {verb} container {state.name}: it is not running")
        return state

    def owner_alive(self, state: ContainerState) -> bool:
        return state.status == RUNNING

    def counters(self, state: ContainerState) -> Counters | None:
        r = state.spec.resources
        return Counters(cpu_usage_ns=0, memory_usage=3 << 20, memory_limit=r.memory, cpus=r.cpus, pids=1)

    def available_cpus(self) -> tuple[int, ...]:
        return self._cpus

    def suggest_name(self) -> str:
        return "brave_otter_7"

    def network_names(self) -> list[str]:
        return list(self._networks)

    def image_names(self) -> list[str]:
        self._called("image_names")
        return sorted(self.images)

    def socket_path(self, cid: str) -> str:
        return f"{self._root}/containers/{cid}/attach.sock"

    def logs(self, ref: str, tail: int | None = None) -> bytes:
        self._called("logs", ref, tail)
        state = self._find(ref)
        return self.logs_data.get(state.id, b"")

    def find_shell(self, ref: str) -> str | None:
        self._called("find_shell", ref)
        state = self.running(ref, "exec in")
        return self.shells.get(state.id, "/bin/sh")

    # ---- lifecycle ----------------------------------------------------------------------------------

    def image_spec(self, spec: ContainerSpec, image_ref: str, *, workdir: str | None = None,
                   user: str | None = None) -> ContainerSpec:
        """As the engine's: the image's id, name and command (a fake layer each, no config)."""
        self._called("image_spec", spec, image_ref, workdir=workdir, user=user)
        if image_ref not in self.images:
            raise ImageError(f"no such image: {image_ref}")
        image_id = "sha256:" + (image_ref.encode().hex() + "0" * 64)[:64]
        return replace(spec, image=image_id, image_name=image_ref, layers=(f"l/{image_id[7:33]}",),
                       command=spec.command or self.images[image_ref], workdir=workdir or "/")

    def start_detached(self, spec: ContainerSpec, *, fork_fallback: bool = True) -> ContainerState:
        self._called("start_detached", spec, fork_fallback=fork_fallback)
        if self.exists(spec.name):
            raise NameInUseError(f"the name {spec.name!r} is already in use", container=spec.name)
        self._serial += 1
        state = replace(fake_state(spec.name), id=f"{self._serial:04d}" + fake_state(spec.name).id[4:], spec=spec)
        return self.add(state)

    def restart(self, ref: str, *, force: bool = False, fork_fallback: bool = True) -> ContainerState:
        self._called("restart", ref, force=force, fork_fallback=fork_fallback)
        state = self._find(ref)
        if state.status == RUNNING and not force:
            raise ContainerStateError(f"container {state.name} is running: stop it first")
        with self._lock:
            del self.states[state.id]
        return self.start_detached(state.spec, fork_fallback=fork_fallback)

    def stop(self, ref: str, timeout: float | None = None) -> ContainerState | None:
        self._called("stop", ref, timeout)
        state = self._find(ref)
        if state.status != RUNNING:
            raise ContainerStateError(f"cannot stop container {state.name}: it is not running")
        return self._set(state, status=EXITED, exit_code=143, pid=None)

    def kill(self, ref: str, signal: int | str = 9) -> ContainerState:
        self._called("kill", ref, signal)
        state = self._find(ref)
        if state.status != RUNNING:
            raise ContainerStateError(f"cannot kill container {state.name}: it is not running")
        return self._set(state, status=EXITED, exit_code=137, pid=None)

    def record(self, ref: str, on: bool = True) -> str:
        """As the engine's: the supervisor records (here: the state says so); -> the recording's path."""
        self._called("record", ref, on)
        state = self.running(ref, "record" if on else "stop recording")
        self._set(state, recording=on)
        return f"{self._root}/containers/{state.id}/recording.cast"

    def remove(self, ref: str, *, force: bool = False) -> None:
        self._called("remove", ref, force=force)
        state = self._find(ref)
        if state.status == RUNNING and not force:
            raise ContainerStateError(f"container {state.name} is running: stop it first, or force it")
        with self._lock:
            del self.states[state.id]


def _satisfies_the_protocol(engine: FakeEngine) -> DashboardEngine:
    return engine  # mypy: the fake has every method the dashboard calls, with the same signatures
