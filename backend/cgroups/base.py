"""The one interface every cgroup driver implements, plus the small file helpers they share.

Why an ABC and not ``typing.Protocol``: ``abc`` is already imported by the interpreter at start-up,
``typing`` is not, and this module sits on the path of ``rustainer run`` (create a cgroup, add a
pid), whose latency budget is a few milliseconds. For the same reason paths are plain ``str`` and
only ``os`` is used here; anything heavier is imported inside the functions that are off that path.

Ownership rules every driver follows (the host may be shared with other engines and the sandbox
that runs us): a container's cgroup is a directory named ``rustainer-<name>`` that *we* create
beneath the caller's own cgroup (or beneath ``--cgroup-parent``); limits are only ever written to
directories we created; a process is only moved into our directory, never out of its subtree.
"""

from __future__ import annotations

import abc
import errno
import os

from rustainer.backend.errors import CgroupError
from rustainer.backend.spec import Resources, validate_name
from rustainer.backend.util.record import record

TYPE_CHECKING = False  # typing's own flag would import typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_ROOT = "/sys/fs/cgroup"
PREFIX = "rustainer-"
CPU_PERIOD_US = 100000  # the kernel's and docker's default CFS period
REMOVE_TIMEOUT = 2.0  # seconds to wait for processes that are just exiting


@record
class CgroupStats:
    """A snapshot for ``rustainer stats`` and the dashboard; ``None`` when the controller is absent."""

    memory_usage: int | None = None  # bytes
    memory_limit: int | None = None  # bytes, None when unlimited
    cpu_usage_ns: int | None = None
    pids_current: int | None = None
    oom_kills: int | None = None


class CgroupManager(abc.ABC):
    """The cgroup(s) of one container.

    Constructing a manager touches nothing; it only computes paths. That makes re-opening from
    state cheap and deterministic: pass the same ``name``/``parent``/``driver`` (or the stored
    ``paths()``) to :func:`rustainer.backend.cgroups.detect.open_manager`.
    """

    driver: str = ""
    name: str = ""
    # ancestors that create() had to make (a --cgroup-parent that did not exist): removed with the
    # container when empty; stored with the container's state so any process can remove them
    made_parents: tuple[str, ...] = ()

    @abc.abstractmethod
    def create(self, resources: Resources) -> None:
        """Make the cgroup(s) and apply limits; on failure remove whatever this call made."""

    @abc.abstractmethod
    def add(self, pid: int) -> None:
        """Move ``pid`` (a child we just forked) into the container's cgroup(s)."""

    def clone_target(self) -> str | None:
        """A cgroup2 directory a new process can be started in directly (clone3's
        CLONE_INTO_CGROUP) instead of being moved there after its fork, or None (v1: the flag takes
        cgroup2 only; systemd: the scope is made by systemd around a process that already exists)."""
        return None

    def self_join_files(self) -> list[str]:
        """Files into which a single-threaded child writes ``0`` to join the cgroup(s) itself, or
        none (the parent then calls :meth:`add`).

        Why: moving a whole process takes the kernel's global threadgroup lock, whose first writer
        waits for an RCU grace period (6-20 ms of every container start here); a thread moving
        itself through cgroup v1's ``tasks`` file skips that lock.
        """
        return []

    @abc.abstractmethod
    def update(self, resources: Resources) -> None:
        """Set the limits of a live cgroup to exactly ``resources`` (``None`` lifts a limit).

        Callers that change one limit merge first: ``replace(mgr.read_limits(), memory=...)``.
        """

    @abc.abstractmethod
    def read_limits(self) -> Resources:
        """What the kernel enforces now, read back from the cgroup files."""

    @abc.abstractmethod
    def stats(self) -> CgroupStats: ...

    @abc.abstractmethod
    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer has killed a process of this cgroup."""

    @abc.abstractmethod
    def pids(self) -> list[int]: ...

    @abc.abstractmethod
    def remove(self) -> None:
        """Remove the cgroup(s); already gone is fine, still-populated raises CgroupError."""

    @abc.abstractmethod
    def paths(self) -> dict[str, str]:
        """Controller (``"unified"`` on cgroup2) -> directory, for inspect and for re-opening."""

    def kill_all(self, sig: int = 9) -> None:
        """Signal every process in the cgroup (by pid, as listed by the kernel)."""
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def exists(self) -> bool:
        return any(os.path.isdir(p) for p in self.paths().values())


# ---- helpers shared by the drivers -------------------------------------------------------------


def cgroup_dirname(name: str) -> str:
    return PREFIX + validate_name(name)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` -> controller -> path; the cgroup2 entry (``0::/x``) is keyed ``""``.

    Named hierarchies keep their ``name=`` prefix (``name=systemd``); co-mounted controllers
    (``4:cpu,cpuacct:/x``) appear under each of their names.
    """
    result: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers = parts[1]
        if not controllers:
            result[""] = parts[2]
            continue
        for ctrl in controllers.split(","):
            result[ctrl] = parts[2]
    return result


