"""Create and run containers: the parent's side of the launch, and the clean-up after it.

spec -> plan (rootfs ops, child config) -> apply (fork into a new PID namespace, cgroup, go). The
parent never changes its own namespaces for longer than the fork: it unshares only the PID
namespace for its next child and switches back at once.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.errors import InvalidSpecError, NotRootError, RootfsError, RustainerError
from rustainer.backend.handshake import READY, encode_go, read_all, split_report
from rustainer.backend.record import replace
from rustainer.backend.spec import ContainerSpec, check_cpus_available
from rustainer.backend.state import EXITED, RUNNING, ContainerState, StateStore

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    import socket

    from rustainer.backend.cgroups.base import CgroupManager
    from rustainer.backend.child import ChildConfig

TIOCGWINSZ = 0x5413  # asm-generic, as child.TIOCSWINSZ
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def require_root() -> None:
    if os.geteuid() != 0:
        raise NotRootError(
            "rustainer needs root: creating namespaces, mounts and cgroups is reserved to root "
            "(run it with sudo)")


def available_cpus() -> tuple[int, ...]:
    """The CPUs this process may use; a container's cpuset can only be a subset of them."""
    return tuple(sorted(os.sched_getaffinity(0)))


def validate(spec: ContainerSpec) -> ContainerSpec:
    """Checks that need the host (CPUs, folders) but change nothing; returns the spec to run."""
    if spec.resources.cpus is not None:
        check_cpus_available(spec.resources.cpus, available_cpus())
    if spec.network not in ("none", "host"):
        from rustainer.backend.network.ipam import validate_network_name
        from rustainer.backend.network.store import NetworkStore
        from rustainer.backend.paths import state_root

        validate_network_name(spec.network)
        if not NetworkStore(state_root()).exists(spec.network):
            raise InvalidSpecError(f"unknown network {spec.network!r}: use none, host, bridge or a network "
                                   "made with 'rustainer network create'")
    if spec.publish:
        from rustainer.backend.spec import check_publish

        check_publish(spec.publish, spec.network)
    if spec.rootfs is not None:
        if not os.path.isdir(spec.rootfs):
            raise RootfsError(f"rootfs folder {spec.rootfs} does not exist (or is not a folder)")
    if spec.directory is not None and not os.path.isabs(spec.directory):
        raise InvalidSpecError(f"directory {spec.directory!r} must be an absolute path")
    if spec.directory is not None and os.path.exists(spec.directory) and not os.path.isdir(spec.directory):
        raise InvalidSpecError(f"directory {spec.directory} exists and is not a folder")
    if not spec.command:
        from rustainer.backend.errors import RootfsError as _RootfsError

        shell = default_shell(spec.rootfs)
        if shell is None:
            raise _RootfsError(f"rootfs {spec.rootfs} has no /bin/sh: give a COMMAND to run")
    return spec


def default_shell(rootfs: str | None) -> str | None:
    if rootfs is None:
        return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    from rustainer.backend.rootfs.safepath import resolve_in_root

    for shell in ("/bin/bash", "/bin/sh"):
        found = resolve_in_root(rootfs, shell)
        if found is not None and os.path.isfile(found):
            return shell
    return None


TINI = "/usr/bin/tini-static"  # Debian's and Ubuntu's package `tini`: static, so it runs in any root


def find_init() -> str | None:
    """The host's static tini (docker's --init) to be the container's PID 1: ``$RUSTAINER_TINI``, by
    default TINI. None (not there, or the variable set empty): rustainer's own init, the setup
    process staying on as PID 1 - as correct, but a Python process of ~2.5 MB PSS per container
    where tini costs ~0.1 MB."""
    path = os.environ.get("RUSTAINER_TINI", TINI)
    return path if path and os.access(path, os.X_OK) else None


def _host_entries() -> tuple[object, ...]:
    from rustainer.backend.rootfs.plan import HOST_VIEW_DIRS, HostEntry

    entries = []
    for name in HOST_VIEW_DIRS:
        path = "/" + name
        if os.path.islink(path):
            entries.append(HostEntry(name, os.readlink(path)))
        elif os.path.isdir(path):
            entries.append(HostEntry(name))
    return tuple(entries)


