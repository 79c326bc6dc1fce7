"""The container's side of a bridge network: a veth pair, its address and default route.

The pair is created with its inner end directly in the container's network namespace (so no
transient ``eth0`` ever exists on the host); the inner end is then configured through a netlink
socket opened inside that namespace. Opening it means entering the namespace, which we do in a
short-lived thread: ``setns`` on a network namespace is per thread, so the engine's own process
never leaves the host's namespace.
"""

from __future__ import annotations

import os
import socket
import threading

from rustainer.backend.errors import NetworkError
from rustainer.backend.network.bridge import iproute_class

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _socket_in(ns_path: str) -> socket.socket:
    from rustainer.backend.linux import syscalls

    box: dict[str, object] = {}

    def enter() -> None:
        try:
            fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                syscalls.setns(fd, syscalls.CLONE_NEWNET)
            finally:
                os.close(fd)
            box["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0)
        except OSError as err:
            box["error"] = err

    thread = threading.Thread(target=enter, name="rustainer-netns")
    thread.start()
    thread.join()
    if "error" in box:
        raise NetworkError(f"cannot enter the container's network namespace: {box['error']}")
    return box["sock"]  # type: ignore[return-value]


def plug(ipr: Any, pid: int, host_end: str, bridge: str, address: str, prefixlen: int, gateway: str) -> None:
    """veth ``host_end`` on ``bridge`` <-> ``eth0`` in ``pid``'s namespace, with ``address`` and a
    default route via the bridge."""
    ns_path = f"/proc/{pid}/ns/net"
    nsfd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        ipr.link("add", ifname=host_end, kind="veth", peer={"ifname": "eth0", "net_ns_fd": nsfd})
    finally:
        os.close(nsfd)
    bridge_index = ipr.link_lookup(ifname=bridge)[0]
    index = ipr.link_lookup(ifname=host_end)[0]
    ipr.link("set", index=index, master=bridge_index, state="up")
    inside = iproute_class()(fileno=_socket_in(ns_path).detach())
    try:
        eth0 = inside.link_lookup(ifname="eth0")[0]
        inside.addr("add", index=eth0, address=address, prefixlen=prefixlen)
        inside.link("set", index=eth0, state="up")
        inside.route("add", dst="0.0.0.0/0", gateway=gateway)
    finally:
        inside.close()
