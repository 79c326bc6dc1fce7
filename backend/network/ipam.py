"""Pure address management: subnets, overlaps, picking a free /24, handing out addresses, names.

Nothing here touches the kernel or the disk, so every rule (which subnets are refused, which address
comes next, how names are tagged per state root) is unit-tested without root.
"""

from __future__ import annotations

from rustainer.backend.errors import NetworkError
from rustainer.backend.network import BUILTIN_MODES
from rustainer.backend.util.record import record

MIN_PREFIX, MAX_PREFIX = 8, 29
MAX_NETWORK_NAME = 32
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class Subnet:
    """An IPv4 network: its first address and prefix length. What a network needs of
    ``ipaddress.IPv4Network``, without that module's import (~6 ms: functools, collections and
    more) on every bridged container's start; ``parse_subnet`` still uses it to vet user input."""

    __slots__ = ("first", "prefixlen")

    def __init__(self, text: str, strict: bool = True) -> None:
        address, slash, length = text.partition("/")
        parts = address.split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts):
            raise ValueError(f"{text!r} is not an IPv4 network")
        if slash and not (length.isdigit() and int(length) <= 32):
            raise ValueError(f"{text!r} has an invalid prefix length")
        self.prefixlen = int(length) if slash else 32
        value = int(parts[0]) << 24 | int(parts[1]) << 16 | int(parts[2]) << 8 | int(parts[3])
        mask = (0xFFFFFFFF << (32 - self.prefixlen)) & 0xFFFFFFFF
        if strict and value & ~mask:
            raise ValueError(f"{text!r} has host bits set")
        self.first = value & mask

    @classmethod
    def at(cls, first: int, prefixlen: int) -> Subnet:
        return cls(f"{_dotted(first)}/{prefixlen}")

    @property
    def num_addresses(self) -> int:
        return 1 << (32 - self.prefixlen)

    @property
    def last(self) -> int:
        return self.first + self.num_addresses - 1

    def address(self, offset: int) -> str:
        """The ``offset``-th address of the network, dotted."""
        return _dotted(self.first + offset)

    def overlaps(self, other: Subnet) -> bool:
        return self.first <= other.last and other.first <= self.last

    def __str__(self) -> str:
        return f"{_dotted(self.first)}/{self.prefixlen}"

    def __repr__(self) -> str:
        return f"Subnet({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Subnet) and (self.first, self.prefixlen) == (other.first, other.prefixlen)

    def __hash__(self) -> int:
        return hash((self.first, self.prefixlen))


def _dotted(value: int) -> str:
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


# Default subnets: /24s from 10.213.0.0 upward, skipping what the host or another network uses.
POOL_START = Subnet("10.213.0.0/24")
POOL_END = Subnet("10.255.255.0/24").first


@record
class Member:
    """What a network needs to know of a container joining it (the network layer never sees the
    container's state)."""

    id: str
    name: str
    hostname: str
    network: str
    nat: bool = True


def parse_subnet(text: str) -> Subnet:
    """``10.1.2.0/24`` -> a network; a malformed CIDR, host bits or an unusable size is refused."""
    import ipaddress  # its checks (reserved, multicast...) for what a user typed; not on the start path

    raw = text.strip()
    if "/" not in raw:
        raise NetworkError(f"invalid subnet {text!r}: give an IPv4 CIDR such as 10.213.5.0/24")
    try:
        net = ipaddress.IPv4Network(raw, strict=True)
    except ipaddress.NetmaskValueError:
        raise NetworkError(f"invalid subnet {text!r}: the prefix length must be {MIN_PREFIX} to {MAX_PREFIX}") from None
    except ValueError as err:
        if "host bits set" in str(err):
            base = ipaddress.IPv4Network(raw, strict=False)
            raise NetworkError(f"invalid subnet {text!r}: it has host bits set (did you mean {base}?)") from None
        raise NetworkError(f"invalid subnet {text!r}: give an IPv4 CIDR such as 10.213.5.0/24") from None
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise NetworkError(f"invalid subnet {text!r}: the prefix length must be {MIN_PREFIX} to {MAX_PREFIX}")
    if net.is_loopback or net.is_multicast or net.is_link_local or net.is_reserved or net.is_unspecified:
        raise NetworkError(f"invalid subnet {text!r}: loopback, link-local, multicast and reserved ranges cannot be used")
    return Subnet(str(net))


def overlapping(net: Subnet, others: list[tuple[str, Subnet]]) -> str | None:
    """The label of the first of ``others`` that shares an address with ``net``, if any."""
    for label, other in others:
        if net.overlaps(other):
            return label
    return None


def pick_subnet(taken: list[Subnet]) -> Subnet:
    """The first /24 from 10.213.0.0 upward that overlaps nothing in ``taken``."""
    for start in range(POOL_START.first, POOL_END + 1, 256):
        candidate = Subnet.at(start, 24)
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise NetworkError("no free /24 left between 10.213.0.0 and 10.255.255.0: give one with --subnet")


def gateway_of(net: Subnet) -> str:
    """The bridge's own address: the subnet's first host."""
    return net.address(1)


def allocate(net: Subnet, held: set[str], cursor: int) -> tuple[str, int]:
    """The next free container address after ``cursor`` (an offset into the subnet), wrapping around.

    Addresses go round-robin rather than lowest-first so that a released address is not handed out
    again at once (a peer's ARP cache or an open connection may still point at it). Offsets 0
    (network), 1 (gateway) and the broadcast address are never given.
    """
    size = net.num_addresses
    first, last = 2, size - 2
    if last < first:
        raise NetworkError(f"subnet {net} has no room for containers")
    span = last - first + 1
    start = cursor + 1 if first <= cursor + 1 <= last else first
    for step in range(span):
        offset = first + (start - first + step) % span
        address = net.address(offset)
        if address not in held:
            return address, offset
    raise NetworkError(f"network subnet {net} is full ({span} addresses in use)")


def validate_network_name(name: str) -> str:
    if not name or len(name) > MAX_NETWORK_NAME or name[0] in "._-" or not set(name) <= _NAME_CHARS:
        raise NetworkError(f"invalid network name {name!r}: use up to {MAX_NETWORK_NAME} letters, digits, "
                           "'_', '.' and '-', starting with a letter or digit")
    if name in BUILTIN_MODES:
        raise NetworkError(f"invalid network name {name!r}: none and host are built-in modes")
    return name


def tag(root: str, network: str) -> str:
    """6 hex digits naming a network's kernel objects, distinct per state root and network."""
    try:  # the interpreter's own SHA-1: hashlib would load OpenSSL's libcrypto (2-3 ms) for 6 digits
        from _sha1 import sha1  # type: ignore[import-not-found]  # no stub: it is CPython's own
    except ImportError:  # a Python built without its own hashes
        from hashlib import sha1
    return sha1(f"{root}\0{network}".encode()).hexdigest()[:6]


def bridge_name(root: str, network: str) -> str:
    return f"rtn-{tag(root, network)}"


def veth_name(container_id: str) -> str:
    """The host end of a container's veth pair (ids are random: unique across roots too)."""
    return f"rtv{container_id[:8]}"


def nft_table(root: str, network: str) -> str:
    return f"rustainer_{tag(root, network)}"
