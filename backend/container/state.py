"""Container state under RUSTAINER_ROOT: one JSON file per container, written atomically and durably
(fsync'ed before it is renamed into place, its folder after: a host reboot is survived, see
``util.jsonfile.write_durably``). A ``--rm`` container's files are written atomically only: nothing
of it outlives the host's next boot anyway (its processes, cgroup and mounts go with the boot, and
its entry with its end), so it does not pay for the fsyncs on its start path; should a crash leave
its file partial, the entry is listed as damaged and ``rm -f`` removes it.

Layout::

    $RUSTAINER_ROOT/lock                    flock'ed while names are reserved or released
    $RUSTAINER_ROOT/names/<name>            the id holding that name (an O(1) uniqueness check)
    $RUSTAINER_ROOT/mnt/                    one empty folder every container mounts its own root over,
                                            in its own mount namespace (nothing of it on the host)
    $RUSTAINER_ROOT/containers/<id>/state.json
    $RUSTAINER_ROOT/containers/<id>/container.log, .1, .2...   a detached container's output
    $RUSTAINER_ROOT/containers/<id>/attach.sock   its supervisor's attach endpoint
    $RUSTAINER_ROOT/containers/<id>/recording.cast   its last asciicast recording (``record``)
    $RUSTAINER_ROOT/containers/<id>/hosts   bridge networks: bound onto the container's /etc/hosts
    $RUSTAINER_ROOT/networks/, zygote.*     the network records (network.store) and the supervisors'
                                            launcher (supervisor.zygote)

Names are unique per root: reserving one happens under an exclusive flock, so two ``run --name x``
started at the same moment cannot both win. Two different roots share nothing (cgroup names use ids).
"""

from __future__ import annotations

import fcntl
import os
import time

from rustainer.backend.errors import (
    ContainerNotFoundError,
    DamagedStateError,
    NameInUseError,
    RustainerError,
    StateWriteError,
)
from rustainer.backend.spec import ContainerSpec, Resources
from rustainer.backend.util.jsonfile import sync_folder, write, write_durably
from rustainer.backend.util.record import asdict, record, replace

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

CREATED, RUNNING, EXITED = "created", "running", "exited"
# An entry whose state file cannot be read or parsed: listed (so it can be seen and removed), never
# acted on as if it ran. ``rm`` of it ends whatever still runs in its cgroup.
DAMAGED = "damaged"


@record
class ContainerState:
    """Everything known about one container; the spec is what was asked, the rest what happened."""

    id: str
    name: str
    spec: ContainerSpec
    status: str = CREATED
    pid: int | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    oom_killed: bool = False
    cgroup_driver: str | None = None
    cgroup_paths: tuple[tuple[str, str], ...] = ()
    cgroup_parents: tuple[str, ...] = ()  # parents its cgroup driver made, removed with it
    directory_created: bool = False
    boot_id: str = ""
    supervisor_pid: int | None = None  # detached containers: the process that owns the pty
    owner_pid: int | None = None  # who reaps PID 1 and records the end (the CLI or the supervisor)
    owner_start: int | None = None  # its start time in clock ticks: a reused pid is not the owner
    detached: bool = False
    error: str | None = None  # why it ended, when rustainer knows more than the exit code
    network_address: str | None = None  # bridge networks: the address leased from the network's pool
    recording: bool = False  # its supervisor is recording the session (supervisor/recording.py)
    # Set when its end could not release everything it held (why, in one line): ``rm`` releases the rest.
    unreleased: str | None = None

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def can_attach(self) -> bool:
        return self.status == RUNNING

    def can_remove(self) -> bool:
        return self.status != RUNNING


def spec_from_dict(data: dict[str, Any]) -> ContainerSpec:
    data = dict(data)
    resources: dict[str, Any] = dict(data.get("resources", {}))
    if resources.get("cpus") is not None:
        resources["cpus"] = tuple(resources["cpus"])
    data["resources"] = Resources(**resources)
    data["command"] = tuple(data.get("command", ()))
    data["env"] = tuple(tuple(kv) for kv in data.get("env", ()))
    data["publish"] = tuple(tuple(p) for p in data.get("publish", ()))
    data["layers"] = tuple(data.get("layers", ()))
    if data.get("user") is not None:
        uid, gid, groups = data["user"]
        data["user"] = (int(uid), int(gid), tuple(int(g) for g in groups))
    return ContainerSpec(**data)


