"""Host bridges and the host's directly connected ranges, through netlink (pyroute2).

pyroute2's package ``__init__`` imports every protocol it knows (conntrack, IPVS, NDB, WireGuard...)
and costs about a second; we need only its rtnetlink class. ``iproute()`` imports that class under a
stand-in for the package that runs the real ``__init__`` the first time anyone asks it for another
name, so code elsewhere that does ``import pyroute2`` still gets the whole library.
"""

from __future__ import annotations

import os
import socket

from rustainer.backend.errors import NetworkError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from rustainer.backend.network.ipam import Subnet


def iproute_class() -> Any:
    import sys

    if "pyroute2" not in sys.modules:
        import importlib.util
        import types

        spec = importlib.util.find_spec("pyroute2")
        if spec is None or spec.loader is None or spec.submodule_search_locations is None:
            raise NetworkError("pyroute2 is not installed: bridge networks need it (pip install pyroute2)")
        package = types.ModuleType("pyroute2")
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__file__ = spec.origin
        loader = spec.loader

        def load_everything(name: str) -> object:
            folder = package.__path__[0]
            if name.startswith("__") or os.path.exists(os.path.join(folder, name)) or os.path.exists(
                    os.path.join(folder, f"{name}.py")):
                raise AttributeError(name)  # a submodule: the import system loads it on its own
            delattr(package, "__getattr__")
            exec(loader.get_code("pyroute2"), package.__dict__)  # type: ignore[attr-defined]  # noqa: S102
            return getattr(package, name)

        setattr(package, "__getattr__", load_everything)  # noqa: B010 - a module-level __getattr__
        sys.modules["pyroute2"] = package
    from pyroute2.iproute.linux import IPRoute  # type: ignore[import-untyped]

    return IPRoute


def netlink_error() -> type[Exception]:
    from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

    return NetlinkError  # type: ignore[no-any-return]


def open_host() -> Any:
    """An rtnetlink socket in our own (the host's) network namespace."""
    return iproute_class()()


def link_exists(name: str) -> bool:
    return os.path.exists(f"/sys/class/net/{name}")


def connected_ranges(ipr: Any, *, but_link: str | None = None) -> list[tuple[str, Subnet]]:
    """Ranges the host reaches directly (its addresses' prefixes, gateway-less routes; never the
    default route), labelled with their link, for refusing a subnet that would shadow them."""
    from rustainer.backend.network.ipam import Subnet

    names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
    found: list[tuple[str, Subnet]] = []
    for addr in ipr.get_addr(family=socket.AF_INET):
        dev = names.get(addr["index"], "?")
        if dev == but_link:
            continue
        found.append((f"the host's address on {dev}", Subnet(f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}",
                                                              strict=False)))
    for route in ipr.get_routes(family=socket.AF_INET, table=254):
        if route["dst_len"] == 0 or route.get_attr("RTA_GATEWAY") is not None:
            continue
        dev = names.get(route.get_attr("RTA_OIF"), "?")
        if dev == but_link:
            continue
        found.append((f"the host's route on {dev}", Subnet(f"{route.get_attr('RTA_DST')}/{route['dst_len']}",
                                                           strict=False)))
    return found


def has_default_route(ipr: Any) -> bool:
    return any(r["dst_len"] == 0 for r in ipr.get_routes(family=socket.AF_INET, table=254))


def create_bridge(ipr: Any, name: str, gateway: str, prefixlen: int) -> None:
    """A new bridge with the network's gateway address, up. An existing link of that name is left
    alone unless it is a bridge we made (ours carry the per-root tag in their name)."""
    if link_exists(name):
        return
    ipr.link("add", ifname=name, kind="bridge")
    index = ipr.link_lookup(ifname=name)[0]
    ipr.addr("add", index=index, address=gateway, prefixlen=prefixlen)
    ipr.link("set", index=index, state="up")


def delete_link(ipr: Any, name: str) -> None:
    """Delete one link we created; already gone is fine."""
    if not link_exists(name):
        return
    try:
        ipr.link("del", ifname=name)
    except netlink_error() as err:
        if getattr(err, "code", None) != 19:  # ENODEV: gone meanwhile (its namespace was freed)
            raise