def read_self_cgroup(proc_self_cgroup: str | None) -> dict[str, str]:
    if proc_self_cgroup is None:
        try:
            with open("/proc/self/cgroup") as fh:
                proc_self_cgroup = fh.read()
        except OSError as err:
            raise CgroupError(f"cannot read /proc/self/cgroup to find our own cgroup: {err.strerror}", errno=err.errno) from err
    return parse_proc_cgroup(proc_self_cgroup)


def clean_parent(parent: str) -> str:
    """A ``--cgroup-parent`` as a path relative to a hierarchy's mount (``a/b``), or ``""``."""
    parts = [p for p in parent.split("/") if p and p != "."]
    if any(p == ".." for p in parts) or "\0" in parent:
        raise CgroupError(f"invalid cgroup parent {parent!r}: use a path like /mygroup/sub without '..'")
    return "/".join(parts)


def under(mount: str, rel: str, leaf: str) -> str:
    rel = rel.strip("/")
    return mount + "/" + rel + "/" + leaf if rel else mount + "/" + leaf


def check_stored_paths(paths: dict[str, str], leaf: str, root: str) -> dict[str, str]:
    """Refuse state that would make us write to or remove a cgroup that is not a container's."""
    prefix = root.rstrip("/") + "/"
    for ctrl, path in paths.items():
        if os.path.basename(path) != leaf or not path.startswith(prefix) or "/../" in path + "/":
            raise CgroupError(f"stored cgroup path {path!r} ({ctrl}) is not a {leaf} cgroup under {root}")
    return dict(paths)


