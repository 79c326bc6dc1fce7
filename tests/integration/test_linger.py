"""A network outlives its last member by a grace period, then goes by itself (root, real kernel).

The rest of the suite runs with ``RUSTAINER_NETWORK_LINGER=0`` (see ``rroot``); these tests run the
users' default or a short grace period of their own, and check that the bridge and table are reused
within it, go after it without any command, go at once with ``network rm``, are taken down by the
next ``network ls`` if the lingering process was killed, and that the process holds nothing of the
caller's. Also the nfnetlink client that adds and removes a member's NAT address.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from helpers import wait_for

pytestmark = pytest.mark.root


def bridge_of(rroot: Path, network: str = "bridge") -> str:
    from rustainer.backend.network import ipam

    return ipam.bridge_name(str(rroot), network)


def table_of(rroot: Path, network: str = "bridge") -> str:
    from rustainer.backend.network import ipam

    return ipam.nft_table(str(rroot), network)


def link_index(name: str) -> int | None:
    try:
        return int(Path(f"/sys/class/net/{name}/ifindex").read_text())
    except OSError:  # gone, or going (EINVAL while it is unregistered)
        return None


def has_table(table: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", table], capture_output=True).returncode == 0


def lingering_processes(rroot: Path) -> list[psutil.Process]:
    """The lingering processes of this test's root (forked from its CLI: its environment)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "rustainer-linge" and proc.environ().get("RUSTAINER_ROOT") == str(rroot):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def gone(rroot: Path, network: str = "bridge") -> bool:
    return link_index(bridge_of(rroot, network)) is None and not has_table(table_of(rroot, network))


