"""The runtime's own record of each container: ``<root>/<id>/state.json`` and ``exec.fifo``.

``--root`` (containerd's shim passes ``/run/containerd/runc/<namespace>``) holds one folder per
container. The folder's ``exec.fifo`` exists from ``create`` until ``start`` (its presence is
what "created" means, as in runc); the container's init is recorded with its start time so a
reused pid is never taken for it. Status is never stored: it is read from the kernel each time.

This module is on the path of every command the shim runs (``start``, ``state``, ``delete``), each a
new interpreter: it imports procfs and ``posix``, not ``os`` (whose import, with the
``_collections_abc`` behind its ``environ``, is about 2 ms of a 15 ms ``start`` here), and the
errors module only when it raises.
"""

from __future__ import annotations

import posix

from rustainer.backend.linux.procfs import start_time, stat_fields

DEFAULT_ROOT = "/run/rustainer-oci"
OCI_VERSION = "1.0.2"
CREATED, RUNNING, STOPPED, PAUSED, CREATING = "created", "running", "stopped", "paused", "creating"


def check_id(cid: str) -> str:
    if not cid or len(cid) > 1024 or cid in (".", "..") or "/" in cid or "\0" in cid:
        from rustainer.backend.errors import InvalidSpecError

        raise InvalidSpecError(f"invalid container id {cid!r}")
    return cid


def absolute(path: str) -> str:
    """``os.path.abspath``; a path that is already absolute and plain (what the shim passes) as it
    is, without importing ``os``."""
    if path.startswith("/") and all(part not in ("", ".", "..") for part in path.split("/")[1:]):
        return path
    import os

    return os.path.abspath(path)


def exists(path: str) -> bool:
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def is_dir(path: str) -> bool:
    try:
        return posix.stat(path).st_mode & 0o170000 == 0o040000  # S_ISDIR, without the stat module
    except (OSError, ValueError):
        return False


def write_pid_file(path: str, pid: int) -> None:
    """``--pid-file``: written beside, then renamed into place, so a reader (the shim) never sees it
    half written."""
    tmp = path + ".tmp"
    fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o666)
    try:
        posix.write(fd, str(pid).encode())
    finally:
        posix.close(fd)
    posix.rename(tmp, path)


class Store:
    def __init__(self, root: str | None) -> None:
        self.root = absolute(root or DEFAULT_ROOT)

    def dir(self, cid: str) -> str:
        return f"{self.root.rstrip('/')}/{check_id(cid)}"

    def fifo(self, cid: str) -> str:
        return self.dir(cid) + "/exec.fifo"

    def reserve(self, cid: str) -> str:
        """Make the container's folder; an id in use is refused."""
        import os

        os.makedirs(self.root, 0o711, exist_ok=True)
        path = self.dir(cid)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            from rustainer.backend.errors import ContainerStateError

            raise ContainerStateError(f"container with id {cid} already exists") from None
        return path

    def save(self, cid: str, data: dict[str, object]) -> None:
        from rustainer.backend.util.jsonfile import write

        # not fsync'ed: the state lives on a tmpfs (/run) and means nothing after a reboot
        write(self.dir(cid) + "/state.json", data, durable=False)

    def load(self, cid: str) -> dict[str, object]:
        from rustainer.backend.util.jsonfile import loads

        path = self.dir(cid) + "/state.json"
        try:
            with open(path) as fh:
                data = loads(fh.read())
            if not isinstance(data, dict):
                raise ValueError("not an object")
        except FileNotFoundError:
            from rustainer.backend.errors import ContainerNotFoundError

            raise ContainerNotFoundError(f"container {cid} does not exist") from None
        except (OSError, ValueError) as err:
            from rustainer.backend.errors import ContainerStateError

            raise ContainerStateError(f"cannot read the state of container {cid}: {err}") from err
        return data

    def remove(self, cid: str) -> None:
        """The folder holds only files we wrote (no shutil: it imports re, on every delete)."""
        path = self.dir(cid)
        try:
            names = posix.listdir(path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                posix.unlink(f"{path}/{name}")
            except FileNotFoundError:
                pass
        try:
            posix.rmdir(path)
        except FileNotFoundError:
            pass

    def ids(self) -> list[str]:
        try:
            return sorted(posix.listdir(self.root))
        except FileNotFoundError:
            return []


def alive(pid: int, start: int | None) -> bool:
    """The recorded process still exists (not a zombie, not a reused pid)."""
    fields = stat_fields(pid)
    if fields is None or fields[0] in (b"Z", b"X"):
        return False
    return start is None or start_time(pid) == start


def status(store: Store, cid: str, data: dict[str, object]) -> str:
    pid = data.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return STOPPED
    start = data.get("start_time")
    if not alive(pid, start if isinstance(start, int) else None):
        return STOPPED
    if exists(store.fifo(cid)):
        return CREATED
    if frozen(data):
        return PAUSED
    return RUNNING


def freezer_file(data: dict[str, object]) -> tuple[str, str, str] | None:
    """(file, frozen value, thawed value) of the container's recorded freezer."""
    paths = data.get("cgroup_paths")
    if not isinstance(paths, dict):
        return None
    if "unified" in paths:
        return str(paths["unified"]) + "/cgroup.freeze", "1", "0"
    if "freezer" in paths:
        return str(paths["freezer"]) + "/freezer.state", "FROZEN", "THAWED"
    return None


def frozen(data: dict[str, object]) -> bool:
    """Read here, not through the cgroup drivers: ``state`` of a running container would import
    them (several milliseconds) for one file."""
    spec = freezer_file(data)
    if spec is None:
        return False
    try:
        with open(spec[0]) as fh:
            value = fh.read().strip()
    except OSError:
        return False
    return value == spec[1] or value == "FREEZING"


def oci_state(store: Store, cid: str, data: dict[str, object]) -> dict[str, object]:
    """The runtime-spec's state object (plus runc's ``rootfs``, ``created``, ``owner``)."""
    st = status(store, cid, data)
    return {
        "ociVersion": OCI_VERSION,
        "id": cid,
        "pid": data.get("pid", 0) if st != STOPPED else 0,
        "status": st,
        "bundle": data.get("bundle", ""),
        "rootfs": data.get("rootfs", ""),
        "created": data.get("created", ""),
        "owner": "",
        "annotations": data.get("annotations") or {},
    }
