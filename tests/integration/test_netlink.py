"""Our rtnetlink client (``network.rtnl``, ``network.veth``) and libnftables binding (``network.nft``)
against the real kernel, inside network namespaces the tests make (root).

Each namespace belongs to a thread of the test that unshared it, and goes with that thread: nothing
is made on the host. What the code did is checked independently, with iproute2 and nft run inside
the namespace by nsenter.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest

from rustainer.backend.errors import NetworkError
from rustainer.backend.network import bridge, nat, nft, veth
from rustainer.backend.network.ipam import Subnet
from rustainer.backend.network.rtnl import Rtnl

pytestmark = pytest.mark.root


class Namespace:
    """A fresh network namespace, alive while its thread runs; ``run(fn)`` calls ``fn`` in it."""

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[Callable[[], object], queue.Queue[tuple[bool, object]]] | None] = queue.Queue()
        started: queue.Queue[BaseException | None] = queue.Queue()
        self.tid = 0
        self.thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self.thread.start()
        failed = started.get(timeout=30)
        if failed is not None:
            raise failed

    @property
    def path(self) -> str:
        return f"/proc/{self.tid}/ns/net"

    def _serve(self, started: queue.Queue[BaseException | None]) -> None:
        from rustainer.backend.linux import syscalls

        try:
            syscalls.unshare(syscalls.CLONE_NEWNET)
            self.tid = threading.get_native_id()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            started.put(err)
            return
        started.put(None)
        while (call := self.calls.get()) is not None:
            work, answer = call
            try:
                answer.put((True, work()))
            except BaseException as err:  # noqa: BLE001 - raised in the test's thread
                answer.put((False, err))

    def run(self, work: Callable[[], object]) -> object:
        answer: queue.Queue[tuple[bool, object]] = queue.Queue()
        self.calls.put((work, answer))
        ok, value = answer.get(timeout=60)
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value

    def sh(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A command inside the namespace (nsenter), for checking what our code did."""
        return subprocess.run(["nsenter", f"--net={self.path}", *argv], capture_output=True, text=True,
                              timeout=30, check=check)

    def ip(self, *argv: str) -> list[dict]:  # type: ignore[type-arg]
        return json.loads(self.sh("ip", "-j", "-d", *argv).stdout or "[]")  # type: ignore[no-any-return]

    def close(self) -> None:
        self.calls.put(None)
        self.thread.join(30)


@pytest.fixture
def namespaces() -> Iterator[Callable[[], Namespace]]:
    made: list[Namespace] = []

    def make() -> Namespace:
        made.append(Namespace())
        return made[-1]

    yield make
    for ns in made:
        ns.close()


def test_bridge_address_routes_and_dumps(namespaces: Callable[[], Namespace]) -> None:
    ns = namespaces()

    def work() -> tuple[object, ...]:
        with Rtnl() as r:
            assert r.link_index("rtn-test") is None
            r.add_bridge("rtn-test")
            index = r.link_index("rtn-test")
            assert index is not None
            r.add_address(index, "10.77.0.1", 24, "bridge rtn-test")
            before_default = bridge.has_default_route(r)
            r.add_default_route("10.77.0.254")
            return (index, r.links(), r.addresses(), r.routes(), bridge.connected_ranges(r), before_default,
                    bridge.has_default_route(r), bridge.connected_ranges(r, but_link="rtn-test"))

    index, links, addresses, routes, ranges, before_default, after_default, but_bridge = ns.run(work)  # type: ignore[misc]
    assert links[index] == "rtn-test" and "lo" in links.values()
    assert (index, "10.77.0.1", 24) in addresses
    assert any(r.dst == "10.77.0.0" and r.dst_len == 24 and r.gateway is None and r.oif == index for r in routes)
    assert any(r.dst_len == 0 and r.gateway == "10.77.0.254" for r in routes)
    assert ("the host's address on rtn-test", Subnet("10.77.0.0/24")) in ranges
    assert ("the host's route on rtn-test", Subnet("10.77.0.0/24")) in ranges
    assert not [label for label, _ in but_bridge if "rtn-test" in label]
    assert (before_default, after_default) == (False, True)
    # what iproute2 sees
    (link,) = ns.ip("link", "show", "rtn-test")
    assert link["linkinfo"]["info_kind"] == "bridge" and "UP" in link["flags"]
    (addr,) = ns.ip("-4", "addr", "show", "rtn-test")
    assert [(a["local"], a["prefixlen"]) for a in addr["addr_info"]] == [("10.77.0.1", 24)]
    default = [r for r in ns.ip("-4", "route", "show", "default")]
    assert default and default[0]["gateway"] == "10.77.0.254" and default[0]["protocol"] == "static"

    def delete() -> tuple[bool, bool]:
        with Rtnl() as r:
            return r.delete_link("rtn-test"), r.delete_link("rtn-test")

    assert ns.run(delete) == (True, False)  # already gone is not an error
    assert ns.ip("link", "show", "type", "bridge") == []


