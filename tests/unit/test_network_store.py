"""The network records on disk and the nftables script, without root or the kernel."""

from __future__ import annotations

from pathlib import Path

from rustainer.backend.network import DEFAULT_NETWORK, nat
from rustainer.backend.network.ipam import Subnet
from rustainer.backend.network.store import NetworkStore, new_record


def test_default_network_exists_without_a_record(tmp_path: Path) -> None:
    store = NetworkStore(str(tmp_path))
    assert store.names() == [DEFAULT_NETWORK]
    assert store.exists(DEFAULT_NETWORK) and not store.exists("front")
    assert store.load(DEFAULT_NETWORK) is None


def test_records_round_trip_and_list_subnets(tmp_path: Path) -> None:
    store = NetworkStore(str(tmp_path))
    store.ensure()
    data = new_record("front", Subnet("10.213.7.0/24"))
    data["leases"]["10.213.7.2"] = {"id": "c" * 64, "name": "web", "hostname": "web"}
    store.save(data)
    assert store.load("front") == data
    assert store.names() == [DEFAULT_NETWORK, "front"]
    assert store.subnets() == [("network front", Subnet("10.213.7.0/24"))]
    assert store.subnets(but="front") == []
    with store.lock():
        store.delete("front")
    assert not store.exists("front")
    store.delete("front")  # absent is fine


def test_table_script_is_ours_only() -> None:
    script = nat.table_script("rustainer_abc123", "rtn-abc123", "10.213.0.0/24", True, ("10.213.0.2",))
    lines = script.splitlines()
    assert lines[:3] == ["add table inet rustainer_abc123", "delete table inet rustainer_abc123",
                         "table inet rustainer_abc123 {"]
    assert "elements = { 10.213.0.2 }" in script
    assert 'ip saddr @natted ip saddr 10.213.0.0/24 oifname != "rtn-abc123" masquerade' in script
    assert 'iifname "rtn-abc123" oifname "rtn-*" oifname != "rtn-abc123" drop' in script
    quiet = nat.table_script("rustainer_abc123", "rtn-abc123", "10.213.0.0/24", False)
    assert "masquerade" not in quiet and "elements" not in quiet and "chain forward" in quiet
    # Every statement names our table: nothing else on the host is touched.
    assert all("rustainer_abc123" in line for line in lines if line.startswith(("add", "delete", "table")))


def test_leases_live_apart_from_the_durable_record(tmp_path: Path) -> None:
    """The record (what the network is) is rewritten, durably, only when it changes; the leases
    (who is on it) go to their own file on every change."""
    import json
    import os

    store = NetworkStore(str(tmp_path))
    store.ensure()
    data = new_record("front", Subnet("10.213.7.0/24"))
    store.save(data)
    record, leases = Path(store.path("front")), Path(store.leases_path("front"))
    assert "leases" not in json.loads(record.read_text()) and json.loads(leases.read_text())["leases"] == {}
    inode = os.stat(record).st_ino
    again = NetworkStore(str(tmp_path))  # another process's store: it knows the record only by reading it
    loaded = again.load("front")
    assert loaded is not None
    loaded["leases"]["10.213.7.2"] = {"id": "c" * 64, "name": "web", "hostname": "web"}
    loaded.update(cursor=2, active=True)
    again.save(loaded)
    assert os.stat(record).st_ino == inode  # a lease does not rewrite the record
    assert json.loads(leases.read_text())["leases"] == loaded["leases"]
    assert NetworkStore(str(tmp_path)).load("front") == loaded
    loaded["subnet"] = "10.213.8.0/24"
    again.save(loaded)
    assert os.stat(record).st_ino != inode and json.loads(record.read_text())["subnet"] == "10.213.8.0/24"
    leases.write_text('{"leases": {"10.213.')  # cut short (a crash without fsync): no member survived it
    after = NetworkStore(str(tmp_path)).load("front")
    assert after is not None and after["leases"] == {} and after["subnet"] == "10.213.8.0/24"
    store.delete("front")
    assert not record.exists() and not leases.exists() and store.load("front") is None


def test_a_record_from_before_the_split_keeps_its_leases(tmp_path: Path) -> None:
    import json

    store = NetworkStore(str(tmp_path))
    store.ensure()
    old = new_record("front", Subnet("10.213.7.0/24"))
    old["leases"]["10.213.7.2"] = {"id": "c" * 64, "name": "web", "hostname": "web"}
    old["active"] = True
    Path(store.path("front")).write_text(json.dumps(old))
    assert store.load("front") == old
