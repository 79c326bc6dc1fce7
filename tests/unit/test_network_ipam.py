"""Pure network parts: subnets, overlaps, the default pool, address allocation, names, ports, hosts."""

from __future__ import annotations

import pytest

from rustainer.backend.errors import InvalidSpecError, NetworkError
from rustainer.backend.network import hosts, ipam
from rustainer.backend.rootfs.plan import build_plan
from rustainer.backend.spec import check_publish, format_publish, parse_publish

Net = ipam.Subnet


@pytest.mark.parametrize(("text", "expected"), [
    ("10.213.5.0/24", "10.213.5.0/24"), (" 172.30.0.0/16 ", "172.30.0.0/16"), ("192.168.7.8/29", "192.168.7.8/29"),
])
def test_parse_subnet_accepts(text: str, expected: str) -> None:
    assert ipam.parse_subnet(text) == Net(expected)


@pytest.mark.parametrize(("text", "why"), [
    ("10.213.5.0", "CIDR"), ("10.213.5.1/24", "host bits"), ("300.1.1.0/24", "CIDR"), ("10.0.0.0/33", "prefix"),
    ("10.0.0.0/30", "prefix"), ("16.0.0.0/4", "prefix"), ("abc/24", "CIDR"), ("", "CIDR"), ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"), ("224.0.0.0/24", "multicast"), ("fd00::/64", "CIDR"),
])
def test_parse_subnet_refuses(text: str, why: str) -> None:
    with pytest.raises(NetworkError, match=why):
        ipam.parse_subnet(text)


def test_overlapping_names_the_first_clash() -> None:
    others = [("network a", Net("10.1.0.0/16")), ("the host's route on eth0", Net("192.0.2.0/24"))]
    assert ipam.overlapping(Net("10.1.5.0/24"), others) == "network a"
    assert ipam.overlapping(Net("192.0.0.0/16"), others) == "the host's route on eth0"
    assert ipam.overlapping(Net("10.2.0.0/24"), others) is None


def test_pick_subnet_skips_what_is_taken() -> None:
    assert ipam.pick_subnet([]) == Net("10.213.0.0/24")
    assert ipam.pick_subnet([Net("10.213.0.0/24"), Net("10.213.1.0/25")]) == Net("10.213.2.0/24")
    assert ipam.pick_subnet([Net("10.213.0.0/16")]) == Net("10.214.0.0/24")
    with pytest.raises(NetworkError, match="no free"):
        ipam.pick_subnet([Net("10.0.0.0/8")])


def test_allocate_never_hands_out_a_held_address_and_goes_round() -> None:
    net = Net("10.213.9.0/29")  # hosts .1-.6: gateway .1, containers .2-.6
    held: set[str] = set()
    cursor = 1
    got = []
    for _ in range(5):
        address, cursor = ipam.allocate(net, held, cursor)
        held.add(address)
        got.append(address)
    assert got == [f"10.213.9.{i}" for i in range(2, 7)]
    with pytest.raises(NetworkError, match="full"):
        ipam.allocate(net, held, cursor)
    held.discard("10.213.9.3")
    assert ipam.allocate(net, held, cursor) == ("10.213.9.3", 3)
    # A released address is not the next one handed out while others are free.
    address, _ = ipam.allocate(Net("10.213.9.0/24"), {"10.213.9.2"}, 3)
    assert address == "10.213.9.4"


def test_gateway_and_names_are_tagged_per_root() -> None:
    assert ipam.gateway_of(Net("10.213.4.0/24")) == "10.213.4.1"
    a, b = ipam.bridge_name("/var/lib/rustainer", "bridge"), ipam.bridge_name("/tmp/other", "bridge")
    assert a != b and a.startswith("rtn-") and len(a) <= 15
    assert ipam.bridge_name("/r", "x") != ipam.bridge_name("/r", "y")
    assert ipam.veth_name("0123456789abcdef") == "rtv01234567"
    assert ipam.nft_table("/r", "x") == "rustainer_" + ipam.tag("/r", "x")


@pytest.mark.parametrize("name", ["", "none", "host", "-x", "a/b", "..", "a" * 33, "sp ace"])
def test_bad_network_names(name: str) -> None:
    with pytest.raises(NetworkError):
        ipam.validate_network_name(name)


