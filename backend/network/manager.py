"""Networks as a whole: create/remove/list/inspect, and a container joining or leaving one.

A network's kernel objects (its bridge and its nftables table) exist while it has members, and for
a short grace period after the last one ended (``linger``): the first container to join brings them
up, the last to leave hands them to a detached process that takes them down unless another joined
meanwhile. So a host with no running bridge-networked container has no rustainer link or rule a few
seconds later, whatever crashed before: the next ``ps``/``rm`` that reconciles a dead container, or
the next ``network`` command that finds a network idle past its grace period, finishes the clean-up.
"""

from __future__ import annotations

import os
import time

from rustainer.backend.errors import NetworkError
from rustainer.backend.network import DEFAULT_NETWORK, ipam
from rustainer.backend.network.store import NetworkStore, new_record
from rustainer.backend.util.rollback import Rollback, fault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from rustainer.backend.network.ipam import Member


# An idle network whose lingering process has not taken it down this long after its grace period
# ended is presumed to have lost that process (killed): the next command to look takes it down.
STALE_AFTER = 10.0


def _hosts_path(root: str, cid: str) -> str:
    return os.path.join(root, "containers", cid, "hosts")


def _unknown(name: str) -> NetworkError:
    return NetworkError(f"no such network: {name} (create it with 'rustainer network create {name}')")


def _load_or_default(store: NetworkStore, name: str, ipr: Any) -> dict[str, Any]:
    """The network's record; the default network's is made on first use, in a free /24."""
    data = store.load(name)
    if data is not None:
        return data
    if name != DEFAULT_NETWORK:
        raise _unknown(name)
    from rustainer.backend.network.bridge import connected_ranges

    taken = [s for _, s in store.subnets(but=name) + connected_ranges(ipr)]
    data = new_record(name, ipam.pick_subnet(taken))
    store.save(data)
    return data


def _refresh_hosts(root: str, data: dict[str, Any]) -> None:
    from rustainer.backend.network import hosts

    members: dict[str, dict[str, str]] = data["leases"]
    for member in members.values():
        hosts.rewrite(_hosts_path(root, member["id"]), hosts.render(member["id"], members))


def _check_subnet(store: NetworkStore, data: dict[str, Any], ipr: Any, bridge: str) -> None:
    """Before a network comes up, its subnet is checked against the host once more (a route may have
    appeared since it was created); the default network, while empty, just moves to a free /24."""
    from rustainer.backend.network.bridge import connected_ranges

    name = data["name"]
    subnet = ipam.Subnet(data["subnet"])
    clash = ipam.overlapping(subnet, connected_ranges(ipr, but_link=bridge))
    if clash is None:
        return
    if name != DEFAULT_NETWORK or data["leases"]:
        raise NetworkError(f"network {name}'s subnet {subnet} now overlaps {clash}: remove and re-create it "
                           "with another --subnet")
    taken = [s for _, s in store.subnets(but=name) + connected_ranges(ipr, but_link=bridge)]
    subnet = ipam.pick_subnet(taken)
    data.update(subnet=str(subnet), gateway=ipam.gateway_of(subnet), cursor=1)


def _bring_up(root: str, store: NetworkStore, data: dict[str, Any], ipr: Any, natted: tuple[str, ...]) -> None:
    """Create the bridge and the table (masquerading only when the host has a default route)."""
    from rustainer.backend.network import nat
    from rustainer.backend.network.bridge import create_bridge, has_default_route

    name = data["name"]
    bridge = ipam.bridge_name(root, name)
    subnet = ipam.Subnet(data["subnet"])
    masquerade = has_default_route(ipr)
    data.update(active=True, masquerade=masquerade)
    store.save(data)  # "active" and the lease first: a failure below is then undone by _leave_locked
    create_bridge(ipr, bridge, data["gateway"], subnet.prefixlen)
    fault("network-nat-table")
    nat.create_table(ipam.nft_table(root, name), bridge, str(subnet), masquerade, natted)


def _tear_down(root: str, store: NetworkStore, data: dict[str, Any], ipr: Any) -> None:
    from rustainer.backend.network import nat
    from rustainer.backend.network.bridge import delete_link

    # The record says "active" (and keeps the last member's lease) until both are gone: a failure
    # half-way leaves what a retry (the member's rm, or network rm) tears down again. The bridge
    # goes first: while it exists the table does, which is what a member joining a lingering
    # network relies on (it only adds its address to the table's set).
    fault("network-teardown-bridge")
    delete_link(ipr, ipam.bridge_name(root, data["name"]))
    fault("network-teardown-table")
    nat.delete_table(ipam.nft_table(root, data["name"]))
    data["active"] = False
    data.pop("idle_since", None)
    if store.exists(data["name"]):
        store.save(data)


