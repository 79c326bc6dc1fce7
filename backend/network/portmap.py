"""Published ports: a userland forwarder (like docker-proxy) living in the container's owner.

The owner (the foreground CLI or the detached container's supervisor) binds every host port before
the container is let go, so a port in use is an error at ``run``; it then relays in daemon threads.
Living in the owner means the listeners can never outlive it: the owner's death ends the container
(it holds its terminal or pipes) and closes every published port with it, with nothing to reap.

Built on the C modules ``_socket`` and ``_thread``: ``socket`` and ``threading`` would cost a
foreground ``run -p`` some 12 ms of imports (``enum``, ``selectors``), a quarter of a container's
whole start.
"""

from __future__ import annotations

import _thread
import errno
import os
import time
from _socket import (
    AF_INET,
    SHUT_RDWR,
    SHUT_WR,
    SO_REUSEADDR,
    SOCK_CLOEXEC,
    SOCK_DGRAM,
    SOCK_STREAM,
    SOL_SOCKET,
    socket,
)

from rustainer.backend.errors import PortInUseError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

CONNECT_TIMEOUT = 5.0
CHUNK = 65536
# UDP has no end: a peer (source address) silent this long is forgotten, its socket and thread
# released (docker-proxy's is 90 s); and at most this many are relayed at once per published port.
UDP_IDLE_TIMEOUT = 60.0
UDP_MAX_PEERS = 1024


class Forwarder:
    """Listeners for a container's published ports, relaying to ``target`` (its bridge address)."""

    def __init__(self, publish: tuple[tuple[str, int, int, str], ...]) -> None:
        self.target = ""
        self.closed = False
        self.lock = _thread.allocate_lock()
        self.open: set[socket] = set()
        self.listeners: list[tuple[socket, int, str]] = []
        self.threads: list[_thread.LockType] = []  # each held until its thread ends
        # RUSTAINER_UDP_IDLE_TIMEOUT (seconds) and RUSTAINER_UDP_MAX_PEERS override the defaults
        self.udp_idle = _env_number("RUSTAINER_UDP_IDLE_TIMEOUT", UDP_IDLE_TIMEOUT)
        self.udp_max_peers = max(1, int(_env_number("RUSTAINER_UDP_MAX_PEERS", UDP_MAX_PEERS)))
        try:
            for host_ip, host_port, container_port, proto in publish:
                self.listeners.append((_bind(host_ip, host_port, proto), container_port, proto))
        except BaseException:
            self.close()
            raise

    @classmethod
    def adopt(cls, listeners: list[tuple[socket, int, str]]) -> Forwarder:
        """Relays for host ports bound by another process (a supervisor's start helper binds them
        while the start can still fail, and hands them over: see supervisor.shim)."""
        forwarder = cls(())
        forwarder.listeners = listeners
        return forwarder

    def start(self, target: str) -> None:
        self.target = target
        for sock, port, proto in self.listeners:
            run = self._accept_loop if proto == "tcp" else self._udp_loop
            self.threads.append(_spawn(run, sock, port))

    def close(self) -> None:
        """Stop listening and cut every relayed connection; returns once the listeners are closed."""
        with self.lock:
            self.closed = True
            extra = list(self.open)
            self.open.clear()
        for sock, _port, _proto in self.listeners:
            _shutdown(sock)
        for sock in extra:
            _shutdown(sock)
        for running in self.threads:
            if running.acquire(timeout=2.0):
                running.release()
        for sock, _port, _proto in self.listeners:
            sock.close()
        for sock in extra:
            sock.close()

    def _track(self, sock: socket) -> bool:
        with self.lock:
            if self.closed:
                sock.close()
                return False
            self.open.add(sock)
            return True

    def _forget(self, sock: socket) -> None:
        with self.lock:
            self.open.discard(sock)
        sock.close()

    # -- tcp -------------------------------------------------------------------------------------
    def _accept_loop(self, listener: socket, port: int) -> None:
        while not self.closed:
            try:
                fd, _addr = listener._accept()  # type: ignore[attr-defined]  # accept4(SOCK_CLOEXEC), as socket.accept does
            except OSError:
                if self.closed:
                    return
                continue
            client = socket(AF_INET, SOCK_STREAM, 0, fd)
            if not self._track(client):
                return
            _spawn(self._connect, client, port)

    def _connect(self, client: socket, port: int) -> None:
        upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC)
        try:
            upstream.settimeout(CONNECT_TIMEOUT)
            upstream.connect((self.target, port))
        except OSError:
            upstream.close()
            self._forget(client)
            return
        upstream.settimeout(None)
        if not self._track(upstream):
            self._forget(client)
            return
        back = _spawn(self._pump, upstream, client)
        self._pump(client, upstream)
        back.acquire()
        self._forget(client)
        self._forget(upstream)

    def _pump(self, src: socket, dst: socket) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            _shutdown(src)
        try:
            dst.shutdown(SHUT_WR)
        except OSError:
            pass

    # -- udp -------------------------------------------------------------------------------------
    def _udp_loop(self, listener: socket, port: int) -> None:
        """One upstream socket (and reply thread) per source address, as docker-proxy does; a peer
        idle for ``udp_idle`` seconds is dropped by its reply thread, and past ``udp_max_peers``
        the least recently used one makes room for a newcomer."""
        peers: dict[tuple[str, int], _UdpPeer] = {}
        lock = _thread.allocate_lock()
        while not self.closed:
            try:
                data, addr = listener.recvfrom(CHUNK)
            except OSError:
                if self.closed:
                    return
                continue
            if self.closed:
                return
            with lock:
                peer = peers.get(addr)
                if peer is not None and not peer.gone:
                    peer.last = time.monotonic()
                else:
                    peer = None
            if peer is None:
                upstream = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC)
                if not self._track(upstream):
                    return
                try:
                    upstream.connect((self.target, port))
                except OSError:
                    self._forget(upstream)
                    continue
                peer = _UdpPeer(upstream, addr)
                with lock:
                    while len(peers) >= self.udp_max_peers:
                        oldest = min(peers.values(), key=lambda p: p.last)
                        del peers[oldest.addr]
                        oldest.drop()
                    peers[addr] = peer
                args = (peer, listener, peers, lock)
                _spawn(self._udp_replies, *args)
            try:
                peer.sock.send(data)
            except OSError:
                continue

    def _udp_replies(self, peer: _UdpPeer, listener: socket, peers: dict[tuple[str, int], _UdpPeer],
                     lock: _thread.LockType) -> None:
        try:
            while not self.closed and not peer.gone:
                left = peer.last + self.udp_idle - time.monotonic()
                if left <= 0:
                    return
                try:
                    peer.sock.settimeout(left)
                    data = peer.sock.recv(CHUNK)
                except TimeoutError:
                    continue
                except OSError as err:
                    if err.errno == errno.ECONNREFUSED and not self.closed:
                        continue
                    return
                if self.closed or peer.gone:
                    return
                peer.last = time.monotonic()
                try:
                    listener.sendto(data, peer.addr)
                except OSError:
                    continue
        finally:
            with lock:
                peer.gone = True
                if peers.get(peer.addr) is peer:
                    del peers[peer.addr]
            self._forget(peer.sock)


