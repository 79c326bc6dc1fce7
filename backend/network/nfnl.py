"""Adding and removing one address in a network's nftables set, straight over nfnetlink.

A member joining or leaving a network that is already up changes one element of its table's
``natted`` set. Through libnftables that costs the library's load (~5 ms of a process's first
transaction: nftables, its dependencies, the parser) and, on every transaction, a dump of the whole
ruleset into its cache; as one batch of three fixed messages on a netfilter socket it costs well
under a millisecond. Whole tables (the network's bring-up and teardown) still go through
libnftables (``nft``): their rules are nft's language, not worth re-encoding here.

The batch is what nft itself sends for ``add element`` / ``delete element``: a begin marker, one
NEWSETELEM or DELSETELEM message (table, set, the element's key as an IPv4 value) asking for an
acknowledgement, and an end marker; the kernel applies it as one transaction and answers with the
element message's ack or its error (with extended-ack text where it gives one).
"""

from __future__ import annotations

import struct
from _socket import inet_aton

from rustainer.backend.errors import NetworkError
from rustainer.backend.network.rtnl import (
    HEADER,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    attr,
    error_from_ack,
    messages,
    nested,
    open_socket,
    string,
)

NETLINK_NETFILTER = 12
# <linux/netfilter/nfnetlink.h>, <linux/netfilter/nf_tables.h>
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 0x10, 0x11
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFTA_SET_ELEM_LIST_TABLE, NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_ELEMENTS = 1, 2, 3
NFTA_LIST_ELEM = 1
NFTA_SET_ELEM_KEY = 1
NFTA_DATA_VALUE = 1
NFPROTO_INET, NFPROTO_UNSPEC = 1, 0
ENOENT = 2

_NFGEN = struct.Struct("!BBH")  # nfgenmsg: family, version, res_id (big-endian: the subsystem, for batches)


def _message(kind: int, flags: int, seq: int, family: int, res_id: int, body: bytes = b"") -> bytes:
    payload = _NFGEN.pack(family, 0, res_id) + body
    return HEADER.pack(HEADER.size + len(payload), kind, flags | NLM_F_REQUEST, seq, 0) + payload


def element_batch(kind: int, seq: int, table: str, set_name: str, address: str) -> bytes:
    """The three messages (begin, the element change, end) for one IPv4 ``address``."""
    subsys = NFNL_SUBSYS_NFTABLES
    key = nested(NFTA_SET_ELEM_KEY, attr(NFTA_DATA_VALUE, inet_aton(address)))
    body = (attr(NFTA_SET_ELEM_LIST_TABLE, string(table)) + attr(NFTA_SET_ELEM_LIST_SET, string(set_name))
            + nested(NFTA_SET_ELEM_LIST_ELEMENTS, nested(NFTA_LIST_ELEM, key)))
    flags = NLM_F_ACK | (NLM_F_CREATE if kind == NFT_MSG_NEWSETELEM else 0)
    return (_message(NFNL_MSG_BATCH_BEGIN, 0, seq, NFPROTO_UNSPEC, subsys)
            + _message(NFNL_SUBSYS_NFTABLES << 8 | kind, flags, seq + 1, NFPROTO_INET, 0, body)
            + _message(NFNL_MSG_BATCH_END, 0, seq + 2, NFPROTO_UNSPEC, subsys))


def change_element(kind: int, table: str, set_name: str, address: str, what: str) -> int:
    """Apply one element change; returns 0 or the errno the kernel refused it with (and raises for
    anything but a refusal: a socket that cannot be opened, a reply that makes no sense)."""
    sock = open_socket(NETLINK_NETFILTER)
    seq = 1
    try:
        sock.settimeout(5.0)  # the kernel answers at once; never hang a container's start on it
        sock.sendto(element_batch(kind, seq, table, set_name, address), (0, 0))
        # the element message's (seq + 1) ack: 0, or the errno of a refusal of any of the batch
        for got_kind, flags, got_seq, payload in messages(sock, what):
            if got_kind == NLMSG_ERROR and seq <= got_seq <= seq + 2:
                errno, _text = error_from_ack(payload, flags)
                if errno or got_seq == seq + 1:
                    return errno
        raise AssertionError("messages() never ends")  # pragma: no cover
    except OSError as err:
        raise NetworkError(f"cannot {what}: {err.strerror}", errno=err.errno) from None
    finally:
        sock.close()


def add_address(table: str, set_name: str, address: str) -> None:
    errno = change_element(NFT_MSG_NEWSETELEM, table, set_name, address, f"add {address} to {table}'s {set_name}")
    if errno:
        import os

        raise NetworkError(f"nftables refused the network's rules: {os.strerror(errno)} "
                           f"(add element inet {table} {set_name} {{ {address} }})", errno=errno)


def remove_address(table: str, set_name: str, address: str) -> None:
    """Gone already (or its table) is fine, as ``delete element`` after a crash may find it."""
    change_element(NFT_MSG_DELSETELEM, table, set_name, address, f"remove {address} from {table}'s {set_name}")