def _ssh_host_keys() -> tuple[str, ...]:
    try:
        names = os.listdir("/etc/ssh")
    except OSError:
        return ()
    return tuple(f"/etc/ssh/{n}" for n in sorted(names) if n.startswith("ssh_host_") and n.endswith("_key"))


class Launch:
    """One container being started in the foreground: everything it made, so it can be undone."""

    def __init__(self, store: StateStore, state: ContainerState) -> None:
        self.store = store
        self.state = state
        self.cdir = store.container_dir(state.id)
        # The host view mounts its tmpfs root straight onto the shared mount folder; an image's root
        # is an overlay inside the layer's tmpfs there (see child.make_layer).
        self.root = store.mnt if state.spec.rootfs is None else os.path.join(store.mnt, "root")
        self.cgroup: CgroupManager | None = None
        self.reserved = True  # the state is on disk (False between ``new(early=True)`` and ``start``)
        self.pid: int | None = None
        self.console: int | None = None  # the pty master, with a terminal

    @classmethod
    def new(cls, store: StateStore, spec: ContainerSpec, *, early: bool = False) -> Launch:
        """Reserve the name, make the folders and the cgroup; on any failure nothing is left.

        ``early``: only the folders; ``start`` reserves the name and creates the cgroup after its
        fork, while the container builds its root (not with a bridge network: the container's
        folder must exist before it forks, for its hosts file).
        """
        store.ensure()
        early = early and spec.network in ("none", "host")
        launch = cls(store, store.new(spec))
        launch.reserved = False
        try:
            if not early:
                launch.reserve()
            launch.make_dirs()
            if not early:
                launch.create_cgroup()
        except BaseException:
            launch.abandon()
            raise
        return launch

    def reserve(self) -> None:
        """Take the name and write the state (see ``StateStore.reserve``)."""
        self.store.reserve(self.state)
        self.reserved = True

    def abandon(self) -> None:
        """Undo a launch that did not get going: its process, cgroup, folders and state entry."""
        try:
            self.kill_and_reap()
            self.release()
        finally:
            self.discard()

    # -- preparation ------------------------------------------------------------------------------
    def make_dirs(self) -> None:
        spec = self.state.spec
        if spec.directory is not None and not os.path.exists(spec.directory):
            try:
                os.makedirs(spec.directory, 0o755)
            except OSError as err:
                raise InvalidSpecError(f"cannot create directory {spec.directory}: {err.strerror}") from err
            self.state = replace(self.state, directory_created=True)
            if self.reserved:
                self.store.save(self.state)

    def child_config(self, *, term: str | None = None) -> ChildConfig:
        """Everything the child will do, from the state alone (computed in the child itself for a
        foreground run, in a supervisor's helper for a detached one)."""
        from rustainer.backend.capabilities import DEFAULT_CAPS, last_cap, mask
        from rustainer.backend.child import ChildConfig
        from rustainer.backend.rootfs.plan import INIT_PATH, build_plan

        spec = self.state.spec
        init_binary = find_init() if spec.init else None
        upper = work = layer = None
        if spec.rootfs is not None:
            layer = self.store.mnt
            upper, work = os.path.join(layer, "upper"), os.path.join(layer, "work")
        hosts = None
        if spec.network not in ("none", "host"):
            from rustainer.backend.network.hosts import create as create_hosts

            hosts = os.path.join(self.cdir, "hosts")  # filled in when the container joins the network
            create_hosts(hosts)
        ops = build_plan(
            rootfs=os.path.realpath(spec.rootfs) if spec.rootfs else None,
            upper=upper, work=work,
            directory=os.path.realpath(spec.directory) if spec.directory else None,
            host_entries=_host_entries(),  # type: ignore[arg-type]
            ssh_keys=_ssh_host_keys() if spec.rootfs is None else (),
            hosts=hosts,
            init_binary=init_binary,
        )
        argv = spec.command or (default_shell(spec.rootfs) or "/bin/sh",)
        env = {"PATH": DEFAULT_PATH, "HOME": "/root", "HOSTNAME": spec.effective_hostname, "container": "rustainer"}
        if spec.tty:
            env["TERM"] = term or os.environ.get("TERM", "xterm")
        env.update(dict(spec.env))
        return ChildConfig(
            root=self.root, ops=tuple(ops), hostname=spec.effective_hostname, argv=tuple(argv),
            env=tuple(env.items()), workdir=spec.directory or "/", new_netns=spec.network != "host",
            caps=mask(DEFAULT_CAPS), last_cap=last_cap(), tty=spec.tty, init=spec.init, layer=layer,
            init_program=INIT_PATH if init_binary is not None else None,
        )

    def create_cgroup(self) -> None:
        from rustainer.backend.cgroups.detect import open_manager

        spec = self.state.spec
        manager = open_manager(self.state.short_id, driver=spec.cgroup_driver, parent=spec.cgroup_parent)
        manager.create(spec.resources)
        self.cgroup = manager
        self.state = self.store.update(self.state, cgroup_driver=manager.driver,
                                       cgroup_paths=tuple(sorted(manager.paths().items())))

    # -- start ------------------------------------------------------------------------------------
    def start(self, stdio: tuple[int, int, int], cfg: ChildConfig | None = None) -> int:
        """Fork the container's PID 1, let it go once its cgroup is ready; returns its host pid.

        The fork comes first: the child imports its modules, plans and builds its root (``cfg``
        None: it computes its configuration itself) while we create the cgroup (unless ``new``
        did) and record the container; neither waits for the other until the go. With a terminal
        the child allocates its pty inside the container and sends the master back (kept in
        ``self.console``); ``stdio`` are then only placeholders.
        """
        from rustainer.backend.namespaces import fork_into_pid_namespace

        spec = self.state.spec
        console = child_end = None
        if spec.tty:
            import socket

            console, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)

        def make_config() -> ChildConfig:
            made = cfg if cfg is not None else self.child_config()
            return made if child_end is None else replace(made, console_fd=child_end.fileno())

        def child() -> None:
            from rustainer.backend.child import run_child

            os.close(sync_w)
            os.close(err_r)
            run_child(make_config, stdio, sync_r, err_w)

        try:
            pid = fork_into_pid_namespace(child)
        except BaseException:
            for fd in (sync_r, sync_w, err_r, err_w):
                os.close(fd)
            if console is not None and child_end is not None:
                console.close()
                child_end.close()
            raise
        finally:
            if child_end is not None:
                child_end.close()
        os.close(sync_r)
        os.close(err_w)
        self.pid = pid
        early = b""
        try:
            try:
                if not self.reserved:
                    self.reserve()
                if self.cgroup is None:
                    self.create_cgroup()
                assert self.cgroup is not None
                join_files = self.cgroup.self_join_files()
                if not join_files:
                    self.cgroup.add(pid)
                if spec.network not in ("none", "host"):
                    # The veth goes into the child's network namespace: wait until it has one.
                    early = os.read(err_r, 1)
                    if early != READY:
                        raise RustainerError("the container's setup failed")
                    self._join_network(pid)
            except RustainerError:
                # A child that failed its setup early is gone before we could add it: its own
                # report says more than our ESRCH.
                os.close(sync_w)
                report = split_report(early + read_all(err_r))
                if report:
                    raise self.failure(report) from None
                raise
            except BaseException:
                os.close(sync_w)
                raise
            try:
                os.write(sync_w, encode_go(_window_size() if console is not None else b"", join_files))
            except BrokenPipeError:
                pass  # the child is gone already: its report below says why
            os.close(sync_w)
            # Recorded while the child pivots and execs; a failed exec undoes the whole launch.
            self.state = self.store.update(self.state, status=RUNNING, pid=pid, started_at=time.time(),
                                           owner_pid=os.getpid(), owner_start=process_start(os.getpid()))
            if console is not None:
                self.console = _receive_console(console)
            else:
                # What the run needs once the command is going, loaded while the child still builds.
                import rustainer.backend.fsutil
                import rustainer.backend.relay  # noqa: F401
            report = split_report(early + read_all(err_r))
        except BaseException:
            self.kill_and_reap()
            raise
        finally:
            os.close(err_r)
            if console is not None:
                console.close()
        if report:
            raise self.failure(report)
        return pid

    def _join_network(self, pid: int) -> None:
        """Bridge network: host ports first (in use is an error before anything is made), then the
        veth and address; all undone by release() if anything fails."""
        from rustainer.backend.network.manager import join
        from rustainer.backend.network.portmap import Forwarder

        spec = self.state.spec
        self.forwarder: Forwarder | None = Forwarder(spec.publish) if spec.publish else None
        address = join(self.store.root, self.state, pid)
        self.state = self.store.update(self.state, network_address=address)
        if self.forwarder is not None:
            self.forwarder.start(address)

    def failure(self, report: bytes) -> ChildFailed:
        code, _, message = report.decode(errors="replace").partition("\0")
        return ChildFailed(int(code) if code.isdigit() else 125, message, self.reap())

    def kill_and_reap(self) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
            self.reap()

    def reap(self) -> int:
        assert self.pid is not None
        while True:
            try:
                _, status = os.waitpid(self.pid, 0)
            except InterruptedError:
                continue
            except ChildProcessError:
                return 0
            self.pid = None
            return status

    # -- end ----------------------------------------------------------------------------------------
    def finish(self, status: int, *, record: bool = True) -> ContainerState:
        """Release the cgroup and the mount points, and record how it ended (unless the entry is
        about to be discarded: ``--rm`` need not pay for reading the record back)."""
        code = os.waitstatus_to_exitcode(status)
        code = 128 - code if code < 0 else code
        oom = self.oom_killed()
        self.release()
        if not record:
            self.state = replace(self.state, status=EXITED, pid=None, exit_code=code, oom_killed=oom,
                                 finished_at=time.time())
            return self.state
        try:  # the stored record may have changed meanwhile (``update`` of the limits, say)
            current = self.store.load(self.state.id)
        except RustainerError:
            current = self.state
        self.state = self.store.update(current, status=EXITED, pid=None, exit_code=code, oom_killed=oom,
                                       finished_at=time.time())
        return self.state

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer ended a process of the container (False if unknown)."""
        if self.cgroup is None:
            return False
        try:
            return self.cgroup.oom_killed()
        except RustainerError:
            return False

    def release(self) -> None:
        """Undo everything but the state entry: the cgroup, published ports and network. (The root and
        its writable layer live in the container's own mount namespace: they went with it.)"""
        forwarder = getattr(self, "forwarder", None)
        if forwarder is not None:
            forwarder.close()  # published ports are free again before the call returns
            self.forwarder = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        if self.state.spec.network not in ("none", "host"):
            from rustainer.backend.network.manager import leave

            leave(self.store.root, self.state.spec.network, self.state.id)

    def discard(self) -> None:
        """Forget the container entirely (for --rm, or a start that failed)."""
        remove_directory(self.state)
        if self.reserved:
            self.store.delete(self.state)


def remove_directory(state: ContainerState) -> None:
    """Remove the -d folder only if rustainer created it; a folder that existed before is never touched."""
    from rustainer.backend.fsutil import remove_tree

    directory = state.spec.directory
    if state.directory_created and directory and os.path.isdir(directory) and not os.path.islink(directory):
        try:
            remove_tree(directory)
        except OSError:
            pass  # a busy or half-removed folder is not worth failing the removal of the container


def _receive_console(sock: socket.socket) -> int | None:
    """The pty master the child sends; None if the child died first (its report says why)."""
    import socket

    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    return fds[0] if fds else None


def _window_size() -> bytes:
    """Our terminal's ``struct winsize`` (for the container's pty before its command starts), or
    nothing if stdin is no terminal."""
    import fcntl

    try:
        return fcntl.ioctl(0, TIOCGWINSZ, bytes(8))
    except OSError:
        return b""


def open_join_files(cgroup: CgroupManager) -> tuple[int, ...]:
    """The cgroup files a child writes ``0`` into to join by itself (cheaper than the parent moving
    it: see ``CgroupManager.self_join_files``), opened here, before the child's root changes."""
    from rustainer.backend.handshake import open_join_files as open_files

    return open_files(cgroup.self_join_files())


class ChildFailed(RustainerError):
    """The container's setup or exec failed; ``exit_code`` is 125, 126 or 127."""

    def __init__(self, exit_code: int, message: str, status: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status


def run_foreground(spec: ContainerSpec, store: StateStore, *, on_started: object = None) -> tuple[int, ContainerState]:
    """Run a container attached to our stdio; returns (exit code, final state)."""
    require_root()
    validate(spec)
    from rustainer.backend import signals

    # A closed terminal (SIGHUP) or a polite kill (SIGTERM) must not leave the container behind:
    # turn them into an exception so the clean-up below runs.
    old = {sig: signals.set_handler(sig, _raise_signal) for sig in (signals.SIGHUP, signals.SIGTERM)}
    try:
        return _run_foreground(spec, store, on_started)
    finally:
        for sig, handler in old.items():
            signals.set_handler(sig, handler)


class Signalled(RustainerError):
    """The CLI was told to stop (SIGHUP, SIGTERM) while its container ran; it was stopped too."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by signal {signum}; the container was stopped and cleaned up")
        self.exit_code = 128 + signum


def _raise_signal(signum: int, _frame: object) -> None:
    raise Signalled(signum)


def _run_foreground(spec: ContainerSpec, store: StateStore, on_started: object) -> tuple[int, ContainerState]:
    launch = Launch.new(store, spec, early=True)
    try:
        if spec.tty:
            # Placeholders until the child opens its own pty: never the caller's terminal.
            null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            stdio = (null, null, null)
            parent_ends: tuple[int, ...] = ()
            child_ends: tuple[int, ...] = (null,)
        else:
            in_r, in_w = os.pipe2(os.O_CLOEXEC)
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            err_r, err_w = os.pipe2(os.O_CLOEXEC)
            stdio = (in_r, out_w, err_w)
            parent_ends = (in_w, out_r, err_r)
            child_ends = stdio
        try:
            launch.start(stdio)
        finally:
            for fd in child_ends:
                os.close(fd)
    except BaseException:
        launch.abandon()
        raise
    if callable(on_started):
        on_started(launch.state)
    try:
        from rustainer.backend import relay

        if spec.tty:
            if launch.console is not None:
                relay.relay_pty(launch.console)
                os.close(launch.console)
                launch.console = None
        else:
            relay.relay_pipes(*parent_ends)
        status = launch.reap()
    except BaseException:
        launch.kill_and_reap()
        launch.finish(0)
        if spec.remove:
            launch.discard()
        raise
    final = launch.finish(status, record=not spec.remove)
    if spec.remove:
        launch.discard()
    return final.exit_code or 0, final


def reopen_cgroup(state: ContainerState) -> CgroupManager | None:
    """The container's cgroup manager from its stored driver and paths (None if it never had one)."""
    if state.cgroup_driver is None:
        return None
    from rustainer.backend.cgroups.detect import open_manager

    return open_manager(state.short_id, driver=state.cgroup_driver, parent=state.spec.cgroup_parent,
                        paths=dict(state.cgroup_paths) or None)


def is_alive(state: ContainerState) -> bool:
    """Running for real: same boot, and the recorded pid is still in the container's cgroup."""
    from rustainer.backend.state import boot_id

    if state.status != RUNNING or state.pid is None or state.boot_id != boot_id():
        return False
    manager = reopen_cgroup(state)
    try:
        return manager is not None and state.pid in manager.pids()
    except RustainerError:
        return False


def reconcile(store: StateStore, state: ContainerState) -> ContainerState:
    """Make a recorded "running" container that is gone (its supervisor or CLI was killed, or the host
    rebooted) an exited one, and release what it held. Everything that lists or acts on containers
    calls this first, so there are no running ghosts."""
    if state.status != RUNNING or is_alive(state) or owner_alive(state):
        return state  # running, or its owner is about to record the end itself
    # The owner may have recorded the end (and exited) since ``state`` was read: read it again. Now
    # that the owner is seen gone, whatever it wrote is on disk, so this read cannot miss it.
    try:
        state = store.load(state.id)
    except RustainerError:
        return replace(state, status=EXITED, pid=None)  # ended and removed meanwhile (``--rm``)
    if state.status != RUNNING:
        return state
    launch = Launch(store, state)
    manager = reopen_cgroup(state) if state.boot_id == _boot_id() else None
    if manager is not None and manager.exists():
        manager.kill_all(9)  # stragglers, e.g. an exec'd process outside the PID namespace's reach
        launch.cgroup = manager
    oom = launch.oom_killed()
    launch.release()
    code = state.exit_code if state.exit_code is not None else 137
    why = "the host rebooted" if state.boot_id != _boot_id() else "its supervisor or CLI was killed"
    state = store.update(state, status=EXITED, pid=None, supervisor_pid=None, exit_code=code, oom_killed=oom,
                         finished_at=state.finished_at or time.time(), error=f"lost: {why}")
    return state


def process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def owner_alive(state: ContainerState) -> bool:
    """The CLI or supervisor that owns the container still runs (same boot, same process)."""
    if state.owner_pid is None or state.owner_start is None or state.boot_id != _boot_id():
        return False
    try:
        with open(f"/proc/{state.owner_pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == state.owner_start


def _boot_id() -> str:
    from rustainer.backend.state import boot_id

    return boot_id()


def supervisor_of(state: ContainerState) -> int | None:
    """The live supervisor's pid, checked as the parent of the container's PID 1 (never a reused pid)."""
    if not state.detached or state.supervisor_pid is None or state.pid is None:
        return None
    try:
        with open(f"/proc/{state.pid}/status") as f:
            ppid = next((line.split()[1] for line in f if line.startswith("PPid:")), "")
    except OSError:
        return None
    return state.supervisor_pid if ppid == str(state.supervisor_pid) else None


def wait_until_exited(store: StateStore, state: ContainerState, timeout: float) -> bool:
    """Poll the state until the owner recorded the end (or removed the container)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if store.load(state.id).status != RUNNING:
                return True
        except RustainerError:
            return True
        time.sleep(0.02)
    return False


def _stop_through_supervisor(store: StateStore, state: ContainerState) -> bool:
    """Ask a detached container's supervisor to end it and clean up; False if there is none."""
    import signal

    supervisor = supervisor_of(state)
    if supervisor is None:
        return False
    os.kill(supervisor, signal.SIGTERM)
    return wait_until_exited(store, state, 10.0)


def remove_container(store: StateStore, state: ContainerState, *, force: bool = False) -> None:
    """``rm``: refuse a live container unless forced; release what is left; forget it."""
    state = reconcile(store, state)
    if is_alive(state):
        if not force:
            raise RustainerError(f"container {state.name} is running: stop it first or use rm -f")
        if _stop_through_supervisor(store, state):
            try:
                state = store.load(state.id)
            except RustainerError:
                return  # it was started with --rm: the supervisor removed it already
        else:
            manager = reopen_cgroup(state)
            assert manager is not None and state.pid is not None
            try:
                os.kill(state.pid, 9)
            except ProcessLookupError:
                pass
            manager.kill_all(9)
    launch = Launch(store, state)
    launch.cgroup = reopen_cgroup(state)
    if launch.cgroup is not None and not launch.cgroup.exists():
        launch.cgroup = None
    launch.release()
    launch.discard()