class _UdpPeer:
    """A source address relayed to the container: its own upstream socket, and when it last spoke."""

    __slots__ = ("addr", "gone", "last", "sock")

    def __init__(self, sock: socket, addr: tuple[str, int]) -> None:
        self.sock = sock
        self.addr = addr
        self.last = time.monotonic()
        self.gone = False

    def drop(self) -> None:
        """Evicted: its reply thread wakes up (the socket is shut down), closes it and ends."""
        self.gone = True
        _shutdown(self.sock)


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def _spawn(run: Callable[..., None], *args: object) -> _thread.LockType:
    """``run(*args)`` in a new thread (a daemon: never waited for at exit); the lock returned is
    held until it ends (acquire it to wait)."""
    running = _thread.allocate_lock()
    running.acquire()

    def body() -> None:
        try:
            run(*args)
        finally:
            running.release()

    _thread.start_new_thread(body, ())
    return running


def _bind(host_ip: str, host_port: int, proto: str) -> socket:
    kind = SOCK_STREAM if proto == "tcp" else SOCK_DGRAM
    sock = socket(AF_INET, kind | SOCK_CLOEXEC)
    try:
        if proto == "tcp":
            sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        sock.bind((host_ip, host_port))
        if proto == "tcp":
            sock.listen(128)
    except OSError as err:
        sock.close()
        where = f"{host_ip}:{host_port}/{proto}"
        if err.errno == errno.EADDRINUSE:
            raise PortInUseError(f"cannot publish {where}: the port is already in use on the host") from None
        if err.errno == errno.EADDRNOTAVAIL:
            raise PortInUseError(f"cannot publish {where}: {host_ip} is not an address of this host") from None
        raise PortInUseError(f"cannot publish {where}: {err.strerror}") from None
    return sock


def _shutdown(sock: socket) -> None:
    try:
        sock.shutdown(SHUT_RDWR)
    except OSError:
        pass
