"""Host bridges and the host's directly connected ranges, through our own rtnetlink client
(``rtnl``: pyroute2's import alone cost more than the whole bridge start may)."""

from __future__ import annotations

import os

from rustainer.backend.errors import NetworkError
from rustainer.backend.network.rtnl import Rtnl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rustainer.backend.network.ipam import Subnet


def open_host() -> Rtnl:
    """An rtnetlink socket in our own (the host's) network namespace."""
    return Rtnl()


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def connected_ranges(ipr: Rtnl, *, but_link: str | None = None) -> list[tuple[str, Subnet]]:
    """Ranges the host reaches directly (its addresses' prefixes, gateway-less routes; never the
    default route), labelled with their link, for refusing a subnet that would shadow them."""
    from rustainer.backend.network.ipam import Subnet

    names = ipr.links()
    found: list[tuple[str, Subnet]] = []
    for index, address, prefixlen in ipr.addresses():
        dev = names.get(index, "?")
        if dev == but_link:
            continue
        found.append((f"the host's address on {dev}", Subnet(f"{address}/{prefixlen}", strict=False)))
    for route in ipr.routes():
        if route.dst_len == 0 or route.gateway is not None:
            continue
        dev = names.get(route.oif, "?") if route.oif is not None else "?"
        if dev == but_link:
            continue
        found.append((f"the host's route on {dev}", Subnet(f"{route.dst}/{route.dst_len}", strict=False)))
    return found


def has_default_route(ipr: Rtnl) -> bool:
    return any(route.dst_len == 0 for route in ipr.routes())


def create_bridge(ipr: Rtnl, name: str, gateway: str, prefixlen: int) -> None:
    """A new bridge with the network's gateway address, up. An existing link of that name is left
    alone unless it is a bridge we made (ours carry the per-root tag in their name)."""
    if link_exists(name):
        return
    ipr.add_bridge(name)
    index = ipr.link_index(name)
    if index is None:
        raise NetworkError(f"cannot configure bridge {name}: it vanished as it was created")
    ipr.add_address(index, gateway, prefixlen, f"bridge {name}")


def delete_link(ipr: Rtnl, name: str) -> None:
    """Delete one link we created; already gone is fine."""
    if link_exists(name):
        ipr.delete_link(name)
