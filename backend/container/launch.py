"""Starting a container: the parent's side of the launch, and undoing it.

spec -> plan (rootfs ops, child config) -> apply (fork into a new PID namespace, cgroup, go). The
parent never changes its own namespaces for longer than the fork: it unshares only the PID
namespace for its next child and switches back at once.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.container.config import require_root, validate
from rustainer.backend.container.state import EXITED, RUNNING, ContainerState, StateStore
from rustainer.backend.errors import (
    CommandFailed,
    Interrupted,
    InvalidSpecError,
    NameInUseError,
    RustainerError,
)
from rustainer.backend.linux.procfs import start_time
from rustainer.backend.process.handshake import READY, encode_go, read_all, split_report
from rustainer.backend.spec import ContainerSpec
from rustainer.backend.util.record import replace
from rustainer.backend.util.rollback import Rollback, fault

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from rustainer.backend.cgroups.base import CgroupManager
    from rustainer.backend.network.ipam import Member
    from rustainer.backend.network.portmap import Forwarder
    from rustainer.backend.process.child import ChildConfig

TIOCGWINSZ = 0x5413  # asm-generic, as child.TIOCSWINSZ


class Launch:
    """One container being started in the foreground: everything it made, so it can be undone."""

    def __init__(self, store: StateStore, state: ContainerState) -> None:
        self.store = store
        self.state = state
        self.cdir = store.container_dir(state.id)
        # The host view mounts its tmpfs root straight onto the shared mount folder; an image's root
        # is an overlay inside the layer's tmpfs there (see child.make_layer).
        image_root = state.spec.rootfs is not None or bool(state.spec.layers)
        self.root = os.path.join(store.mnt, "root") if image_root else store.mnt
        self.cgroup: CgroupManager | None = None
        self.reserved = True  # the state is on disk (False between ``new(early=True)`` and ``start``)
        self.pid: int | None = None
        self.console: int | None = None  # the pty master, with a terminal
        self.forwarder: Forwarder | None = None  # published ports, while they are bound
        # Set by ``finish`` when releasing what the container held failed (recorded as ``unreleased``:
        # the entry is kept, and ``rm`` releases the rest).
        self.release_error: RustainerError | None = None
        # Set by ``finish`` once PID 1 is reaped: the network then lingers (see network.linger).
        self.ended = False
        # What this launch made, each with its undo, so a failure at any step undoes all of it.
        self.undo = Rollback()
        # (pid, start time) of the supervisor this launch runs for as its start helper: it owns the
        # container, gets PID 1 as its own child (CLONE_PARENT) and runs the published ports' relays
        # itself (see supervisor.shim). None: this process does all of that.
        self.helper_of: tuple[int, int] | None = None

    @classmethod
    def new(cls, store: StateStore, spec: ContainerSpec, *, early: bool = False) -> Launch:
        """Reserve the name, make the folders and the cgroup; on any failure nothing is left.

        ``early``: only the folders; ``start`` reserves the name and creates the cgroup after its
        fork, while the container builds its root (not with a bridge network: the container's
        folder must exist before it forks, for its hosts file).
        """
        store.ensure()
        # On cgroup v2 the cgroup exists before the fork, so the child starts in it (see start).
        early = early and spec.network in ("none", "host") and not _may_clone_into_cgroup(spec)
        # The creator owns the entry until the container runs: if it dies before, the next command
        # that meets the entry removes it (cleanup.reconcile), and the name is free again.
        me = os.getpid()
        launch = cls(store, replace(store.new(spec), owner_pid=me, owner_start=start_time(me)))
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
        """Take the name and write the state (see ``StateStore.reserve``). A name held by an entry
        whose start was abandoned (its creator was killed) is taken back."""
        fault("state")
        try:
            self.store.reserve(self.state)
        except NameInUseError:
            if not _reclaim(self.store, self.state.name):
                raise
            self.store.reserve(self.state)
        self.reserved = True
        self.undo.push("state", self._forget)
        spec = self.state.spec
        if spec.image is not None:
            # The state now names the image, so rmi refuses it from here on; one that got in before
            # (between resolving the image and this point) has removed it: stop here.
            from rustainer.backend.images.runfile import still_there

            if not still_there(self.store.root, spec.image, spec.layers):
                from rustainer.backend.errors import ImageNotFoundError

                raise ImageNotFoundError(f"image {spec.image_name or spec.image} was removed while the container "
                                         "was starting")

    def abandon(self) -> None:
        """Undo a launch that did not get going: every step it made, newest first (each undo runs
        even if another failed; the caller raises the error that caused this)."""
        self.undo.unwind()

    # -- preparation ------------------------------------------------------------------------------
    def make_dirs(self) -> None:
        spec = self.state.spec
        if spec.directory is not None and not os.path.exists(spec.directory):
            fault("folder")
            try:
                os.makedirs(spec.directory, 0o755)
            except OSError as err:
                raise InvalidSpecError(f"cannot create directory {spec.directory}: {err.strerror}", errno=err.errno) from err
            self.state = replace(self.state, directory_created=True)
            self.undo.push("folder", lambda: remove_directory(self.state))
            if self.reserved:
                self.store.save(self.state)

    def child_config(self, *, term: str | None = None) -> ChildConfig:
        """Everything the child will do, from the state alone (computed in the child itself for a
        foreground run, in a supervisor's helper for a detached one)."""
        from rustainer.backend.container.config import child_config

        return child_config(self.state, root=self.root, layer_dir=self.store.mnt, cdir=self.cdir, term=term)

    def create_cgroup(self) -> None:
        from rustainer.backend.cgroups.detect import open_manager

        spec = self.state.spec
        fault("cgroup")
        manager = open_manager(self.state.short_id, driver=spec.cgroup_driver, parent=spec.cgroup_parent)
        manager.create(spec.resources)
        self.cgroup = manager
        self.undo.push("cgroup", self._remove_cgroup)
        fault("cgroup-recorded")
        self.state = self.store.update(self.state, cgroup_driver=manager.driver,
                                       cgroup_paths=tuple(sorted(manager.paths().items())),
                                       cgroup_parents=manager.made_parents)

    # -- start ------------------------------------------------------------------------------------
    def start(self, stdio: tuple[int, int, int], cfg: ChildConfig | None = None) -> int:
        """Fork the container's PID 1, let it go once its cgroup is ready; returns its host pid.

        The fork comes first: the child imports its modules, plans and builds its root (``cfg``
        None: it computes its configuration itself) while we create the cgroup (unless ``new``
        did) and record the container; neither waits for the other until the go. With a terminal
        the child allocates its pty inside the container and sends the master back (kept in
        ``self.console``); ``stdio`` are then only placeholders.
        """
        from rustainer.backend.linux.namespaces import clone_into_pid_namespace, fork_into_pid_namespace

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
            from rustainer.backend.process.child import run_child

            os.close(sync_w)
            os.close(err_r)
            run_child(make_config, stdio, sync_r, err_w)

        target = self._clone_target()
        sibling = self.helper_of is not None
        try:
            pid = None if target is None else clone_into_pid_namespace(child, target, sibling=sibling)
            placed = pid is not None  # started in its cgroup: nothing to join or move
            if pid is None:
                pid = fork_into_pid_namespace(child, sibling=sibling)
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
            if target is not None:
                os.close(target)
        os.close(sync_r)
        os.close(err_w)
        self.pid = pid
        self.undo.push("process", self.kill_and_reap)
        owner = self.helper_of or (os.getpid(), start_time(os.getpid()) or 0)
        if self.reserved and self.state.owner_pid != owner[0]:
            # A supervisor taking over from the CLI that reserved the entry: the start is ours now
            # (written while the child builds its root), so the CLI's death no longer abandons it.
            try:
                claimed = self.store.take_over(self.state, owner)
                if claimed is None:
                    raise RustainerError(f"container {self.state.name} was removed while it started")
            except BaseException:
                self.kill_and_reap()
                raise
            self.state = claimed
        early = b""
        try:
            try:
                if not self.reserved:
                    self.reserve()
                if self.cgroup is None:
                    self.create_cgroup()
                assert self.cgroup is not None
                join_files = [] if placed else self.cgroup.self_join_files()
                if not placed:
                    fault("cgroup-join")
                    if not join_files:
                        self.cgroup.add(pid)
                if spec.network not in ("none", "host"):
                    # The lease, the network's bridge and table (and the published ports) need no
                    # child: made while it sets itself up. The veth goes into its network
                    # namespace: wait until it has one.
                    address = self._lease_network()
                    early = os.read(err_r, 1)
                    if early != READY:
                        raise RustainerError("the container's setup failed")
                    self._plug_network(pid, address)
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
                fault("go")
                os.write(sync_w, encode_go(_window_size() if console is not None else b"", join_files))
            except BrokenPipeError:
                pass  # the child is gone already: its report below says why
            except BaseException:
                os.close(sync_w)
                raise
            os.close(sync_w)
            fault("record")
            # Recorded while the child pivots and execs; a failed exec undoes the whole launch. A
            # supervisor's helper records the supervisor with it (one write less).
            supervised = {} if self.helper_of is None else {"supervisor_pid": owner[0], "detached": True}
            self.state = self.store.update(self.state, status=RUNNING, pid=pid, started_at=time.time(),
                                           owner_pid=owner[0], owner_start=owner[1] or None, **supervised)
            if console is not None:
                self.console = _receive_console(console)
            else:
                # What the run needs once the command is going, loaded while the child still builds.
                import rustainer.backend.process.relay  # noqa: F401
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

    def _clone_target(self) -> int | None:
        """A descriptor of the cgroup the child can be started in (v2), or None."""
        path = None if self.cgroup is None else self.cgroup.clone_target()
        if path is None or not _setup_fits(self.state.spec):
            return None
        try:
            return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None

    def _lease_network(self) -> str:
        """Bridge network, the part that needs no child: host ports first (in use is an error
        before anything is made), then the address (and with the network's first member its bridge
        and table); all undone by release() if anything fails. Returns the address."""
        from rustainer.backend.network.manager import lease

        spec = self.state.spec
        if spec.publish:
            from rustainer.backend.network.portmap import Forwarder  # only then

            fault("ports")
            self.forwarder = Forwarder(spec.publish)
            self.undo.push("ports", self._close_ports)
        fault("network")
        address = lease(self.store.root, self._member())
        self.undo.push("network", self._leave_network)
        fault("network-recorded")
        self.state = self.store.update(self.state, network_address=address)
        return address

    def _plug_network(self, pid: int, address: str) -> None:
        """Bridge network, once the child has its namespace: the veth and address in it."""
        from rustainer.backend.network.manager import plug

        plug(self.store.root, self._member(), pid, address)
        if self.forwarder is not None and self.helper_of is None:
            self.forwarder.start(address)

    def _member(self) -> Member:
        from rustainer.backend.network.ipam import Member

        spec = self.state.spec
        return Member(self.state.id, self.state.name, spec.effective_hostname, spec.network, spec.nat)

    def failure(self, report: bytes) -> CommandFailed:
        code, _, message = report.decode(errors="replace").partition("\0")
        return CommandFailed(int(code) if code.isdigit() else 125, message, self.reap())

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
        self.ended = self.pid is None  # PID 1 reaped: its namespaces, and so its veth, go by themselves
        unreleased = None
        try:
            self.release()
        except Exception as err:  # noqa: BLE001 - whatever the release ran into (netlink's own errors too)
            # The end is recorded all the same (how it ended is known), with what is still held:
            # the entry stays (even with --rm) until ``rm`` has released the rest.
            unreleased = str(err) if isinstance(err, RustainerError) else f"{type(err).__name__}: {err}"
            self.release_error = err if isinstance(err, RustainerError) else RustainerError(unreleased)
            record = True
        if not record:
            self.state = replace(self.state, status=EXITED, pid=None, exit_code=code, oom_killed=oom,
                                 finished_at=time.time())
            return self.state
        try:  # the stored record may have changed meanwhile (``update`` of the limits, say)
            current = self.store.load(self.state.id)
        except RustainerError:
            current = self.state
        self.state = self.store.update(current, status=EXITED, pid=None, exit_code=code, oom_killed=oom,
                                       finished_at=time.time(), unreleased=unreleased)
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
        """Undo everything but the state entry, from what the state records: the cgroup, published
        ports and network (the root and its writable layer live in the container's own mount
        namespace: they went with it). Each part is released even if another fails; the first
        failure is raised afterwards."""
        _all_or_first_error((("network", self._leave_network), ("cgroup", self._remove_cgroup),
                             ("ports", self._close_ports)))

    def discard(self) -> None:
        """Forget the container entirely (for --rm, ``rm``, or a start that failed): its -d folder
        (if rustainer made it), then its entry. The entry goes last, so a failure on the way leaves
        an entry that names what is left and a second ``rm`` finishes the job."""
        if self.state.directory_created:
            fault("rm-folder")
            remove_directory(self.state)
        fault("rm-state")
        self._forget()

    def remove_everything(self) -> None:
        """Undo all the container holds, whoever made it: what this launch did (its undo stack),
        then what the state records (cgroup, ports, network) - every part attempted even if another
        fails - and only once all of it is released, the folder and the state entry. If anything
        could not be released, the first failure is raised and the entry stays (consistent: it
        names what is left, and a second ``rm`` retries; see "Undo" in the README)."""
        _all_or_first_error((("release", self.release), ("undo", self.abandon)))
        self.discard()

    # -- the undo of each step (also the parts of release and discard) ------------------------------
    def _close_ports(self) -> None:
        if self.forwarder is not None:
            fault("release-ports")
            self.forwarder.close()  # published ports are free again before the call returns
            self.forwarder = None

    def _remove_cgroup(self) -> None:
        if self.cgroup is not None:
            fault("release-cgroup")
            self.cgroup.remove()
            self.cgroup = None

    def _leave_network(self) -> None:
        if self.state.spec.network not in ("none", "host"):
            from rustainer.backend.network.manager import leave

            fault("release-network")
            leave(self.store.root, self.state.spec.network, self.state.id, ended=self.ended)

    def _forget(self) -> None:
        if self.reserved:
            self.store.delete(self.state)
            self.reserved = False


# Started in its cgroup, the setup (a copy of this Python process: some 3 MB of pages it writes,
# plus its mounts) is charged to the container's memory limit; below this limit it is not, as before:
# the child joins once its root is built.
CLONE_MIN_MEMORY = 16 << 20


def _setup_fits(spec: ContainerSpec) -> bool:
    """Whether the setup may be charged to the container's memory limit (see CLONE_MIN_MEMORY)."""
    memory = spec.resources.memory
    return memory is None or memory >= CLONE_MIN_MEMORY


def _may_clone_into_cgroup(spec: ContainerSpec) -> bool:
    """Whether the container's cgroup will be a cgroupfs v2 one, so that it is worth creating
    before the fork to start the child in it (``Launch.start``). Two stats instead of the driver's
    detection (``cgroups.detect``, not imported before the fork on the other drivers): unified
    cgroup2 at /sys/fs/cgroup and no systemd (whose driver goes first there)."""
    if not _setup_fits(spec):
        return False
    if spec.cgroup_driver is not None:
        return spec.cgroup_driver == "v2"
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers") and not os.path.isdir("/run/systemd/system")


def _reclaim(store: StateStore, name: str) -> bool:
    """Whether the holder of ``name`` was an abandoned entry, now removed (see reconcile)."""
    from rustainer.backend.container.cleanup import reconcile
    from rustainer.backend.errors import ContainerNotFoundError

    try:
        reconcile(store, store.find(name))
    except ContainerNotFoundError:
        return True
    return False


def _all_or_first_error(steps: tuple[tuple[str, Callable[[], object]], ...]) -> None:
    """Run every step (the first given runs last, as an undo stack would), then raise the first
    failure, if any."""
    undo = Rollback()
    for step, action in steps:
        undo.push(step, action)
    failed = undo.unwind()
    if failed:
        raise failed[0][1]


def remove_directory(state: ContainerState) -> None:
    """Remove the -d folder only if rustainer created it; a folder that existed before is never touched."""
    from rustainer.backend.util.fsutil import remove_tree

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


def run_foreground(spec: ContainerSpec, store: StateStore, *, on_started: object = None) -> tuple[int, ContainerState]:
    """Run a container attached to our stdio; returns (exit code, final state).

    SIGINT, SIGTERM and SIGHUP to this process are forwarded to the container's PID 1 (docker's
    sig-proxy; the init passes them on to the command), and the run ends with the container's own
    status. After SIGHUP (the terminal is gone) a container that has not ended within
    ``HANGUP_GRACE`` seconds is killed: a closed terminal never leaves an orphan. Before the
    container runs, these signals abort the start (undone like any failure). A signal this process
    inherited as ignored (``nohup``, a background job's SIGINT) stays ignored.
    """
    require_root()
    validate(spec)
    from rustainer.backend.linux import signals

    proxy = _SignalProxy()
    old = {}
    for sig in (signals.SIGHUP, signals.SIGINT, signals.SIGTERM):
        if signals.get_handler(sig) != signals.SIG_IGN:
            old[sig] = signals.set_handler(sig, proxy.forward)
    old[SIGALRM] = signals.set_handler(SIGALRM, proxy.expire)
    try:
        return _run_foreground(spec, store, on_started, proxy)
    finally:
        proxy.pid = None
        _set_timer(0)
        for sig, handler in old.items():
            signals.set_handler(sig, handler)


SIGALRM = 14
def _catches(pid: int, signum: int) -> bool:
    """Whether a signal from our PID namespace reaches the container's PID 1 rather than being
    dropped by the kernel (pid_namespaces(7): only if it handles the signal): tini (named
    ``rustainer-init``, as is our own init) waits for every signal; any other PID 1 (our setup
    process before its exec, or with --no-init the command) gets only those it has a handler for."""
    from rustainer.backend.linux.procfs import status

    fields = status(pid)
    if fields.get("Name") == "rustainer-init":
        return True
    try:
        return bool(int(fields.get("SigCgt", "0"), 16) >> (signum - 1) & 1)
    except ValueError:
        return False


HANGUP_GRACE = 10.0  # seconds a container may take to end after SIGHUP before it is killed


def _set_timer(seconds: float) -> None:
    import _signal  # type: ignore[import-not-found]

    _signal.setitimer(_signal.ITIMER_REAL, seconds)


class _SignalProxy:
    """The foreground run's handlers: forward to the container once it runs, else abort the start."""

    def __init__(self) -> None:
        self.pid: int | None = None  # the container's PID 1, while it runs and is not reaped
        self.hung_up = False

    def forward(self, signum: int, _frame: object) -> None:
        pid = self.pid
        if pid is None or not _catches(pid, signum):
            # Not running yet, or its PID 1 (our setup process before its exec, or with --no-init a
            # command without a handler) would not get it: the kernel drops a signal sent into a PID
            # namespace that its PID 1 does not handle, and the run would wait on. End it here instead.
            raise Interrupted(signum)
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
        if signum == 1 and not self.hung_up:  # SIGHUP: the terminal is gone
            self.hung_up = True
            grace = os.environ.get("RUSTAINER_HANGUP_GRACE")  # tests shorten it
            _set_timer(float(grace) if grace else HANGUP_GRACE)

    def expire(self, _signum: int, _frame: object) -> None:
        if self.pid is not None:
            try:
                os.kill(self.pid, 9)  # PID 1 of its namespace: everything in it goes too
            except ProcessLookupError:
                pass


def _run_foreground(spec: ContainerSpec, store: StateStore, on_started: object,
                    proxy: _SignalProxy) -> tuple[int, ContainerState]:
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
    proxy.pid = launch.pid
    if callable(on_started):
        on_started(launch.state)
    try:
        from rustainer.backend.process import relay

        if spec.tty:
            if launch.console is not None:
                relay.relay_pty(launch.console)
                os.close(launch.console)
                launch.console = None
        else:
            relay.relay_pipes(*parent_ends)
        status = launch.reap()
        proxy.pid = None
    except BaseException:
        proxy.pid = None
        launch.kill_and_reap()
        launch.finish(0)
        if spec.remove and launch.release_error is None:
            launch.discard()
        raise
    final = launch.finish(status, record=not spec.remove)
    if launch.release_error is not None:
        raise unreleased_error(final)
    if spec.remove:
        launch.discard()
    return final.exit_code or 0, final


def unreleased_error(state: ContainerState) -> RustainerError:
    """The one line for a container that ended but could not release all it held (its entry stays)."""
    return RustainerError(f"container {state.name} ended (exit code {state.exit_code}), but releasing what it "
                          f"held failed: {state.unreleased} (rm releases the rest)", container=state.name)