def test_the_default_network_lingers_is_reused_then_goes_by_itself(cli, busybox_rootfs: Path, rroot: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUSTAINER_NETWORK_LINGER")  # the users' default: 2 s
    proc = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--", "echo", "hi")
    assert proc.returncode == 0 and proc.stdout == "hi\n", proc.stderr
    # The run's output was read to its end, and that did not wait for the lingering process (which
    # keeps none of the CLI's descriptors: had it, it would be gone by now, 2 s after it began) nor
    # for the bridge's deletion. (Not timed: a loaded machine's run alone can take 2 s.)
    bridge = bridge_of(rroot)
    first = link_index(bridge)
    assert first is not None and has_table(table_of(rroot))
    wait_for(lambda: lingering_processes(rroot), timeout=5, what="the lingering process")
    info = json.loads(cli("network", "inspect", "bridge", check_rc=0).stdout)
    assert info["active"] and info["containers"] == []
    # A member within the grace period joins the network as it is: the same bridge, no new table.
    again = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--", "ip", "-4", "addr")
    assert again.returncode == 0 and info["subnet"].rsplit(".", 1)[0] in again.stdout, again.stdout
    assert link_index(bridge) == first
    # Then, with no command at all, it goes: bridge, table, the "active" mark, the process.
    wait_for(lambda: gone(rroot), timeout=10, what="the lingering network to go")
    wait_for(lambda: not lingering_processes(rroot), timeout=10, what="the lingering processes to end")
    from rustainer.backend.network.store import NetworkStore

    record = NetworkStore(str(rroot)).load("bridge")
    assert record is not None and not record["active"] and record["leases"] == {} and "idle_since" not in record


def test_network_rm_in_the_grace_period_takes_it_down_at_once(cli, busybox_rootfs: Path, rroot: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTAINER_NETWORK_LINGER", "1")
    cli("network", "create", "--subnet", "10.213.244.0/24", "brief", check_rc=0)
    cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--network", "brief", "--", "true", check_rc=0)
    assert link_index(bridge_of(rroot, "brief")) is not None
    cli("network", "rm", "brief", check_rc=0)
    assert gone(rroot, "brief")  # at once, not a grace period later
    assert "brief" not in cli("network", "ls", check_rc=0).stdout
    # The lingering process wakes to find no network: it makes nothing again, and ends.
    wait_for(lambda: not lingering_processes(rroot), timeout=10, what="the lingering process to end")
    assert gone(rroot, "brief")


def test_a_member_joining_in_the_grace_period_keeps_the_network_up(cli, busybox_rootfs: Path, rroot: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTAINER_NETWORK_LINGER", "2")  # long enough for the detached start below
    cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--", "true", check_rc=0)
    first = link_index(bridge_of(rroot))
    cli("run", "--detach", "--name", "stays", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--",
        "sleep", "1000", check_rc=0)
    try:
        # The first lingering process wakes while a member is on the network, and leaves it be.
        wait_for(lambda: not lingering_processes(rroot), timeout=10, what="the first lingering process to end")
        assert link_index(bridge_of(rroot)) == first and has_table(table_of(rroot))
    finally:
        cli("rm", "-f", "stays", check_rc=0)
    wait_for(lambda: gone(rroot), timeout=10, what="the network to go after its last member")


@pytest.mark.parametrize("verb", ["ls", "create"])
def test_a_killed_lingering_process_is_made_good_by_the_next_network_command(
        cli, busybox_rootfs: Path, rroot: Path, monkeypatch: pytest.MonkeyPatch, verb: str) -> None:
    monkeypatch.setenv("RUSTAINER_NETWORK_LINGER", "1")  # long enough to find and kill the process
    cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--", "true", check_rc=0)
    for proc in lingering_processes(rroot):
        proc.kill()
    wait_for(lambda: not lingering_processes(rroot), timeout=10, what="the killed process to go")
    assert link_index(bridge_of(rroot)) is not None  # nobody took it down
    # Within the grace period plus STALE_AFTER it is presumed to be still lingering; past that, the
    # next look at the networks takes it down. Here in-process, with that margin shortened.
    from rustainer.backend.container import networks
    from rustainer.backend.network import manager

    monkeypatch.setattr(manager, "STALE_AFTER", 0.0)
    time.sleep(1.05)  # the grace period itself (1 s) must pass: a timer, not a synchronisation
    if verb == "ls":
        listed = {n["name"]: n for n in networks.list_networks(str(rroot))}
        assert not listed["bridge"]["active"]
    else:  # the stale bridge's address would otherwise clash with a new network's subnet
        networks.create(str(rroot), "later", None)
        networks.remove(str(rroot), "later")
    assert gone(rroot)


def test_a_no_nat_member_given_an_ended_members_address_is_not_masqueraded(cli, busybox_rootfs: Path,
                                                                          rroot: Path) -> None:
    """An ended member's address stays in the table's NAT set (removing it would make the CLI's
    exit wait ~13 ms); a --no-nat member that gets the address takes it out."""
    from rustainer.backend.network import nat
    from rustainer.backend.network.store import NetworkStore

    cli("network", "create", "--subnet", "10.213.245.0/29", "tiny", check_rc=0)  # .2-.6: five addresses
    try:
        cli("run", "--detach", "--name", "keeper", "--rootfs", str(busybox_rootfs), "--network", "tiny", "--",
            "sleep", "1000", check_rc=0)
        record = NetworkStore(str(rroot)).load("tiny")
        assert record is not None
        if not record.get("masquerade"):
            pytest.skip("this host has no default route: networks get no masquerading")
        seen = set()
        for _ in range(4):  # the other four addresses, each ending natted
            out = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--network", "tiny", "--",
                      "ip", "-4", "-o", "addr", "show", "eth0", check_rc=0).stdout
            seen.add(out.split()[3].split("/")[0])
        listed = nat.list_table(table_of(rroot, "tiny")) or ""
        assert all(address in listed for address in seen), listed  # ended, still in the set
        cli("run", "--detach", "--name", "plain", "--no-nat", "--rootfs", str(busybox_rootfs), "--network", "tiny",
            "--", "sleep", "1000", check_rc=0)
        info = json.loads(cli("network", "inspect", "tiny", check_rc=0).stdout)
        plain = next(c["address"] for c in info["containers"] if c["name"] == "plain")
        assert plain in seen  # the pool came round to an ended member's address
        assert plain not in (nat.list_table(table_of(rroot, "tiny")) or "")
        cli("rm", "-f", "plain", "keeper", check_rc=0)
    finally:
        cli("rm", "-f", "plain", "keeper")
        cli("network", "rm", "tiny")


def test_nfnetlink_adds_and_removes_one_address_and_refuses_in_one_line() -> None:
    from rustainer.backend.errors import NetworkError
    from rustainer.backend.network import nat, nfnl

    table = f"rustainer_test_nfnl_{os.getpid()}"
    nat.create_table(table, "rtn-nfnltest", "10.213.246.0/24", True, ("10.213.246.2",))
    try:
        nfnl.add_address(table, "natted", "10.213.246.3")
        nfnl.add_address(table, "natted", "10.213.246.3")  # again: no error, as nft's "add element"
        listed = nat.list_table(table) or ""
        assert "10.213.246.2" in listed and "10.213.246.3" in listed
        nfnl.remove_address(table, "natted", "10.213.246.3")
        nfnl.remove_address(table, "natted", "10.213.246.3")  # absent: fine
        listed = nat.list_table(table) or ""
        assert "10.213.246.2" in listed and "10.213.246.3" not in listed
    finally:
        nat.delete_table(table)
    with pytest.raises(NetworkError) as caught:
        nfnl.add_address(table, "natted", "10.213.246.3")
    message = str(caught.value)
    assert caught.value.errno == 2 and "\n" not in message
    assert message == (f"nftables refused the network's rules: No such file or directory "
                       f"(add element inet {table} natted {{ 10.213.246.3 }})")
    nfnl.remove_address(table, "natted", "10.213.246.3")  # its table gone: fine


def test_rm_after_a_detached_containers_end_leaves_the_grace_period_alone(cli, busybox_rootfs: Path, rroot: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``rm`` releases a second time what the container's end released: the network it left
    lingering is not taken down by it (and ``rm`` does not pay for a bridge's deletion)."""
    monkeypatch.setenv("RUSTAINER_NETWORK_LINGER", "3")
    cli("run", "--detach", "--name", "d", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--",
        "sleep", "1000", check_rc=0)
    first = link_index(bridge_of(rroot))
    cli("stop", "-t", "0", "d", check_rc=0)
    cli("rm", "d", check_rc=0)
    assert link_index(bridge_of(rroot)) == first and has_table(table_of(rroot))
    wait_for(lambda: gone(rroot), timeout=15, what="the lingering network to go")