@pytest.mark.parametrize(("text", "expected"), [
    ("8080:80", ("127.0.0.1", 8080, 80, "tcp")),
    ("0.0.0.0:53:53/udp", ("0.0.0.0", 53, 53, "udp")),
    ("127.0.0.2:1:65535/TCP", ("127.0.0.2", 1, 65535, "tcp")),
    ("010.0.0.1:80:80", ("10.0.0.1", 80, 80, "tcp")),
])
def test_parse_publish(text: str, expected: tuple[str, int, int, str]) -> None:
    assert parse_publish(text) == expected


@pytest.mark.parametrize("text", ["80", "0:80", "80:0", "65536:80", "80:70000", "x:80", "80:80/sctp",
                                  "1.2.3:80:80", "::1:80:80", "a:b:c:d", "80:80/", "-1:80", "٣:80"])
def test_parse_publish_refuses(text: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid published port"):
        parse_publish(text)


def test_check_publish() -> None:
    check_publish((), "none")
    one = parse_publish("8080:80")
    check_publish((one, parse_publish("8080:80/udp"), parse_publish("127.0.0.2:8080:80")), "bridge")
    with pytest.raises(InvalidSpecError, match="--network none"):
        check_publish((one,), "none")
    with pytest.raises(InvalidSpecError, match="--network host"):
        check_publish((one,), "host")
    with pytest.raises(InvalidSpecError, match="twice"):
        check_publish((one, parse_publish("8080:81")), "bridge")
    with pytest.raises(InvalidSpecError, match="twice"):
        check_publish((one, parse_publish("0.0.0.0:8080:81")), "bridge")
    assert format_publish(one) == "127.0.0.1:8080->80/tcp"


def test_hosts_lists_itself_first_then_the_others() -> None:
    members = {"10.0.0.3": {"id": "b", "name": "web", "hostname": "web"},
               "10.0.0.2": {"id": "a", "name": "db", "hostname": "db.local"}}
    text = hosts.render("b", members)
    lines = text.splitlines()
    assert lines[0].startswith("127.0.0.1") and "localhost" in lines[1]
    assert lines[2] == "10.0.0.3\tweb" and lines[3] == "10.0.0.2\tdb db.local"


def test_hosts_rewrite_keeps_the_inode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hosts"
    hosts.create(str(path))
    inode = path.stat().st_ino
    hosts.rewrite(str(path), "a long first version\n" * 5)
    hosts.rewrite(str(path), "short\n")
    assert path.read_text() == "short\n" and path.stat().st_ino == inode
    hosts.rewrite(str(tmp_path / "gone" / "hosts"), "x")  # a removed container is skipped


def test_plan_binds_the_hosts_file() -> None:
    image = build_plan(rootfs="/img", upper="/u", work="/w", directory=None, hosts="/state/c/hosts")
    acts = [(op.action, op.target) for op in image if op.target == "/etc/hosts"]
    assert acts == [("touch", "/etc/hosts"), ("bind", "/etc/hosts")]
    view = build_plan(rootfs=None, upper=None, work=None, directory=None, hosts="/state/c/hosts")
    (bind,) = [op for op in view if op.target == "/etc/hosts"]
    assert not bind.optional and bind.source == "/state/c/hosts"  # a host without one: see test_plan
    assert view[-1].action == "remount" and view[-1].target == "/"  # still the last step
    assert not [op for op in build_plan(rootfs=None, upper=None, work=None, directory=None) if op.target == "/etc/hosts"]


def test_subnet_parses_compares_and_overlaps_as_ipaddress_does() -> None:
    """ipam.Subnet stands in for ipaddress.IPv4Network on the start path: the same answers."""
    import ipaddress

    cases = ["10.213.9.0/24", "10.0.0.0/8", "192.0.2.128/25", "10.213.9.8/29", "0.0.0.0/0", "10.1.2.3/32"]
    for text in cases:
        ours, theirs = ipam.Subnet(text), ipaddress.IPv4Network(text)
        assert (str(ours), ours.prefixlen, ours.num_addresses) == (str(theirs), theirs.prefixlen, theirs.num_addresses)
        assert ours.address(1) == str(theirs.network_address + 1)
        for other in cases:
            assert ours.overlaps(ipam.Subnet(other)) == theirs.overlaps(ipaddress.IPv4Network(other)), (text, other)
    assert ipam.Subnet("10.77.0.5/24", strict=False) == ipam.Subnet("10.77.0.0/24")
    assert len({ipam.Subnet("10.77.0.0/24"), ipam.Subnet("10.77.0.0/24")}) == 1
    for bad in ("10.77.0.5/24", "10.77.0/24", "10.77.0.256/24", "10.77.0.0/33", "x/24", "10.77.0.0/-1"):
        with pytest.raises(ValueError):
            ipam.Subnet(bad)