def read_text(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError as err:
        raise CgroupError(f"cannot read {path}: {err.strerror}", path=str(path), errno=err.errno) from err


def read_optional(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise CgroupError(f"cannot read {path}: {err.strerror}", path=str(path), errno=err.errno) from err


def read_int(path: str) -> int | None:
    text = read_optional(path)
    if text is None or not text.lstrip("-").isdigit():
        return None
    return int(text)


def read_keyed(path: str) -> dict[str, int]:
    """Flat-keyed files (``memory.events``, ``cpu.stat``, ``memory.oom_control``) -> key -> value."""
    text = read_optional(path)
    result: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            result[key] = int(value)
    return result


def write_value(path: str, value: str, what: str) -> None:
    """One ``write(2)`` per value, as the kernel expects; errors become one actionable line."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise CgroupError(f"cannot open {path} to set {what}: {err.strerror}", path=str(path), errno=err.errno) from err
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise CgroupError(f"cannot set {what} to {value!r} in {path}: {_explain(err)}") from err
    finally:
        os.close(fd)


def _explain(err: OSError) -> str:
    if err.errno == errno.EBUSY:
        return "the cgroup is busy (a lower limit than current usage, or processes in the way)"
    if err.errno == errno.EINVAL:
        return "the kernel rejected the value (outside what the parent cgroup allows?)"
    return err.strerror or str(err)


def read_pids(procs_file: str) -> list[int]:
    """The processes in a cgroup; none if it is gone. Gone includes going: a cgroup removed while
    we read it answers ENODEV (systemd removes an emptied scope by itself, and a systemd guest's
    CI run read its cgroup.procs just then)."""
    try:
        text = read_optional(procs_file)
    except CgroupError as err:
        if err.errno != errno.ENODEV:
            raise
        return []
    return [int(x) for x in (text or "").split()]


def make_dir(path: str, name: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        raise CgroupError(
            f"cgroup {path} already exists: another container named {name!r} is running or left it "
            "behind; remove that container (or rmdir the empty cgroup) or choose another name"
        ) from None
    except OSError as err:
        raise CgroupError(f"cannot create cgroup {path}: {err.strerror}", path=str(path), errno=err.errno) from err


def make_parents(path: str, made: list[str], on_new: Callable[[str], None] | None = None) -> list[str]:
    """mkdir -p for the ancestors of ``path``, top-down; each new one is recorded in ``made`` and
    handed to ``on_new`` before its child is made (v1 cpusets and v2 subtree_control need that)."""
    missing: list[str] = []
    cur = os.path.dirname(path)
    while cur and not os.path.isdir(cur):
        missing.append(cur)
        cur = os.path.dirname(cur)
    created: list[str] = []
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            continue
        except OSError as err:
            raise CgroupError(f"cannot create cgroup parent {d}: {err.strerror}", errno=err.errno) from err
        made.append(d)
        created.append(d)
        if on_new is not None:
            on_new(d)
    return created


def check_made_parents(made: tuple[str, ...] | list[str], paths: dict[str, str], root: str) -> tuple[str, ...]:
    """Refuse stored parents that are not strict ancestors of the container's own cgroups."""
    prefix = root.rstrip("/") + "/"
    for d in made:
        if not d.startswith(prefix) or "/../" in d + "/" or not any(p.startswith(d.rstrip("/") + "/") for p in paths.values()):
            raise CgroupError(f"stored cgroup parent {d!r} is not an ancestor of the container's cgroups under {root}")
    return tuple(made)


def remove_parents(made: tuple[str, ...]) -> None:
    """rmdir the parents a container made, deepest first; one still in use (another container
    beneath it) stays, whoever made it."""
    for d in sorted(made, key=lambda p: p.count("/"), reverse=True):
        try:
            os.rmdir(d)
        except OSError:
            pass


def rollback(made: list[str]) -> None:
    """Best effort: remove what a failed create() made, deepest first, leaving errors to the caller's."""
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            pass


def remove_dir(path: str, procs_name: str = "cgroup.procs", timeout: float | None = None) -> None:
    """rmdir a container's cgroup and any empty sub-cgroups the container made inside it.

    The kernel refuses (EBUSY) while processes remain; processes that were just killed may take
    a moment to leave, so poll until ``timeout`` before reporting the ones still there.
    """
    import time

    deadline = time.monotonic() + (REMOVE_TIMEOUT if timeout is None else timeout)
    listed = False  # the usual cgroup has no sub-cgroups: no listing before the first try
    while True:
        try:
            if listed:
                for sub in _subdirs_bottom_up(path):
                    try:
                        os.rmdir(sub)
                    except FileNotFoundError:
                        pass
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.EBUSY:
                raise CgroupError(f"cannot remove cgroup {path}: {err.strerror}", path=str(path), errno=err.errno) from err
            if not listed:
                listed = True
                continue  # sub-cgroups, or processes still leaving: list them from now on
            if time.monotonic() >= deadline:
                pids = read_pids(path + "/" + procs_name)
                if pids:
                    shown = " ".join(str(p) for p in pids[:8])
                    raise CgroupError(
                        f"cgroup {path} still has processes ({shown}): stop the container before removing it"
                    ) from err
                raise CgroupError(f"cannot remove cgroup {path}: it is busy") from err
            time.sleep(0.01)


def _subdirs_bottom_up(path: str) -> list[str]:
    result: list[str] = []
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return result
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            result.extend(_subdirs_bottom_up(entry.path))
            result.append(entry.path)
    return result
