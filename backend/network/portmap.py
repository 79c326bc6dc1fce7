"""Published ports: a userland forwarder (like docker-proxy) living in the container's owner.

The owner (the foreground CLI or the detached container's supervisor) binds every host port before
the container is let go, so a port in use is an error at ``run``; it then relays in daemon threads.
Living in the owner means the listeners can never outlive it: the owner's death ends the container
(it holds its terminal or pipes) and closes every published port with it, with nothing to reap.
"""

from __future__ import annotations

import errno
import socket
import threading

from rustainer.backend.errors import PortInUseError

CONNECT_TIMEOUT = 5.0
CHUNK = 65536


class Forwarder:
    """Listeners for a container's published ports, relaying to ``target`` (its bridge address)."""

    def __init__(self, publish: tuple[tuple[str, int, int, str], ...]) -> None:
        self.target = ""
        self.closed = False
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.listeners: list[tuple[socket.socket, int, str]] = []
        self.threads: list[threading.Thread] = []
        try:
            for host_ip, host_port, container_port, proto in publish:
                self.listeners.append((_bind(host_ip, host_port, proto), container_port, proto))
        except BaseException:
            self.close()
            raise

    def start(self, target: str) -> None:
        self.target = target
        for sock, port, proto in self.listeners:
            run = self._accept_loop if proto == "tcp" else self._udp_loop
            thread = threading.Thread(target=run, args=(sock, port), name="rustainer-publish", daemon=True)
            thread.start()
            self.threads.append(thread)

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
        for thread in self.threads:
            thread.join(2.0)
        for sock, _port, _proto in self.listeners:
            sock.close()
        for sock in extra:
            sock.close()

    def _track(self, sock: socket.socket) -> bool:
        with self.lock:
            if self.closed:
                sock.close()
                return False
            self.open.add(sock)
            return True

    def _forget(self, sock: socket.socket) -> None:
        with self.lock:
            self.open.discard(sock)
        sock.close()

    # -- tcp -------------------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket, port: int) -> None:
        while not self.closed:
            try:
                client, _addr = listener.accept()
            except OSError:
                if self.closed:
                    return
                continue
            if not self._track(client):
                return
            threading.Thread(target=self._connect, args=(client, port), daemon=True).start()

    def _connect(self, client: socket.socket, port: int) -> None:
        try:
            upstream = socket.create_connection((self.target, port), timeout=CONNECT_TIMEOUT)
        except OSError:
            self._forget(client)
            return
        upstream.settimeout(None)
        if not self._track(upstream):
            self._forget(client)
            return
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        self._pump(client, upstream)
        back.join()
        self._forget(client)
        self._forget(upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
        except OSError:
            _shutdown(src)
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # -- udp -------------------------------------------------------------------------------------
    def _udp_loop(self, listener: socket.socket, port: int) -> None:
        peers: dict[tuple[str, int], socket.socket] = {}
        while not self.closed:
            try:
                data, addr = listener.recvfrom(CHUNK)
            except OSError:
                if self.closed:
                    return
                continue
            if self.closed:
                return
            upstream = peers.get(addr)
            if upstream is None:
                upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                if not self._track(upstream):
                    return
                try:
                    upstream.connect((self.target, port))
                except OSError:
                    self._forget(upstream)
                    continue
                peers[addr] = upstream
                threading.Thread(target=self._udp_replies, args=(upstream, listener, addr), daemon=True).start()
            try:
                upstream.send(data)
            except OSError:
                continue

    def _udp_replies(self, upstream: socket.socket, listener: socket.socket, addr: tuple[str, int]) -> None:
        while not self.closed:
            try:
                data = upstream.recv(CHUNK)
            except OSError as err:
                if err.errno == errno.ECONNREFUSED and not self.closed:
                    continue
                return
            if self.closed:
                return
            try:
                listener.sendto(data, addr)
            except OSError:
                continue


def _bind(host_ip: str, host_port: int, proto: str) -> socket.socket:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    try:
        if proto == "tcp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
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


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
