"""A small rtnetlink client: the links, addresses and routes a bridge network needs, nothing more.

Why not pyroute2: even its narrowest import (the bare message classes, no socket layer) costs
30-60 ms here, its ``IPRoute`` 200-250 ms plus an asyncio loop per request, while a whole bridge
start should cost at most half a ``--network none`` start (20-40 ms) more than one. What we send is a handful of
fixed messages, so they are built with ``struct`` on the stdlib's ``_socket`` (``socket`` itself
would import ``enum`` and ``selectors``: 10 ms). Every request asks for an acknowledgement and
extended acks, so a refusal becomes one line naming what was attempted, the errno's text and the
kernel's own explanation when it gives one (``NetworkError`` with ``errno`` set).
"""

from __future__ import annotations

import _socket
import os
import struct
from _socket import AF_INET, AF_NETLINK, NETLINK_ROUTE, SOCK_CLOEXEC, SOCK_RAW, inet_aton, inet_ntoa
from _socket import socket as _raw_socket

from rustainer.backend.errors import NetworkError
from rustainer.backend.util.record import record

TYPE_CHECKING = False  # typing itself pulls in re and enum
if TYPE_CHECKING:
    from collections.abc import Iterator

# <linux/netlink.h>
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK = 270, 10, 11
# <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>, <linux/veth.h>
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFLA_IFNAME, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 3, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 4, 0, 1
IFF_UP = 0x1
NLA_F_NESTED = 0x8000

HEADER = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ATTR = struct.Struct("=HH")  # nlattr: len, type
_ERRNO = struct.Struct("=i")
_U32 = struct.Struct("=I")
_RECV = 65536


def attr(kind: int, value: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    size = _ATTR.size + len(value)
    return _ATTR.pack(size, kind) + value + bytes(-size % 4)


def nested(kind: int, *attrs: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(attrs))


def string(value: str) -> bytes:
    return os.fsencode(value) + b"\0"


def u32(value: int) -> bytes:
    return _U32.pack(value)


def ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(0, 0, index, flags, change)


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """The attributes from ``offset`` on (the first of each type; nesting flags stripped)."""
    found: dict[int, bytes] = {}
    end = len(data)
    while offset + _ATTR.size <= end:
        size, kind = _ATTR.unpack_from(data, offset)
        if size < _ATTR.size or offset + size > end:
            break  # malformed or cut short: nothing past it can be trusted
        found.setdefault(kind & 0x3FFF, data[offset + _ATTR.size:offset + size])
        offset += (size + 3) & ~3
    return found


def _text(value: bytes | None) -> str:
    return "" if value is None else value.split(b"\0", 1)[0].decode(errors="replace")


def error_from_ack(payload: bytes, flags: int) -> tuple[int, str]:
    """(errno, the kernel's extended-ack message or '') of an NLMSG_ERROR payload; errno 0 is an ack.

    The payload is the negative errno, then the request's own header (only the header: we set
    NETLINK_CAP_ACK), then with NLM_F_ACK_TLVS the extended-ack attributes."""
    (code,) = _ERRNO.unpack_from(payload, 0)
    message = ""
    if code and flags & NLM_F_ACK_TLVS:
        message = _text(parse_attrs(payload, _ERRNO.size + HEADER.size).get(NLMSGERR_ATTR_MSG))
    return -code, message


def failure(what: str, errno: int, message: str = "") -> NetworkError:
    detail = f" ({message})" if message else ""
    return NetworkError(f"cannot {what}: {os.strerror(errno)}{detail}", errno=errno)


def open_socket(protocol: int, bind: bool = False) -> _socket.socket:
    """A netlink socket of ``protocol`` asking for capped, extended acks (where the kernel has
    them: older kernels' plain acks carry the errno all the same)."""
    try:
        sock = _raw_socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol)
    except OSError as err:
        raise NetworkError(f"cannot open a netlink socket: {err.strerror}", errno=err.errno) from None
    for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):
        try:
            sock.setsockopt(SOL_NETLINK, option, 1)
        except OSError:
            pass
    if bind:
        try:
            sock.bind((0, 0))
        except OSError as err:
            sock.close()
            raise NetworkError(f"cannot open a netlink socket: {err.strerror}", errno=err.errno) from None
    return sock