def lease(root: str, member: Member) -> str:
    """The first half of a container joining its network, the part that needs no container yet (a
    start runs it while the child sets itself up): the member's address, and for the network's
    first member its bridge and table, with that address in the table's set in the same
    transaction; for a later member the address goes into the existing set. Returns the address.
    On failure everything this call made is undone before it raises; afterwards ``leave`` undoes
    it (the lease is on disk)."""
    from rustainer.backend.network import nat
    from rustainer.backend.network.bridge import link_exists, open_host

    store = NetworkStore(root)
    with store.lock():
        ipr = open_host()
        try:
            data = _load_or_default(store, member.network, ipr)
            try:
                bridge = ipam.bridge_name(root, member.network)
                first = not (data.get("active") and link_exists(bridge)) or (not data["leases"] and not lingering(data))
                data.pop("idle_since", None)
                if first:
                    _check_subnet(store, data, ipr, bridge)
                subnet = ipam.Subnet(data["subnet"])
                address, cursor = ipam.allocate(subnet, set(data["leases"]), int(data.get("cursor", 1)))
                data["leases"][address] = {"id": member.id, "name": member.name, "hostname": member.hostname}
                data["cursor"] = cursor
                if first:  # the first member's address goes into the new table in the same transaction
                    fault("network-bridge")
                    _bring_up(root, store, data, ipr, (address,) if member.nat else ())  # saves the lease
                fault("network-lease")
                if not first:
                    store.save(data)  # the lease is on disk before the veth exists: release() finds both
                if data.get("masquerade") and not first:
                    fault("network-nat")
                    table = ipam.nft_table(root, member.network)
                    if member.nat:
                        nat.add_masquerade(table, address)
                    else:  # an ended member's address stays in the set (see _leave_locked): not ours
                        nat.remove_masquerade(table, address)
            except BaseException:
                _leave_locked(root, store, data, member.id, ipr)
                raise
        finally:
            ipr.close()
    return address


def plug(root: str, member: Member, pid: int, address: str) -> None:
    """The second half of joining: the veth pair into the namespace of PID 1 ``pid``, with the
    ``address`` ``lease`` gave, and every member's hosts file. On failure the whole membership
    (lease included) is undone before it raises."""
    from rustainer.backend.network.bridge import open_host
    from rustainer.backend.network.veth import plug as plug_veth

    store = NetworkStore(root)
    with store.lock():
        data = store.load(member.network)
        held = data is not None and data["leases"].get(address, {}).get("id") == member.id
        ipr = open_host()
        try:
            try:
                if data is None or not held:
                    raise NetworkError(f"container {member.name} lost its address on network {member.network} "
                                       "while it started")
                fault("network-veth")
                plug_veth(ipr, pid, ipam.veth_name(member.id), ipam.bridge_name(root, member.network), address,
                          ipam.Subnet(data["subnet"]).prefixlen, data["gateway"])
                _refresh_hosts(root, data)
            except BaseException:
                _leave_locked(root, store, data, member.id, ipr)
                raise
        finally:
            ipr.close()


def leave(root: str, network: str, cid: str, *, ended: bool = False) -> None:
    """Undo ``lease`` and ``plug`` for container ``cid`` (idempotent: release may run more than
    once, from any process). No netlink socket is opened when there is nothing left to do.

    ``ended``: the container's processes are all gone (its PID 1 reaped), so its network namespace
    goes with them and the kernel removes the veth pair by itself, in its own time; deleting it
    here would wait for RCU callbacks (~10 ms). And the network, if this was its last member,
    lingers (``linger``) instead of going down in this command. Otherwise (a start rolled back, a
    reconciled crash) the veth is deleted and the network goes down with its last member here."""
    from rustainer.backend.network.bridge import link_exists

    store = NetworkStore(root)
    if not os.path.isdir(store.dir):
        return
    with store.lock():
        data = store.load(network)
        held = data is not None and any(m["id"] == cid for m in data["leases"].values())
        idle_but_up = data is not None and _stale(root, data)
        if not (held or idle_but_up or (not ended and link_exists(ipam.veth_name(cid)))):
            return
        from rustainer.backend.network.bridge import open_host

        ipr = open_host()
        try:
            _leave_locked(root, store, data, cid, ipr, ended=ended)
        finally:
            ipr.close()


