"""Bridge networks against the real kernel (root): names, isolation, published ports, the pool, NAT
rules and clean-up. Traffic only flows between namespaces these tests create and 127.0.0.1; NAT is
checked by reading its rules, never by sending anything out."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import wait_for

pytestmark = pytest.mark.root
# Clients run in the host view: resolving a name makes the static busybox load the host's NSS modules,
# which a bare busybox rootfs does not have.
WGET_LOOP = "for i in $(seq 100); do timeout 5 busybox wget -q -O- http://{0}/ && exit 0; sleep 0.1; done; exit 1"




def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ours() -> set[str]:
    """Links and nft tables rustainer names (any root)."""
    links = {n for n in os.listdir("/sys/class/net") if n.startswith(("rtn-", "rtv"))}
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    return links | {t for t in tables.split() if t.startswith("rustainer_")}


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def www(tmp_path: Path) -> Path:
    folder = tmp_path / "www"
    folder.mkdir()
    (folder / "index.html").write_text("hello from web\n")
    return folder


@pytest.fixture
def net(cli, busybox_rootfs: Path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """Helpers bound to this test's root; detached containers and networks are removed at the end."""
    started: list[str] = []
    networks: list[str] = []

    class Net:
        @staticmethod
        def web(name: str, www: Path, *opts: str) -> str:
            proc = cli("run", "--detach", "--name", name, "--rootfs", str(busybox_rootfs), "-d", str(www), *opts,
                       "--", "httpd", "-f", "-p", "80", "-h", str(www))
            assert proc.returncode == 0, proc.stderr
            started.append(name)
            return name

        @staticmethod
        def create(name: str, *opts: str) -> None:
            cli("network", "create", *opts, name, check_rc=0)
            networks.append(name)

        @staticmethod
        def inspect(name: str) -> dict:  # type: ignore[type-arg]
            return json.loads(cli("network", "inspect", name, check_rc=0).stdout)  # type: ignore[no-any-return]

        @staticmethod
        def address(network: str, container: str) -> str:
            return next(c["address"] for c in Net.inspect(network)["containers"] if c["name"] == container)

        @staticmethod
        def run(*args: str, rc: int | None = 0):  # type: ignore[no-untyped-def]
            return cli("run", "--rm", "--rootfs", str(busybox_rootfs), *args, check_rc=rc)

        @staticmethod
        def client(*args: str, rc: int | None = 0):  # type: ignore[no-untyped-def]
            return cli("run", "--rm", *args, check_rc=rc)

    yield Net
    for name in started:
        cli("rm", "-f", name)
    for name in networks:
        cli("network", "rm", name)