def messages(sock: _socket.socket, what: str) -> Iterator[tuple[int, int, int, bytes]]:
    """Every message the socket receives, as (type, flags, seq, payload), for as long as the caller
    wants them (it stops at the answer it waits for)."""
    while True:
        data = sock.recv(_RECV)
        offset = 0
        while offset + HEADER.size <= len(data):
            size, kind, flags, seq, _pid = HEADER.unpack_from(data, offset)
            if size < HEADER.size:
                raise NetworkError(f"cannot {what}: a malformed netlink reply")
            yield kind, flags, seq, data[offset + HEADER.size:offset + size]
            offset += (size + 3) & ~3


class Rtnl:
    """One NETLINK_ROUTE socket, in the network namespace of the thread that opened it."""

    def __init__(self) -> None:
        self.sock = open_socket(NETLINK_ROUTE, bind=True)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the two shapes of exchange ---------------------------------------------------------------
    def _send(self, kind: int, flags: int, body: bytes) -> int:
        self.seq += 1
        self.sock.sendto(HEADER.pack(HEADER.size + len(body), kind, flags | NLM_F_REQUEST, self.seq, 0) + body,
                         (0, 0))
        return self.seq

    def _replies(self, seq: int, what: str) -> list[tuple[int, bytes]]:
        """The answers to request ``seq`` until its ack or NLMSG_DONE: (type, payload) pairs.
        An error reply raises."""
        found: list[tuple[int, bytes]] = []
        for kind, flags, got_seq, payload in messages(self.sock, what):
            if got_seq != seq:
                continue  # an answer to an earlier request that gave up (never expected)
            if kind == NLMSG_ERROR:
                errno, message = error_from_ack(payload, flags)
                if errno:
                    raise failure(what, errno, message)
                return found
            if kind == NLMSG_DONE:
                return found
            found.append((kind, payload))
            if not flags & NLM_F_MULTI:
                return found
        raise AssertionError("messages() never ends")  # pragma: no cover

    def _exchange(self, kind: int, flags: int, body: bytes, what: str) -> list[tuple[int, bytes]]:
        try:
            return self._replies(self._send(kind, flags, body), what)
        except OSError as err:  # the socket itself failed (out of buffer space, say)
            raise failure(what, err.errno or 5) from None

    def request(self, kind: int, flags: int, body: bytes, what: str) -> None:
        """Send one change and wait for its acknowledgement."""
        self._exchange(kind, flags | NLM_F_ACK, body, what)

    def dump(self, kind: int, body: bytes, what: str) -> list[bytes]:
        """Every object of a kind (the payloads of the replies)."""
        return [payload for _kind, payload in self._exchange(kind, NLM_F_DUMP, body, what)]

    # -- links ------------------------------------------------------------------------------------
    def link_index(self, name: str) -> int | None:
        """The index of link ``name`` in this socket's namespace, None if there is none."""
        try:
            replies = self._exchange(RTM_GETLINK, 0, ifinfo() + attr(IFLA_IFNAME, string(name)), f"look up link {name}")
        except NetworkError as err:
            if err.errno == 19:  # ENODEV
                return None
            raise
        for _kind, payload in replies:
            return int(_IFINFO.unpack_from(payload)[2])
        return None

    def links(self) -> dict[int, str]:
        """Every link: index -> name."""
        found = {}
        for payload in self.dump(RTM_GETLINK, ifinfo(), "list the links"):
            found[int(_IFINFO.unpack_from(payload)[2])] = _text(parse_attrs(payload, _IFINFO.size).get(IFLA_IFNAME))
        return found

    def add_bridge(self, name: str) -> None:
        """A new bridge, up (refused if a link of that name exists)."""
        linkinfo = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"bridge"))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     ifinfo(flags=IFF_UP, change=IFF_UP) + attr(IFLA_IFNAME, string(name)) + linkinfo,
                     f"create bridge {name}")

    def add_veth(self, name: str, peer: str, peer_netns_fd: int, master: int) -> None:
        """A veth pair: ``name`` here, up, on bridge ``master`` (an index); ``peer`` in the network
        namespace ``peer_netns_fd`` refers to, still down (the kernel opens the peer before the pair
        is linked, so asking for it up fails with ENOTCONN). One request: the peer never exists here."""
        peer_info = ifinfo() + attr(IFLA_IFNAME, string(peer)) + attr(
            IFLA_NET_NS_FD, u32(peer_netns_fd))
        linkinfo = nested(IFLA_LINKINFO, attr(IFLA_INFO_KIND, b"veth"),
                          nested(IFLA_INFO_DATA, nested(VETH_INFO_PEER, peer_info)))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL,
                     ifinfo(flags=IFF_UP, change=IFF_UP) + attr(IFLA_IFNAME, string(name))
                     + attr(IFLA_MASTER, u32(master)) + linkinfo,
                     f"create veth {name}")

    def set_up(self, index: int, what: str) -> None:
        self.request(RTM_NEWLINK, 0, ifinfo(index, IFF_UP, IFF_UP), f"bring {what} up")

    def delete_link(self, name: str) -> bool:
        """Delete link ``name``; False if there was none (already gone is not an error)."""
        try:
            self.request(RTM_DELLINK, 0, ifinfo() + attr(IFLA_IFNAME, string(name)), f"delete link {name}")
        except NetworkError as err:
            if err.errno == 19:  # ENODEV: gone already (its namespace was freed meanwhile)
                return False
            raise
        return True

    # -- addresses and routes ---------------------------------------------------------------------
    def add_address(self, index: int, address: str, prefixlen: int, what: str) -> None:
        packed = _inet(address, what)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL,
                     _IFADDR.pack(AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
                     + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed),
                     f"add address {address}/{prefixlen} to {what}")

    def addresses(self) -> list[tuple[int, str, int]]:
        """Every IPv4 address: (link index, address, prefix length)."""
        found = []
        for payload in self.dump(RTM_GETADDR, _IFADDR.pack(AF_INET, 0, 0, 0, 0), "list the addresses"):
            family, prefixlen, _flags, _scope, index = _IFADDR.unpack_from(payload)
            attrs = parse_attrs(payload, _IFADDR.size)
            value = attrs.get(IFA_ADDRESS, attrs.get(IFA_LOCAL))
            if family == AF_INET and value is not None and len(value) == 4:
                found.append((int(index), inet_ntoa(value), int(prefixlen)))
        return found

    def add_default_route(self, gateway: str) -> None:
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
                     _RTMSG.pack(AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0)
                     + attr(RTA_GATEWAY, _inet(gateway, "the default route")),
                     f"add the default route via {gateway}")

    def routes(self) -> list[Route]:
        """The IPv4 routes of the main table."""
        found = []
        body = _RTMSG.pack(AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        for payload in self.dump(RTM_GETROUTE, body, "list the routes"):
            family, dst_len, _src, _tos, table, _proto, _scope, _type, _flags = _RTMSG.unpack_from(payload)
            attrs = parse_attrs(payload, _RTMSG.size)
            if RTA_TABLE in attrs:
                table = _U32.unpack(attrs[RTA_TABLE])[0]
            if family != AF_INET or table != RT_TABLE_MAIN:
                continue
            dst = attrs.get(RTA_DST)
            gateway = attrs.get(RTA_GATEWAY)
            oif = attrs.get(RTA_OIF)
            found.append(Route(inet_ntoa(dst) if dst else "0.0.0.0", int(dst_len),
                               inet_ntoa(gateway) if gateway else None, _U32.unpack(oif)[0] if oif else None))
        return found


@record
class Route:
    """An IPv4 route of the main table: its destination, gateway (None: directly connected) and link."""

    dst: str
    dst_len: int
    gateway: str | None
    oif: int | None


def _inet(address: str, what: str) -> bytes:
    try:
        return inet_aton(address)
    except OSError:
        raise NetworkError(f"cannot configure {what}: {address!r} is not an IPv4 address") from None