def test_refusals_are_one_line_with_the_errno(namespaces: Callable[[], Namespace]) -> None:
    ns = namespaces()

    def attempt(work: Callable[[Rtnl], object]) -> NetworkError:
        def inside() -> NetworkError:
            with Rtnl() as r:
                with pytest.raises(NetworkError) as caught:
                    work(r)
                return caught.value

        return ns.run(inside)  # type: ignore[return-value]

    def once() -> None:
        with Rtnl() as r:
            r.add_bridge("rtn-twice")

    ns.run(once)
    twice = attempt(lambda r: r.add_bridge("rtn-twice"))
    assert twice.errno == errno.EEXIST and str(twice).startswith("cannot create bridge rtn-twice: File exists")
    nodev = attempt(lambda r: r.add_address(999999, "10.78.0.1", 24, "link #999999"))
    assert nodev.errno == errno.ENODEV and "cannot add address 10.78.0.1/24 to link #999999" in str(nodev)
    unreachable = attempt(lambda r: r.add_default_route("10.79.0.1"))  # no link reaches it
    assert unreachable.errno == errno.ENETUNREACH and "default route via 10.79.0.1" in str(unreachable)
    bad = attempt(lambda r: r.add_default_route("not-an-address"))
    assert "not an IPv4 address" in str(bad)
    for err in (twice, nodev, unreachable, bad):
        assert "\n" not in str(err), str(err)