def test_none_has_only_lo(net) -> None:  # type: ignore[no-untyped-def]
    out = net.run("--", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate; ip -o -4 addr").stdout
    assert out.split()[:2] == ["lo", "unknown"], out
    assert "eth0" not in out


def test_two_containers_on_one_network_reach_each_other_by_name(net, www: Path) -> None:  # type: ignore[no-untyped-def]
    net.create("front")
    net.web("web", www, "--network", "front")
    out = net.client("--network", "front", "--name", "client", "--", "sh", "-c",
                  "cat /etc/hosts; " + WGET_LOOP.format("web")).stdout
    assert "hello from web" in out
    assert f"{net.address('front', 'web')}\tweb" in out
    # The server's own /etc/hosts lists the newcomer while it runs, and forgets it when it leaves.
    assert [c["name"] for c in net.inspect("front")["containers"]] == ["web"]


def test_hosts_file_follows_joins_and_leaves(net, www: Path, cli, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    net.web("a", www, "--network", "bridge")
    net.web("b", www, "--network", "bridge")
    a = next(s for s in json.loads(cli("ps", "--format", "json").stdout) if s["name"] == "a")
    hosts = rroot / "containers" / a["id"] / "hosts"
    wait_for(lambda: "\tb\n" in hosts.read_text(), what="b in a's hosts")
    inode = hosts.stat().st_ino
    cli("rm", "-f", "b", check_rc=0)
    assert "\tb\n" not in hosts.read_text() and hosts.stat().st_ino == inode
    out = cli("exec", "a", "cat", "/etc/hosts", check_rc=0).stdout
    assert "\ta\n" in out and "\tb\n" not in out


def test_containers_on_two_networks_cannot_reach_each_other(net, www: Path) -> None:  # type: ignore[no-untyped-def]
    net.create("red")
    net.create("blue")
    net.web("web", www, "--network", "red")
    web_ip = net.address("red", "web")
    net.client("--network", "red", "--", "sh", "-c", WGET_LOOP.format(web_ip))  # it does serve
    out = net.client("--network", "blue", "--", "sh", "-c",
                     f"timeout 3 busybox wget -q -O- http://{web_ip}/ && echo REACHED; "
                     f"busybox ping -c 1 -W 1 {web_ip} && echo PINGED; "
                     "timeout 3 busybox wget -q -O- http://web/ && echo BY-NAME; true").stdout
    assert "REACHED" not in out and "PINGED" not in out and "BY-NAME" not in out, out
    assert net.inspect("red")["subnet"] != net.inspect("blue")["subnet"]


def test_host_reaches_a_published_port(net, cli, www: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    net.web("web", www, "--network", "bridge", "-p", f"{port}:80")

    def fetch() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
                return resp.read().decode()  # type: ignore[no-any-return]
        except OSError:
            return None

    assert "hello from web" in wait_for(fetch, what="the published port")
    # The relay lives in the supervisor (its start helper bound the port and handed it over).
    import psutil

    from helpers import ps

    supervisor = psutil.Process(ps(cli)["web"]["supervisor_pid"])
    assert any(c.laddr.port == port and c.status == psutil.CONN_LISTEN for c in supervisor.net_connections("tcp"))
    # Taken: a second container asking for the same port is refused at run, and leaves nothing.
    before = ours()
    proc = net.run("--network", "bridge", "-p", f"{port}:80", "--", "true", rc=125)
    assert "already in use" in proc.stderr and proc.stderr.count("\n") == 1
    assert ours() == before


def test_address_pool_is_not_reused_while_held(net, cli, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    net.create("pool", "--subnet", "10.213.240.0/29")  # room for 5 containers
    names = ["p1", "p2", "p3"]
    for name in names:
        net.web(name, rroot, "--network", "pool")
    addresses = {n: net.address("pool", n) for n in names}
    assert len(set(addresses.values())) == 3
    assert all(a.startswith("10.213.240.") and a not in ("10.213.240.0", "10.213.240.1") for a in addresses.values())
    cli("rm", "-f", "p1", check_rc=0)
    net.web("p4", rroot, "--network", "pool")
    net.web("p5", rroot, "--network", "pool")
    now = {c["name"]: c["address"] for c in net.inspect("pool")["containers"]}
    assert len(set(now.values())) == 4
    assert now["p2"] == addresses["p2"] and now["p3"] == addresses["p3"]
    from rustainer.backend.network.store import NetworkStore

    record = NetworkStore(str(rroot)).load("pool")
    assert record is not None and sorted(record["leases"]) == sorted(now.values())
    proc = cli("network", "rm", "pool")
    assert proc.returncode == 125 and "in use" in proc.stderr


def test_nat_is_checked_by_its_rules(net, www: Path, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    from rustainer.backend.network import ipam

    net.web("natted", www, "--network", "bridge")
    net.web("plain", www, "--network", "bridge", "--no-nat")
    info = net.inspect("bridge")
    table = info["nft_table"].split()[1]
    assert table == ipam.nft_table(str(rroot), "bridge")
    rules = subprocess.run(["nft", "list", "table", "inet", table], capture_output=True, text=True, check=True).stdout
    natted, plain = net.address("bridge", "natted"), net.address("bridge", "plain")
    if info["masquerade"]:  # the host has a default route
        assert "masquerade" in rules and natted in rules and plain not in rules
    assert f'iifname "{info["bridge"]}" oifname "rtn-*"' in rules  # isolation from other networks
    net.inspect("bridge")
    from helpers import CLI

    for name in ("natted", "plain"):
        subprocess.run([*CLI, "rm", "-f", name], check=True, capture_output=True)
    assert subprocess.run(["nft", "list", "table", "inet", table], capture_output=True).returncode != 0
    assert not os.path.exists(f"/sys/class/net/{info['bridge']}")


def test_network_verb_and_subnet_checks(cli) -> None:  # type: ignore[no-untyped-def]
    from rustainer.backend.network.bridge import connected_ranges, open_host

    out = cli("network", "ls", check_rc=0).stdout
    assert out.splitlines()[1].split()[:2] == ["bridge", "10.213.0.0/24"] or "bridge" in out
    cli("network", "create", "--subnet", "10.213.250.0/24", "one", check_rc=0)
    try:
        proc = cli("network", "create", "--subnet", "10.213.250.128/25", "two")
        assert proc.returncode == 125 and "overlaps network one" in proc.stderr
        ipr = open_host()
        try:
            host_range = next(s for label, s in connected_ranges(ipr) if not str(s).startswith("127."))
        finally:
            ipr.close()
        proc = cli("network", "create", "--subnet", str(host_range), "three")
        assert proc.returncode == 125 and "overlaps the host's" in proc.stderr, proc.stderr
        for bad in ("10.213.7.0", "10.213.7.1/24", "10.213.7.0/40", "banana/24"):
            proc = cli("network", "create", "--subnet", bad, "four")
            assert proc.returncode == 125 and "invalid subnet" in proc.stderr and proc.stderr.count("\n") == 1
        assert cli("network", "create", "one").returncode == 125
        assert cli("network", "rm", "bridge").returncode == 125
        assert cli("network", "rm", "nope").returncode == 125
        assert cli("network", "frobnicate").returncode == 125
        info = json.loads(cli("network", "inspect", "one", check_rc=0).stdout)
        assert info["subnet"] == "10.213.250.0/24" and info["gateway"] == "10.213.250.1" and not info["active"]
    finally:
        cli("network", "rm", "one", check_rc=0)
    assert "one" not in cli("network", "ls", check_rc=0).stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--network", "nosuch"), "unknown network"),
    (("--network", "../x"), "invalid network name"),
    (("--network", "bridge", "-p", "80"), "invalid published port"),
    (("--network", "bridge", "-p", "70000:80"), "invalid published port"),
    (("--network", "bridge", "-p", "8080:80/sctp"), "invalid published port"),
    (("-p", "8080:80"), "--network none"),
    (("--network", "host", "-p", "8080:80"), "--network host"),
])
def test_bad_input_is_refused_with_nothing_left(cli, busybox_rootfs: Path, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    before = ours()
    proc = cli("run", "--rm", "--rootfs", str(busybox_rootfs), *args, "--", "true")
    assert proc.returncode == 125 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert json.loads(cli("ps", "-a", "--format", "json", check_rc=0).stdout) == []
    assert ours() == before


def test_a_killed_supervisor_leaves_nothing_after_reconcile(net, www: Path, cli) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    before = ours()
    net.web("web", www, "--network", "bridge", "-p", f"{port}:80")
    wait_for(lambda: listening(port), what="the published port")
    state = next(s for s in json.loads(cli("ps", "--format", "json").stdout) if s["name"] == "web")
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    wait_for(lambda: not listening(port), what="the listener to go with its supervisor")
    wait_for(lambda: json.loads(cli("ps", "-a", "--format", "json").stdout)[0]["status"] == "exited",
             what="the container to be reconciled")
    assert ours() == before
    cli("rm", "web", check_rc=0)


@pytest.mark.slow
def test_fifty_bridge_runs_with_published_ports_leave_nothing(cli, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    before = ours()
    for i in range(50):
        proc = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--network", "bridge", "-p", f"{port}:80",
                   "--", "sh", "-c", "ip -o -4 addr show eth0 | grep -q 10.213. && grep -q localhost /etc/hosts")
        assert proc.returncode == 0, (i, proc.stderr)
    assert ours() == before
    assert not listening(port)
    assert json.loads(cli("ps", "-a", "--format", "json", check_rc=0).stdout) == []
    assert not [n for n in os.listdir("/var/run/netns")] if os.path.isdir("/var/run/netns") else True


UDP_ECHO = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9999))
while True:
    data, addr = s.recvfrom(65536)
    s.sendto(b"echo:" + data, addr)
"""


def udp_ask(client: socket.socket, port: int, payload: bytes) -> bytes:
    """Send until the echo comes back (the server may still be starting; UDP may drop)."""

    def attempt() -> bytes | None:
        client.sendto(payload, ("127.0.0.1", port))
        try:
            return client.recv(65536)
        except OSError:
            return None

    client.settimeout(0.2)
    return wait_for(attempt, what=f"the echo of {payload!r}")  # type: ignore[no-any-return]


@pytest.fixture
def udp_echo(cli) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """``start(port) -> supervisor pid``: a UDP echo server (host view's python3) in a bridged
    container, its port 9999 published on 127.0.0.1:port/udp."""
    names: list[str] = []

    def start(port: int) -> int:
        name = f"udp{len(names)}"
        cli("run", "--detach", "--name", name, "--network", "bridge", "-p", f"127.0.0.1:{port}:9999/udp",
            "--", "python3", "-c", UDP_ECHO, check_rc=0)
        names.append(name)
        state = next(s for s in json.loads(cli("ps", "--format", "json").stdout) if s["name"] == name)
        return int(state["supervisor_pid"])

    yield start
    for name in names:
        cli("rm", "-f", name)


def test_udp_round_trip_through_a_published_port(udp_echo) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    udp_echo(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
        assert udp_ask(a, port, b"from a") == b"echo:from a"
        assert udp_ask(b, port, b"from b") == b"echo:from b"  # each peer gets its own replies
        a.settimeout(5)
        a.sendto(b"again", ("127.0.0.1", port))
        assert a.recv(65536) == b"echo:again"


def test_udp_peers_expire_when_idle_and_are_bounded(udp_echo, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import psutil

    monkeypatch.setenv("RUSTAINER_UDP_IDLE_TIMEOUT", "1")
    monkeypatch.setenv("RUSTAINER_UDP_MAX_PEERS", "3")
    port = free_port()
    owner = psutil.Process(udp_echo(port))

    def upstreams() -> int:
        """The owner's sockets towards the container's port, one per peer it relays for."""
        return sum(1 for c in owner.net_connections(kind="udp") if c.raddr and c.raddr.port == 9999)

    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    try:
        for i, client in enumerate(clients):
            assert udp_ask(client, port, b"%d" % i) == b"echo:%d" % i
            # the least recently used peer makes room (its thread closes its socket as it ends)
            wait_for(lambda: upstreams() <= 3, timeout=5, what="at most 3 UDP peers")
        wait_for(lambda: upstreams() == 0, timeout=10, what="idle UDP peers to expire")
        # an expired peer that comes back simply gets a new one
        assert udp_ask(clients[0], port, b"back") == b"echo:back"
        assert upstreams() == 1
    finally:
        for client in clients:
            client.close()