def _leave_locked(root: str, store: NetworkStore, data: dict[str, Any] | None, cid: str, ipr: Any, *,
                  ended: bool = False) -> None:
    from rustainer.backend.network import linger, nat
    from rustainer.backend.network.bridge import delete_link

    veth = ipam.veth_name(cid)
    fault("network-leave-veth")
    if data is None:
        if not ended:
            delete_link(ipr, veth)
        return
    leases: dict[str, dict[str, str]] = data["leases"]
    mine = [address for address, member in leases.items() if member["id"] == cid]
    for address in mine:
        del leases[address]
    grace = linger.seconds() if ended and mine else 0.0
    if not leases and not mine and lingering(data):
        # Another member's end started the grace period (this is a second release, say ``rm`` after
        # the container's own end): the lingering process decides, not us.
        if not ended:
            delete_link(ipr, veth)
        return
    if not leases and not grace:
        # The network goes down with its last member: the bridge first, the veth after it. Once the
        # container's namespace is gone the kernel removes the pair by itself, within about the time
        # deleting the bridge takes (each deletion waits for RCU callbacks, 10-50 ms here), so the
        # veth has often (about half the time) gone meanwhile and its own deletion is saved.
        try:
            _tear_down(root, store, data, ipr)
        finally:
            if not ended:
                delete_link(ipr, veth)
        return
    # An ended member's address stays in the table's NAT set: removing it makes the process's exit
    # wait for nftables' deferred clean-up (an RCU grace period, ~13 ms here, when the netfilter
    # socket closes). It does no harm there - no container has the address - and goes with the
    # table; the next member given the address adds it again, or takes it out (--no-nat). A start
    # rolled back undoes its part exactly: the element before the veth (removing it never fails),
    # so the veth's deletion absorbs that wait.
    if not ended:
        for address in mine:
            nat.remove_masquerade(ipam.nft_table(root, data["name"]), address)
        delete_link(ipr, veth)
    if not leases:  # the last member ended: the network lingers, then its own process takes it down
        data.update(idle_since=time.time(), linger=grace)
        store.save(data)
        linger.schedule(root, data["name"], grace)
        return
    if mine:
        store.save(data)
        _refresh_hosts(root, data)


def lingering(data: dict[str, Any]) -> bool:
    """Whether an idle network is within its grace period, so its lingering process is still to take
    it down (``STALE_AFTER`` later, that process is presumed killed and anyone may)."""
    since = data.get("idle_since")
    return since is not None and time.time() - float(since) < float(data.get("linger", 0)) + STALE_AFTER


def tear_down_if_idle(root: str, name: str, grace: float) -> None:
    """The lingering process's work, ``grace`` seconds after the network's last member ended: down
    with the bridge and table unless a member joined since, or another left later (its own
    lingering process then decides). If the state root is gone, nothing else ever will: the bridge
    and table (named after the root and network, so ours) go without a record."""
    from rustainer.backend.network import nat
    from rustainer.backend.network.bridge import delete_link, open_host

    store = NetworkStore(root)
    if not os.path.isdir(store.dir):
        ipr = open_host()
        try:
            delete_link(ipr, ipam.bridge_name(root, name))
            nat.delete_table(ipam.nft_table(root, name))
        finally:
            ipr.close()
        return
    with store.lock():
        data = store.load(name)
        if data is None or data["leases"] or not data.get("active"):
            return
        since = data.get("idle_since")
        if since is not None and time.time() - float(since) < grace - 0.01:
            return
        ipr = open_host()
        try:
            _tear_down(root, store, data, ipr)
        finally:
            ipr.close()


