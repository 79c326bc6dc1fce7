"""The per-container supervisor: owns the pty master, keeps the screen, serves attach clients.

One small process per detached container, in its own session, so it outlives the CLI, the
dashboard and the terminal that started it. It never throttles the container: the pty is drained
first, the terminal model is fed behind (coalesced), and a client that cannot keep up is dropped.
When the container ends it records the exit (code, OOM, time), releases the cgroup and the
mount points, and tells the attached clients.

The terminal model is built only when it is needed: when a client attaches, or once the output
grows past ``LAZY_LIMIT``. Until then the output is kept raw, all of it since the start, so the
model built later is exactly the one fed as it came; an idle shell that nobody attached to never
pays for it (about a third of a megabyte: see zygote.py for why every page counts).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time

from rustainer.backend.linux import signals
from rustainer.backend.supervisor import protocol as P

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from rustainer.backend.container.launch import Launch
    from rustainer.backend.container.logfile import RotatingLog
    from rustainer.backend.container.state import StateStore
    from rustainer.backend.supervisor.recording import Recorder
    from rustainer.backend.terminal import Terminal

READ_CHUNK = 65536
PARSE_SLICE = 8 << 10  # bytes fed to the terminal model before the pty is checked again
BACKLOG_LIMIT = 8 << 20  # unparsed output kept at most; beyond it the oldest half is skipped
CLIENT_LIMIT = 8 << 20  # queued output per client before it is dropped as too slow
CLIENTS_LIMIT = 32 << 20  # queued output of all clients together: past it, the most behind is dropped
MAX_CLIENTS = 64  # connections at once; past it the oldest that has not said HELLO makes room
GOODBYE_TIMEOUT = 1.0  # seconds all clients together get to read the EXIT frame at the end
INPUT_LIMIT = 1 << 20
LAZY_LIMIT = 64 << 10  # raw output kept, unparsed, while no client has needed the terminal model
TRIM_AFTER = 1 << 20  # a backlog that grew past this gives its pages back to the kernel once parsed
DEFAULT_SIZE = (24, 80)
SIGPIPE = 13  # Linux's number, like the constants of backend/signals.py


class Client:
    __slots__ = ("sock", "decoder", "out", "ready")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = P.Decoder(P.FROM_CLIENT)
        self.out = bytearray()
        self.ready = False  # output flows only after HELLO


class Supervisor:
    def __init__(self, launch: Launch, master: int, listener: socket.socket, log: RotatingLog,
                 size: tuple[int, int] = DEFAULT_SIZE) -> None:
        self.launch = launch
        self.master = master
        self.listener = listener
        self.log = log
        self.size = size  # (rows, columns) of the container's pty
        self.term: Terminal | None = None  # built by terminal() when first needed
        self.clients: dict[int, Client] = {}
        self.backlog: list[bytes] = []
        self.backlog_size = 0
        self.backlog_peak = 0
        self.to_master = bytearray()
        self.master_open = True
        self.stop_requested = False
        self.recorder: Recorder | None = None  # an asciicast recording under way (recording.py)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self) -> None:
        os.set_blocking(self.master, False)
        self.listener.setblocking(False)
        while self.master_open:
            readers = [self.master, self.listener.fileno(), *self.clients]
            writers = [fd for fd, c in self.clients.items() if c.out]
            if self.to_master:
                writers.append(self.master)
            timeout = 0 if self._parse_due() or (self.recorder is not None and self.recorder.pending) else None
            try:
                readable, writable, _ = select.select(readers, writers, [], timeout)
            except InterruptedError:
                continue
            if self.master in readable:
                self._drain_master()
            if self.master in writable:
                self._write_master()
            for fd in readable:
                if fd == self.listener.fileno():
                    self._accept()
                elif fd in self.clients:
                    self._read_client(self.clients[fd])
            for fd in writable:
                if fd in self.clients:
                    self._flush_client(self.clients[fd])
            if self.recorder is not None and self.recorder.pending and (
                    self.master not in readable or self.recorder.due):
                self._flush_recording()  # behind the output, as the parsing
            if self.master not in readable and self._parse_due():
                self._parse(PARSE_SLICE)

    def _parse_due(self) -> bool:
        return bool(self.backlog) and (self.term is not None or self.backlog_size > LAZY_LIMIT)

    def terminal(self) -> Terminal:
        """The terminal model; built on first use (it is then fed everything kept so far)."""
        if self.term is None:
            from rustainer.backend.terminal import Terminal

            rows, cols = self.size
            self.term = Terminal(cols, rows)
        return self.term

    def _drain_master(self) -> None:
        """Read everything the container has written so far (up to 4 MB per turn), before any parsing."""
        for _ in range(64):
            try:
                data = os.read(self.master, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError as err:
                if err.errno != errno.EIO:
                    raise
                data = b""
            if not data:  # every slave descriptor closed: the container is gone
                self.master_open = False
                return
            self.log.write(data)
            if self.recorder is not None:
                self.recorder.output(data)
            if self.term is None and self.backlog and len(self.backlog[-1]) < 4096:
                self.backlog[-1] += data  # an idle shell's trickle: a few objects, not thousands
            else:
                self.backlog.append(data)
            self.backlog_size += len(data)
            if self.backlog_size > self.backlog_peak:
                self.backlog_peak = self.backlog_size
            if self.backlog_size > BACKLOG_LIMIT:
                self._skip_backlog()
            if self.clients:
                out = P.frame(P.OUTPUT, data)
                for client in list(self.clients.values()):
                    if client.ready:
                        self._queue(client, out)

    def _skip_backlog(self) -> None:
        """Parsing fell far behind a flood: keep the newest output only (the screen stays right for
        line-oriented output; a full-screen program repaints soon anyway)."""
        while self.backlog_size > BACKLOG_LIMIT // 2 and len(self.backlog) > 1:
            self.backlog_size -= len(self.backlog.pop(0))

    def _parse(self, budget: int) -> None:
        """Feed the terminal model from the backlog: ``budget`` bytes at most (0: everything)."""
        if not self.backlog:
            return
        term = self.terminal()
        fed = 0
        while self.backlog and (budget <= 0 or fed < budget):
            chunk = self.backlog[0]
            if budget > 0 and len(chunk) > budget - fed:
                take = budget - fed
                self.backlog[0] = chunk[take:]
                chunk = chunk[:take]
            else:
                self.backlog.pop(0)
            self.backlog_size -= len(chunk)
            term.feed(chunk)
            fed += len(chunk)
        if not self.backlog and self.backlog_peak > TRIM_AFTER:
            self.backlog_peak = 0
            release_free_memory()

    def _write_master(self) -> None:
        try:
            n = os.write(self.master, self.to_master)
        except BlockingIOError:
            return
        except OSError:
            self.to_master.clear()
            return
        del self.to_master[:n]

    # -- clients ----------------------------------------------------------------------------------
    def _accept(self) -> None:
        """Take one connection: root's only (its credentials, not just the socket's mode), and at
        most ``MAX_CLIENTS`` at once, so thousands of connections opened and dropped, or held open
        without a word, never exhaust the descriptors (nor push them past select's 1024)."""
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return  # nothing to take (EAGAIN), or a peer gone before we took it (ECONNABORTED)
        try:
            uid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        except OSError:
            uid = -1
        if uid != 0:
            sock.close()
            return
        if len(self.clients) >= MAX_CLIENTS:
            idle = next((c for c in self.clients.values() if not c.ready), None)
            if idle is None:
                sock.close()  # every place is taken by a client being served
                return
            self._drop(idle)
        sock.setblocking(False)
        self.clients[sock.fileno()] = Client(sock)

    def _drop(self, client: Client) -> None:
        fd = client.sock.fileno()
        if fd >= 0 and self.clients.get(fd) is client:
            del self.clients[fd]
        client.sock.close()
        if len(client.out) > TRIM_AFTER:
            client.out = bytearray()
            release_free_memory()  # a slow client's megabytes go back to the kernel with it

    def _queue(self, client: Client, data: bytes) -> None:
        """Queue output for a client; one that falls too far behind is dropped (it may reattach and
        get the current screen): the container's output is never held up for a client, and what
        the clients hold together stays bounded."""
        if client.sock.fileno() < 0:
            return  # dropped meanwhile (to make room for the others)
        client.out += data
        if len(client.out) > CLIENT_LIMIT:
            self._drop(client)
        elif len(client.out) > CLIENT_LIMIT // 8 and \
                sum(len(c.out) for c in self.clients.values()) > CLIENTS_LIMIT:
            self._drop(max(self.clients.values(), key=lambda c: len(c.out)))

    def _flush_client(self, client: Client) -> None:
        try:
            n = client.sock.send(client.out)
        except BlockingIOError:
            return
        except OSError:
            self._drop(client)
            return
        del client.out[:n]

    def _read_client(self, client: Client) -> None:
        try:
            data = client.sock.recv(READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        try:
            self._serve(client, client.decoder.feed(data))
        except P.ProtocolError:
            self._drop(client)  # a broken client goes; the container and the others stay
        except Exception:  # noqa: BLE001 - whatever a client's request runs into, it never ends the
            self._drop(client)  # supervisor (the container would lose its terminal with it)

    def _serve(self, client: Client, frames: list[tuple[bytes, bytes]]) -> None:
        """Carry out a client's frames (the decoder checked them)."""
        for kind, payload in frames:
            if kind == P.INPUT:
                if len(self.to_master) + len(payload) <= INPUT_LIMIT:
                    self.to_master += payload
            elif kind == P.RESIZE:
                self._resize(*P.parse_size(payload))
            elif kind == P.RECORD:
                self._record(client, payload == b"1")
            elif kind == P.HELLO:
                self._hello(client, *P.parse_hello(payload))
            elif kind == P.DETACH:
                # What fits in its socket now goes; the supervisor never waits on one client (one
                # that asks to detach and then never reads would hold up the container's output).
                self._flush_client(client)
                self._drop(client)
                return

    def _hello(self, client: Client, mode: bytes, rows: int, cols: int) -> None:
        if rows and cols:
            self._resize(rows, cols)
        if mode == P.MODE_REPAINT:
            self._parse(0)  # the screen must be current before it is sent
            self._queue(client, P.frame(P.OUTPUT, self.terminal().repaint(include_history=True)))
        elif mode == P.MODE_SNAPSHOT:
            import json

            self._parse(0)
            self._queue(client, P.frame(P.SNAPSHOT, json.dumps(self.terminal().snapshot()).encode()))
        client.ready = True

    def _resize(self, rows: int, cols: int) -> None:
        import fcntl
        import termios

        if not rows or not cols or (rows, cols) == self.size:
            return
        self._parse(0)  # output written at the old size is parsed at the old size
        try:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        except OSError:
            return
        self.size = (rows, cols)
        if self.term is not None:
            self.term.resize(cols, rows)
        if self.recorder is not None:
            self._recording_step(lambda rec: rec.resize(rows, cols))

    # -- recording (recording.py) -----------------------------------------------------------------
    def _record(self, client: Client, on: bool) -> None:
        """A control client's RECORD: start or stop; the REPLY carries the path or the error."""
        try:
            path = self.start_recording() if on else self.stop_recording()
        except OSError as err:
            self._queue(client, P.reply(False, f"cannot record: {err.strerror or err}"))
            return
        self._queue(client, P.reply(True, path))

    def start_recording(self) -> str:
        """Record from now on (the current screen first); the recording's path. Already recording:
        the same recording goes on."""
        from rustainer.backend.supervisor.recording import Recorder, recording_path

        if self.recorder is not None:
            return self.recorder.path
        state = self.launch.state
        self._parse(0)  # the screen as it is now opens the recording
        rows, cols = self.size
        env = {"TERM": os.environ.get("TERM") or "xterm-256color",
               "SHELL": state.spec.command[0] if state.spec.command else "/bin/sh"}
        recorder = Recorder(recording_path(self.launch.store, state.id), rows, cols, env=env, title=state.name)
        try:
            recorder.output(self.terminal().repaint(include_history=False))
            recorder.flush()
        except BaseException:
            recorder.close()
            raise
        self.recorder = recorder
        self._note_recording(True)
        return recorder.path

    def stop_recording(self) -> str:
        """Stop (what was read so far is written); the recording's path ("" if none was made)."""
        from rustainer.backend.supervisor.recording import recording_path

        recorder, self.recorder = self.recorder, None
        if recorder is None:
            path = recording_path(self.launch.store, self.launch.state.id)
            return path if os.path.exists(path) else ""
        try:
            recorder.close()
        finally:
            self._note_recording(False)
        return recorder.path

    def _flush_recording(self) -> None:
        self._recording_step(lambda rec: rec.flush())

    def _recording_step(self, step: Callable[[Recorder], None]) -> None:
        """A write to the recording; a failing one (disk full) or a full recording ends it, never the
        supervisor."""
        recorder = self.recorder
        assert recorder is not None
        try:
            step(recorder)
        except OSError:
            recorder.full = True
        if recorder.full:
            try:
                self.stop_recording()
            except OSError:
                pass

    def _note_recording(self, on: bool) -> None:
        """Whether a recording is under way goes into the state (``ps``, ``inspect``, the dashboard's
        REC), read back first so that a change made meanwhile (``update``) is kept."""
        from rustainer.backend.errors import RustainerError

        store = self.launch.store
        try:
            self.launch.state = store.update(store.load(self.launch.state.id), recording=on)
        except RustainerError:
            pass

    def goodbye(self, exit_code: int) -> None:
        """Tell every client how it ended, then let them go: all of them within one deadline, so
        clients that never read cannot delay the end (its record, the next start of the name)."""
        message = P.frame(P.EXIT, str(exit_code).encode())
        for client in self.clients.values():
            client.out += message
        end = time.monotonic() + GOODBYE_TIMEOUT
        while True:
            waiting = [fd for fd, c in self.clients.items() if c.out]
            left = end - time.monotonic()
            if not waiting or left <= 0:
                break
            try:
                _, writable, _ = select.select([], waiting, [], left)
            except InterruptedError:
                continue
            for fd in writable:
                if fd in self.clients:
                    self._flush_client(self.clients[fd])
        for client in list(self.clients.values()):
            self._drop(client)


def release_free_memory() -> None:
    """Give the free pages malloc keeps back to the kernel: after a flood, glibc would otherwise
    keep the backlog's megabytes for as long as the container runs (freed, but not returned)."""
    from rustainer.backend.linux.syscalls import malloc_trim

    malloc_trim()


def open_listener(path: str) -> socket.socket:
    """The attach endpoint: a unix socket only root can use (mode 0600 in a 0700 folder)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        with P.SocketPath(path) as short:
            sock.bind(short)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    return sock


def become_supervisor(root: str, cid: str, env: Mapping[str, str], report_fd: int) -> None:
    """Runs in the freshly forked supervisor process (its own session); never returns.

    ``env``: the caller's START_ENV (zygote.start_env), for the container's configuration."""
    code = 0
    try:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.closerange(3, report_fd)
        os.closerange(report_fd + 1, 1 << 16)
        os.chdir("/")
        for signum in (signals.SIGINT, signals.SIGHUP, SIGPIPE):
            signals.set_handler(signum, signals.SIG_IGN)
        code = _supervise(root, cid, env, report_fd)
    except BaseException as err:  # noqa: BLE001 - the CLI must hear about it
        _report(report_fd, failure_report(err))
    finally:
        os._exit(code)


def failure_report(err: BaseException) -> str:
    """What the CLI is told of a failed start: exit code, NUL, one line."""
    from rustainer.backend.errors import CommandFailed, RustainerError

    if isinstance(err, CommandFailed):
        return f"{err.exit_code}\0{err}"
    if isinstance(err, RustainerError):
        return f"125\0{err}"
    return f"125\0supervisor failed: {type(err).__name__}: {err}"


def _report(fd: int, text: str) -> None:
    try:
        os.write(fd, text.encode(errors="replace"))
        os.close(fd)
    except OSError:
        pass


def _supervise(root: str, cid: str, env: Mapping[str, str], report_fd: int) -> int:
    from rustainer.backend.container.logfile import RotatingLog
    from rustainer.backend.container.state import StateStore

    store = StateStore(root)
    listener = open_listener(store.socket_path(cid))
    log = RotatingLog(store.log_path(cid))
    started = start_in_helper(store, cid, env, report_fd)
    if started is None:
        return 0  # the helper undid the start and told the CLI why
    launch, helper = started
    master = launch.console
    assert master is not None
    rows, cols = DEFAULT_SIZE
    import fcntl
    import termios

    fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    sup = Supervisor(launch, master, listener, log, (rows, cols))
    # SIGTERM to the supervisor: end the container, then clean up as for any exit.
    container_pid = launch.pid

    def on_term(_sig: int, _frame: object) -> None:
        if container_pid is not None:
            try:
                os.kill(container_pid, signals.SIGKILL)
            except ProcessLookupError:
                pass

    signals.set_handler(signals.SIGTERM, on_term)
    _report(report_fd, "ok")
    _wait(helper)  # after the answer: its exit (the end of a whole address space) is not the CLI's wait
    try:
        sup.run()
    finally:
        status = launch.reap() if launch.pid is not None else 0
        if sup.recorder is not None:
            try:
                sup.stop_recording()  # the last output is in the recording before the end is recorded
            except OSError:
                pass
        # The socket goes before the end is recorded: `rm -f` removes the folder as soon as it is,
        # and must not meet a file that is vanishing under it.
        listener.close()
        try:
            os.unlink(store.socket_path(cid))
        except FileNotFoundError:
            pass
        final = launch.finish(status)
        sup.goodbye(final.exit_code or 0)
        log.close()
        if final.spec.remove and launch.release_error is None:
            launch.discard()
    return 0


# The helper's exit status once it has told the CLI itself why the start failed.
HELPER_REPORTED = 3


def start_in_helper(store: StateStore, cid: str, env: Mapping[str, str], report_fd: int) -> tuple[Launch, int] | None:
    """Start the container from a short-lived child of ours, the start helper; the container's
    PID 1 is cloned as our own child all the same (CLONE_PARENT), and we are handed its pty master,
    its published ports' listeners and the state it recorded. Returns the launch and the helper's
    pid (it is ending: reap it once the CLI has its answer); None if the start failed: the helper
    has undone it and told the CLI why.

    Why a helper: every page a process writes after the launcher's fork is its own for as long as
    it lives (see zygote.py), and the start - planning, the state's records, the cgroup, the
    network, the handshake - wrote some 0.4-0.5 MB of them, kept by the supervisor for the whole
    life of the container. The helper's pages go with it. It dies with us (PR_SET_PDEATHSIG) as the
    container does, so a killed supervisor leaves what a killed start always left: an entry whose
    owner is gone, for the next command's reconcile."""
    import pickle

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    me = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - reports through the socket or the CLI's report pipe
        try:
            ours.close()
            _helper(store, cid, env, report_fd, theirs, me)
        finally:
            os._exit(1)
    theirs.close()
    try:  # a length, then the pickle; the fds come with its first bytes
        data, fds, _flags, _addr = socket.recv_fds(ours, 1 << 16, 64, socket.MSG_CMSG_CLOEXEC)
        while len(data) >= 4 and len(data) < 4 + struct.unpack("=I", data[:4])[0]:
            chunk = ours.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    finally:
        ours.close()
    if len(data) < 4 or len(data) != 4 + struct.unpack("=I", data[:4])[0]:
        status = _wait(pid)
        for fd in fds:
            os.close(fd)
        _end_children()
        if os.WIFEXITED(status) and os.WEXITSTATUS(status) == HELPER_REPORTED:
            return None
        from rustainer.backend.errors import RustainerError

        how = f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.waitstatus_to_exitcode(status)}"
        raise RustainerError(f"the container's start was interrupted: its start helper ended ({how})")
    from rustainer.backend.container.launch import Launch

    state, cgroup, child_pid, relays = pickle.loads(data[4:])
    launch = Launch(store, state)
    launch.cgroup = cgroup
    launch.pid = child_pid
    launch.console = fds[0]
    if relays:
        from _socket import socket as raw_socket

        from rustainer.backend.network.portmap import Forwarder

        launch.forwarder = Forwarder.adopt([(raw_socket(fileno=fd), port, proto)
                                            for fd, (port, proto) in zip(fds[1:], relays, strict=True)])
        launch.forwarder.start(state.network_address or "")
    return launch, pid


def _helper(store: StateStore, cid: str, env: Mapping[str, str], report_fd: int, sock: socket.socket,
            supervisor: int) -> None:
    """In the start helper: configure and start the container as the supervisor's, undo it all on
    failure (and tell the CLI), else hand the supervisor what it keeps; never returns."""
    import pickle

    from rustainer.backend.container.launch import Launch
    from rustainer.backend.container.liveness import reopen_cgroup
    from rustainer.backend.linux import syscalls
    from rustainer.backend.linux.procfs import start_time
    from rustainer.backend.supervisor.zygote import container_term

    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, 9)
    if os.getppid() != supervisor:
        os._exit(1)  # it died before we could ask to die with it
    launch = None
    try:
        launch = Launch(store, store.load(cid))
        launch.cgroup = reopen_cgroup(launch.state)
        launch.helper_of = (supervisor, start_time(supervisor) or 0)
        launch.start((0, 1, 2), launch.child_config(term=container_term(env)))
    except BaseException as err:  # noqa: BLE001 - the CLI must hear about it
        if launch is not None:
            try:
                launch.remove_everything()
            except BaseException:  # noqa: BLE001, S110 - the start's error is the one to report
                pass
        _report(report_fd, failure_report(err))
        os._exit(HELPER_REPORTED)
    os.close(report_fd)  # the supervisor answers; the CLI reads until every holder has closed it
    listeners = [] if launch.forwarder is None else launch.forwarder.listeners
    data = pickle.dumps((launch.state, launch.cgroup, launch.pid, [(port, proto) for _, port, proto in listeners]),
                        pickle.HIGHEST_PROTOCOL)
    assert launch.console is not None  # a start without its pty master has failed
    fds = [launch.console, *(sock_.fileno() for sock_, _, _ in listeners)]
    data = struct.pack("=I", len(data)) + data
    sent = socket.send_fds(sock, [data], fds)
    sock.sendall(data[sent:])
    os._exit(0)


def _wait(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def _end_children() -> None:
    """Kill and reap what a failed or killed start helper left us: a PID 1 cloned as our child."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as f:
            children = [int(pid) for pid in f.read().split()]
    except OSError:
        children = []
    for pid in children:
        try:
            os.kill(pid, signals.SIGKILL)
        except ProcessLookupError:
            pass
    while True:
        try:
            os.waitpid(-1, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            return