def test_plug_puts_a_configured_veth_into_another_namespace(namespaces: Callable[[], Namespace]) -> None:
    host, container = namespaces(), namespaces()

    def plug() -> None:
        with Rtnl() as r:
            r.add_bridge("rtn-plug")
            index = r.link_index("rtn-plug")
            assert index is not None
            r.add_address(index, "10.77.1.1", 24, "bridge rtn-plug")
            veth.plug(r, container.tid, "rtvplug", "rtn-plug", "10.77.1.2", 24, "10.77.1.1")

    host.run(plug)
    (end,) = host.ip("link", "show", "rtvplug")
    assert end["master"] == "rtn-plug" and "UP" in end["flags"] and end["linkinfo"]["info_kind"] == "veth"
    assert [link["ifname"] for link in host.ip("link", "show")].count("eth0") == 0  # never on the host side
    (eth0,) = container.ip("-4", "addr", "show", "eth0")
    assert "UP" in eth0["flags"] and [(a["local"], a["prefixlen"]) for a in eth0["addr_info"]] == [("10.77.1.2", 24)]
    (default,) = container.ip("-4", "route", "show", "default")
    assert default["gateway"] == "10.77.1.1" and default["dev"] == "eth0"
    # and traffic flows: the container's end reaches the bridge's address through the pair
    ping = container.sh(shutil.which("busybox") or "busybox", "ping", "-c", "1", "-W", "5", "10.77.1.1", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    def unplug() -> bool:
        with Rtnl() as r:
            return r.delete_link("rtvplug")

    assert host.run(unplug)
    assert container.ip("link", "show", "type", "veth") == []  # the pair goes as one


def test_plug_into_a_namespace_that_is_gone_fails_cleanly(namespaces: Callable[[], Namespace]) -> None:
    ns = namespaces()

    def plug() -> NetworkError:
        with Rtnl() as r:
            r.add_bridge("rtn-gone")
            with pytest.raises(NetworkError) as caught:
                veth.plug(r, 2 ** 22 + 1, "rtvgone", "rtn-gone", "10.77.2.2", 24, "10.77.2.1")  # above pid_max
            return caught.value

    err = ns.run(plug)
    assert "cannot open the container's network namespace" in str(err)
    assert [link["ifname"] for link in ns.ip("link", "show", "type", "veth")] == []  # nothing made
    not_a_namespace = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with pytest.raises(NetworkError, match="cannot enter the container's network namespace"):
            veth.in_namespace(not_a_namespace, lambda r: None)
    finally:
        os.close(not_a_namespace)


@pytest.mark.parametrize("way", ["library", "command"])
def test_nft_runs_one_transaction_where_it_is_run(namespaces: Callable[[], Namespace], way: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Through libnftables (its context made in the namespace) or the nft command, a table is made
    in one transaction, refused scripts leave nothing, and nothing of it reaches the host."""
    if way == "command":
        monkeypatch.setattr(nft, "_library", None)
    elif nft._functions() is None:
        pytest.skip("libnftables.so.1 is not installed")
    ns = namespaces()
    table = "rustainer_nltest"

    def work() -> tuple[str | None, str, str | None]:
        nft.close()  # the next run makes the context here, in the namespace
        try:
            nat.create_table(table, "rtn-nltest", "10.77.3.0/24", True, ("10.77.3.2",))
            listed = nat.list_table(table)
            with pytest.raises(NetworkError) as caught:
                nat._nft(f"add element inet {table} natted {{ 10.77.3.3 }}\nthis is not nft\n")
            nat.delete_table(table)
            return listed, str(caught.value), nat.list_table(table)
        finally:
            nft.close()

    listed, refused, after = ns.run(work)  # type: ignore[misc]
    assert listed is not None and "masquerade" in listed and "10.77.3.2" in listed
    assert "this is not nft" in refused and "\n" not in refused  # the refused line, not the first one
    assert after is None
    assert nat.list_table(table) is None  # the host never saw it
    assert ns.sh("nft", "list", "tables").stdout.strip() == ""  # the refused transaction added nothing


def test_nft_socket_is_never_inherited() -> None:
    """libnftables opens its netfilter socket without close-on-exec; a command we exec (a
    container's) must never get a root netfilter socket."""
    if nft._functions() is None:
        pytest.skip("libnftables.so.1 is not installed")
    nft.close()
    before = nft._descriptors()
    assert nft.run("list tables\n").returncode == 0
    opened = nft._descriptors() - before
    assert opened  # its socket
    assert all(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC for fd, _target in opened)
    inherited = subprocess.run(["ls", "-l", "/proc/self/fd/"], capture_output=True, text=True, check=True,
                               close_fds=False).stdout
    assert not [target for _fd, target in opened if target in inherited], inherited


def test_a_forked_child_makes_its_own_nft_context() -> None:
    if nft._functions() is None:
        pytest.skip("libnftables.so.1 is not installed")
    nft.run("list tables\n")
    assert nft._made is not None
    parent = nft._made
    with nft._lock:  # as if another thread were running a transaction at the fork
        pid = os.fork()
        if pid == 0:  # pragma: no cover - reports through its exit status
            try:
                signal.alarm(20)  # a child stuck on the inherited lock dies of it
                ok = nft.run("list tables\n").returncode == 0 and nft._made is not None and nft._made[1] != parent[1]
                os._exit(0 if ok else 1)
            finally:
                os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert nft._made == parent


HEAVY = ("pyroute2", "asyncio", "json", "re", "enum", "socket", "selectors", "threading", "subprocess", "shutil",
         "hashlib", "ctypes", "typing", "logging", "dataclasses", "ipaddress")


@pytest.mark.parametrize("publish", [False, True])
def test_a_bridge_start_imports_nothing_heavy(rroot, publish: bool) -> None:  # type: ignore[no-untyped-def]
    """What a real ``run --network bridge`` imports beyond the interpreter's start-up: none of the
    modules that cost a fair part of a start (pyroute2 alone cost more than the whole start may),
    published ports or not (the relay is built on _socket and _thread), nor ipaddress."""
    import sys

    code = ("import atexit, runpy, sys\n"
            "before = set(sys.modules)\n"
            f"atexit.register(lambda: print(sorted({{m.split('.')[0] for m in set(sys.modules) - before}} & {set(HEAVY)!r}),"
            " file=sys.stderr))\n"
            "sys.argv = ['rustainer', *sys.argv[1:]]\n"
            "runpy.run_module('rustainer.app.cli', run_name='__main__')\n")
    port = ("-p", f"127.0.0.1:{_free_port()}:80") if publish else ()
    proc = subprocess.run([sys.executable, "-c", code, "run", "--rm", "--network", "bridge", *port, "--", "true"],
                          capture_output=True, text=True, timeout=60, input="")
    assert proc.returncode == 0, proc.stderr
    imported = proc.stderr.strip().splitlines()[-1]
    assert imported == "[]", proc.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
