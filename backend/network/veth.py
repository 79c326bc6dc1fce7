"""The container's side of a bridge network: a veth pair, its address and default route.

The pair is created with its inner end directly in the container's network namespace (so no
transient ``eth0`` ever exists on the host) and its host end up on the bridge, in one request. The
inner end's address, state and route are then set through a netlink socket opened inside that
namespace. Opening it means entering the namespace, which we do in a short-lived
thread: ``setns`` on a network namespace is per thread, so the engine's own process never leaves
the host's namespace.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import NetworkError
from rustainer.backend.network.rtnl import Rtnl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


def in_namespace(netns_fd: int, work: Callable[[Rtnl], None]) -> None:
    """Run ``work`` with an rtnetlink socket inside the network namespace ``netns_fd`` refers to,
    in a thread of its own (``_thread``: ``threading`` is not needed for one join)."""
    import _thread

    from rustainer.backend.linux import syscalls

    done = _thread.allocate_lock()
    done.acquire()
    box: list[BaseException] = []

    def enter() -> None:
        try:
            try:
                syscalls.setns(netns_fd, syscalls.CLONE_NEWNET)
            except OSError as err:
                raise NetworkError(f"cannot enter the container's network namespace: {err.strerror}",
                                   errno=err.errno) from None
            with Rtnl() as inside:
                work(inside)
        except BaseException as err:  # noqa: BLE001 - handed to the caller, raised there
            box.append(err)
        finally:
            done.release()

    _thread.start_new_thread(enter, ())
    done.acquire()
    if box:
        raise box[0]


def plug(ipr: Rtnl, pid: int, host_end: str, bridge: str, address: str, prefixlen: int, gateway: str) -> None:
    """veth ``host_end`` on ``bridge`` <-> ``eth0`` in ``pid``'s namespace, with ``address`` and a
    default route via the bridge."""
    try:
        nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise NetworkError(f"cannot open the container's network namespace: {err.strerror}", errno=err.errno) from None
    try:
        master = ipr.link_index(bridge)
        if master is None:
            raise NetworkError(f"cannot plug the container into bridge {bridge}: it is gone")
        ipr.add_veth(host_end, "eth0", nsfd, master)

        def configure(inside: Rtnl) -> None:
            eth0 = inside.link_index("eth0")
            if eth0 is None:
                raise NetworkError("cannot configure the container's eth0: it is not in its namespace")
            inside.add_address(eth0, address, prefixlen, "the container's eth0")
            inside.set_up(eth0, "the container's eth0")
            inside.add_default_route(gateway)

        in_namespace(nsfd, configure)
    finally:
        os.close(nsfd)