def state_from_dict(data: dict[str, Any]) -> ContainerState:
    data = dict(data)
    data["spec"] = spec_from_dict(data["spec"])
    data["cgroup_paths"] = tuple(tuple(p) for p in data.get("cgroup_paths", ()))
    data["cgroup_parents"] = tuple(data.get("cgroup_parents", ()))
    return ContainerState(**data)


def boot_id() -> str:
    """Changes at every host boot: containers recorded as running under another boot are gone."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


class StateStore:
    """Reads and writes container state under one root folder."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.containers = os.path.join(root, "containers")
        self.names = os.path.join(root, "names")
        # One empty folder for every container's root: each mounts its own tmpfs over it, in its own
        # mount namespace, so nothing of a container's filesystem ever exists on the host's disk.
        self.mnt = os.path.join(root, "mnt")

    def ensure(self) -> None:
        for path in (self.root, self.containers, self.names, self.mnt):
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
            except FileNotFoundError:
                os.makedirs(path, mode=0o700, exist_ok=True)

    def container_dir(self, cid: str) -> str:
        return os.path.join(self.containers, cid)

    def socket_path(self, cid: str) -> str:
        """The supervisor's attach endpoint (a unix socket, mode 0600)."""
        return os.path.join(self.containers, cid, "attach.sock")

    def log_path(self, cid: str) -> str:
        """The container's output log; rotated copies get ``.1``, ``.2``... appended."""
        return os.path.join(self.containers, cid, "container.log")

    def _lock(self) -> int:
        self.ensure()
        fd = os.open(os.path.join(self.root, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def create(self, spec: ContainerSpec) -> ContainerState:
        """Reserve the name and write the first state; raises NameInUseError if it is taken."""
        state = self.new(spec)
        self.reserve(state)
        return state

    @staticmethod
    def new(spec: ContainerSpec) -> ContainerState:
        """A new container's first state, in memory only (``reserve`` makes it exist)."""
        return ContainerState(id=os.urandom(32).hex(), name=spec.name, spec=spec, created_at=time.time(),
                              boot_id=boot_id())

    def reserve(self, state: ContainerState) -> None:
        """Take the name and write the state; raises NameInUseError (and writes nothing) if the name
        is taken."""
        lock = self._lock()
        try:
            holder = self._name_holder(state.name)
            if holder is not None:
                raise NameInUseError(
                    f"the name {state.name!r} is already in use by container {holder[:12]}: "
                    "remove it or choose another name")
            try:
                os.mkdir(self.container_dir(state.id), 0o700)
            except OSError as err:
                raise StateWriteError(f"cannot create the state folder of container {state.name} under "
                                      f"{self.root}: {err.strerror}", container=state.name, errno=err.errno) from err
            durable = not state.spec.remove
            try:
                if durable:
                    sync_folder(self.containers)  # the new folder's entry, before anything is written in it
                self.save(state)
                write_durably(os.path.join(self.names, state.name), state.id.encode(), durable=durable)
            except BaseException as err:  # half-way (a full disk, say): undo this step's own part
                from rustainer.backend.util.fsutil import remove_tree

                remove_tree(self.container_dir(state.id))
                if isinstance(err, OSError):
                    raise StateWriteError(f"cannot reserve the name {state.name} under {self.root}: "
                                          f"{err.strerror}", container=state.name, errno=err.errno) from err
                raise
        finally:
            os.close(lock)

    def take_over(self, state: ContainerState, owner: tuple[int, int]) -> ContainerState | None:
        """Make ``owner`` (pid, start time) the owner of a container still being created by the
        owner ``state`` records; None if it is gone, past creation, or someone took it over first.
        Under the lock: a supervisor taking a start over from its CLI, and a command removing the
        start that CLI abandoned, cannot both win."""
        lock = self._lock()
        try:
            try:
                current = self.load(state.id)
            except RustainerError:
                return None
            if current.status != CREATED or (current.owner_pid, current.owner_start) != (state.owner_pid,
                                                                                         state.owner_start):
                return None
            return self.update(current, owner_pid=owner[0], owner_start=owner[1])
        finally:
            os.close(lock)

    def _name_holder(self, name: str) -> str | None:
        """The id holding ``name``, ignoring a stale entry whose container is gone."""
        try:
            with open(os.path.join(self.names, name)) as f:
                cid = f.read().strip()
        except FileNotFoundError:
            return None
        if cid and os.path.exists(os.path.join(self.container_dir(cid), "state.json")):
            return cid
        return None

    def save(self, state: ContainerState) -> None:
        """Atomically (readers see the old state or the new one, whole) and, unless the container is
        removed when it ends (``--rm``), durably: so also after a crash or power loss."""
        path = os.path.join(self.container_dir(state.id), "state.json")
        try:
            write(path, asdict(state), durable=not state.spec.remove)
        except FileNotFoundError:  # its folder went: removed meanwhile (rm -f from another command)
            raise ContainerNotFoundError(f"container {state.name} was removed", container=state.name) from None
        except OSError as err:
            raise StateWriteError(f"cannot write the state of container {state.name} under {self.root}: "
                                  f"{err.strerror}", container=state.name, path=path, errno=err.errno) from err

    def update(self, state: ContainerState, **changes: Any) -> ContainerState:
        new = replace(state, **changes)
        self.save(new)
        return new

    def load(self, cid: str) -> ContainerState:
        import json

        path = os.path.join(self.container_dir(cid), "state.json")
        try:
            with open(path) as f:
                return state_from_dict(json.load(f))
        except FileNotFoundError:
            raise ContainerNotFoundError(f"no such container: {cid}", container=cid) from None
        except OSError as err:
            raise DamagedStateError(f"the state of container {cid[:12]} cannot be read ({err.strerror}): "
                                    f"'rustainer rm -f {cid[:12]}' removes it", container=cid, path=path,
                                    errno=err.errno) from err
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise DamagedStateError(f"the state of container {cid[:12]} is damaged ({err}): "
                                    f"'rustainer rm -f {cid[:12]}' removes it", container=cid, path=path) from err

    def load_or_damaged(self, cid: str) -> ContainerState:
        """``load``, but a damaged entry comes back as a placeholder with status DAMAGED (its name
        from the names folder), so one broken file never hides or blocks the others."""
        try:
            return self.load(cid)
        except DamagedStateError as err:
            name = next((n for n in self._names_of(cid)), cid[:12])
            try:
                created = os.stat(self.container_dir(cid)).st_mtime
            except OSError:
                created = 0.0
            return ContainerState(id=cid, name=name, spec=ContainerSpec(name=name), status=DAMAGED,
                                  created_at=created, error=str(err))

    def _names_of(self, cid: str) -> Iterator[str]:
        try:
            names = os.listdir(self.names)
        except FileNotFoundError:
            return
        for name in names:
            try:
                with open(os.path.join(self.names, name)) as f:
                    if f.read().strip() == cid:
                        yield name
            except OSError:
                continue

    def ids(self) -> Iterator[str]:
        try:
            names = os.listdir(self.containers)
        except FileNotFoundError:
            return
        orphans = []
        for name in sorted(names):
            if os.path.exists(os.path.join(self.containers, name, "state.json")):
                yield name
            else:
                orphans.append(name)
        if orphans:
            self._sweep(orphans)

    def _sweep(self, orphans: list[str]) -> None:
        """Remove container folders a reservation left when it was killed between making the folder
        and writing the state in it (a reservation in progress holds the lock, and so does a
        removal; outside of both, every folder has its state file)."""
        from rustainer.backend.util.fsutil import remove_tree

        lock = self._lock()
        try:
            for name in orphans:
                folder = self.container_dir(name)
                try:
                    # Only what a reservation makes before its state is in place: nothing, or the
                    # state's temporary file (never a folder something else still uses).
                    if all(e.startswith("state.json.") and e.endswith(".tmp") for e in os.listdir(folder)):
                        remove_tree(folder)
                except OSError:
                    continue
        finally:
            os.close(lock)

    def list(self) -> list[ContainerState]:
        states = []
        for cid in self.ids():
            try:
                states.append(self.load_or_damaged(cid))
            except ContainerNotFoundError:
                continue  # removed while we listed
        return states

    def find(self, ref: str) -> ContainerState:
        """By exact name, full id or unique id prefix (docker's rules)."""
        if "/" not in ref and ref not in ("", ".", ".."):
            holder = self._name_holder(ref)
            if holder is not None:
                return self.load_or_damaged(holder)
        states = self.list()
        for state in states:
            if state.name == ref or state.id == ref:
                return state
        matches = [s for s in states if len(ref) >= 3 and s.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RustainerError(f"{ref!r} matches several containers; give more of the id")
        raise ContainerNotFoundError(f"no such container: {ref}", container=ref)

    def delete(self, state: ContainerState) -> None:
        """Forget a container: its folder (state, log, attach socket, hosts file) goes."""
        from rustainer.backend.util.fsutil import remove_tree

        lock = self._lock()
        try:
            if self._name_holder(state.name) == state.id:
                os.unlink(os.path.join(self.names, state.name))
            remove_tree(self.container_dir(state.id))
        finally:
            os.close(lock)