# -- the network verb ------------------------------------------------------------------------------
def create(root: str, name: str, subnet_text: str | None) -> dict[str, Any]:
    from rustainer.backend.network.bridge import connected_ranges, open_host

    ipam.validate_network_name(name)
    subnet = ipam.parse_subnet(subnet_text) if subnet_text is not None else None
    store = NetworkStore(root)
    undo = Rollback()  # a create that fails leaves no record, not even the default's made on the way
    for other in store.names():  # a stale network's bridge (its lingering process killed) is no clash
        known = store.load(other)
        if known is not None and _stale(root, known):
            _take_down_stale(root, store, other)
    with store.lock():
        if store.exists(name):
            raise NetworkError(f"network {name} already exists")
        try:
            ipr = open_host()
            try:
                if DEFAULT_NETWORK not in [n for n in store.names() if store.load(n) is not None]:
                    fault("network-create-default")
                    _load_or_default(store, DEFAULT_NETWORK, ipr)  # the default keeps its place in the pool
                    undo.push("network-create-default", lambda: store.delete(DEFAULT_NETWORK))
                taken = store.subnets() + connected_ranges(ipr)
            finally:
                ipr.close()
            if subnet is None:
                subnet = ipam.pick_subnet([s for _, s in taken])
            else:
                clash = ipam.overlapping(subnet, taken)
                if clash is not None:
                    raise NetworkError(f"subnet {subnet} overlaps {clash}: choose another --subnet")
            data = new_record(name, subnet)
            fault("network-create-record")
            store.save(data)
        except BaseException:
            undo.unwind()
            raise
    return data


def remove(root: str, name: str) -> None:
    """Delete a network without members (the caller reconciles dead members first: see
    ``container.networks``)."""
    if name == DEFAULT_NETWORK:
        raise NetworkError("the default network bridge cannot be removed")
    store = NetworkStore(root)
    if not store.exists(name):
        raise _unknown(name)
    with store.lock():
        data = store.load(name)
        if data is None:
            raise _unknown(name)
        if data["leases"]:
            users = ", ".join(sorted(m["name"] for m in data["leases"].values()))
            raise NetworkError(f"network {name} is in use by {users}: stop and remove them first")
        from rustainer.backend.network.bridge import link_exists

        if data.get("active") or link_exists(ipam.bridge_name(root, name)):
            from rustainer.backend.network.bridge import open_host

            ipr = open_host()
            try:
                _tear_down(root, store, data, ipr)
            finally:
                ipr.close()
        fault("network-rm-record")  # last: the record stays until its bridge and table are gone
        store.delete(name)


def describe(root: str, data: dict[str, Any]) -> dict[str, Any]:
    from rustainer.backend.network.bridge import link_exists

    bridge = ipam.bridge_name(root, data["name"])
    return {
        "name": data["name"], "subnet": data["subnet"], "gateway": data["gateway"], "bridge": bridge,
        "nft_table": f"inet {ipam.nft_table(root, data['name'])}", "active": link_exists(bridge),
        "masquerade": bool(data.get("masquerade")) and link_exists(bridge),
        "containers": [{"name": m["name"], "id": m["id"][:12], "address": address}
                       for address, m in sorted(data["leases"].items(), key=lambda item: item[1]["name"])],
    }


def member_ids(root: str, name: str) -> list[str]:
    """The ids of the containers holding a lease on the network."""
    data = NetworkStore(root).load(name)
    return [m["id"] for m in data["leases"].values()] if data is not None else []


def list_networks(root: str, prune: Callable[[str, str], None] = lambda root, name: None) -> list[dict[str, Any]]:
    """Every network; ``prune(root, name)`` runs first for each (the container layer reconciles the
    members, so dead ones do not show)."""
    store = NetworkStore(root)
    found = []
    for name in store.names():
        if store.load(name) is None:
            if name != DEFAULT_NETWORK:
                continue
            from rustainer.backend.network.bridge import open_host

            with store.lock():
                ipr = open_host()
                try:
                    _load_or_default(store, name, ipr)
                finally:
                    ipr.close()
        prune(root, name)
        data = store.load(name)
        if data is not None and _stale(root, data):
            data = _take_down_stale(root, store, name)
        if data is not None:
            found.append(describe(root, data))
    return found


def _stale(root: str, data: dict[str, Any]) -> bool:
    """Idle, up, and past its grace period: its lingering process was killed (or never ran)."""
    from rustainer.backend.network.bridge import link_exists

    return (not data["leases"] and not lingering(data)
            and bool(data.get("active") or link_exists(ipam.bridge_name(root, data["name"]))))


def _take_down_stale(root: str, store: NetworkStore, name: str) -> dict[str, Any] | None:
    from rustainer.backend.network.bridge import open_host

    with store.lock():
        data = store.load(name)
        if data is not None and _stale(root, data):
            ipr = open_host()
            try:
                _tear_down(root, store, data, ipr)
            finally:
                ipr.close()
    return data


def inspect(root: str, name: str, prune: Callable[[str, str], None] = lambda root, name: None) -> dict[str, Any]:
    store = NetworkStore(root)
    if not store.exists(name):
        raise _unknown(name)
    return next(d for d in list_networks(root, prune) if d["name"] == name)
