"""Background containers: the supervisor, attach/detach, logs and the reliability cases (root)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pexpect
import pytest

from helpers import CLI, commands_in, ps, wait_for

pytestmark = pytest.mark.root
DETACH = "\x10\x11"  # Ctrl-P Ctrl-Q






def attach(name: str, **kw) -> pexpect.spawn:  # type: ignore[no-untyped-def]
    return pexpect.spawn(CLI[0], [*CLI[1:], "attach", name], env=dict(os.environ), encoding="utf-8",
                         timeout=15, dimensions=kw.pop("dimensions", (24, 80)), **kw)


def close(child: pexpect.spawn) -> None:
    if child.isalive():
        child.kill(signal.SIGKILL)
    child.close(force=True)


@pytest.fixture
def detached(cli, busybox_rootfs: Path):  # type: ignore[no-untyped-def]
    """Start detached containers; every one still there at the end is removed with rm -f."""
    names: list[str] = []

    def start(name: str, *command: str, opts: tuple[str, ...] = ()) -> str:
        started = time.monotonic()
        proc = cli("run", "--detach", "--name", name, "--rootfs", str(busybox_rootfs), *opts, "--", *command)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == name
        assert time.monotonic() - started < 10
        names.append(name)
        return name

    yield start
    for name in names:
        cli("rm", "-f", name)


def test_detach_returns_at_once_and_the_supervisor_lives_apart(cli, detached, rroot: Path) -> None:
    detached("bg", "sh")
    state = ps(cli)["bg"]
    assert state["status"] == "running" and state["detached"]
    sup = state["supervisor_pid"]
    # Its own session (started by the intermediate process of a double fork), without a terminal.
    assert os.getsid(sup) != os.getsid(0)
    assert int(Path(f"/proc/{sup}/stat").read_text().rsplit(")", 1)[1].split()[4]) == 0
    assert sup not in {c.pid for c in __import__("psutil").Process().children(recursive=True)}
    sock = rroot / "containers" / state["id"] / "attach.sock"
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0


def test_the_container_is_the_supervisors_own_child_and_its_start_helper_is_gone(cli, detached) -> None:
    """The start runs in a short-lived helper of the supervisor (its pages die with it), which
    clones the container's PID 1 as the supervisor's own child (CLONE_PARENT): the supervisor reaps
    it, and the container dies with the supervisor (test_killed_supervisor_...). Published ports:
    test_network's test_host_reaches_a_published_port (the relays run in the supervisor)."""
    import psutil

    detached("kid", "sleep", "300")
    state = ps(cli)["kid"]
    supervisor = psutil.Process(state["supervisor_pid"])
    assert psutil.Process(state["pid"]).ppid() == supervisor.pid
    # The helper ends once it has handed the start over (it may still be ending as the CLI returns).
    wait_for(lambda: [child.pid for child in supervisor.children()] == [state["pid"]], what="the helper's end")


def test_attach_detach_reattach_keeps_the_session(cli, detached) -> None:
    detached("shell", "sh")
    a = attach("shell", dimensions=(30, 100))
    try:
        a.sendline("echo marker-$((6*7)); stty size")
        a.expect("marker-42")
        a.expect("30 100")
        a.send(DETACH)
        a.expect(pexpect.EOF)
    finally:
        close(a)
    assert a.exitstatus == 0
    assert ps(cli)["shell"]["status"] == "running"
    b = attach("shell")
    try:
        b.expect("marker-42")  # the earlier output, shown at once without a key press
        b.sendline("exit 7")
        b.expect(pexpect.EOF)
    finally:
        close(b)
    assert b.exitstatus == 7
    state = wait_for(lambda: ps(cli)["shell"]["status"] == "exited" and ps(cli)["shell"], what="exit")
    assert state["exit_code"] == 7


def test_full_screen_program_shows_at_once(cli, detached) -> None:
    detached("topper", "top")
    wait_for(lambda: "Mem:" in cli("logs", "topper").stdout, what="top's first screen")
    a = attach("topper", dimensions=(24, 80))
    try:
        a.expect("Mem:", timeout=5)  # the current screen arrives with no key press
        a.expect("PID")
        a.send("q")
        a.expect(pexpect.EOF)
    finally:
        close(a)
    assert a.exitstatus == 0


def _snapshot(rroot: Path, cid: str) -> dict:  # type: ignore[type-arg]
    """The supervisor's terminal state, as the dashboard gets it (no size: nothing is resized)."""
    from rustainer.backend.supervisor import protocol as P

    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    with P.SocketPath(str(rroot / "containers" / cid / "attach.sock")) as path:
        sock.connect(path)
    try:
        sock.sendall(P.hello(P.MODE_SNAPSHOT))
        decoder = P.Decoder(P.FROM_SUPERVISOR)
        while True:
            chunk = sock.recv(1 << 20)
            assert chunk, "the supervisor closed the connection before its snapshot"
            for kind, payload in decoder.feed(chunk):
                if kind == P.SNAPSHOT:
                    return json.loads(payload)  # type: ignore[no-any-return]
    finally:
        sock.close()


@pytest.mark.parametrize("lines", [3, 30000])  # under and over shim.LAZY_LIMIT (64 KB) of output
def test_screen_built_on_demand_is_exactly_the_output(cli, detached, rroot: Path, lines: int) -> None:
    """Nobody attached yet: the supervisor keeps the raw output and builds its terminal model on the
    first attach (or past LAZY_LIMIT); either way the screen, scrollback, colours and cursor are
    what a terminal fed the whole output (the log) shows."""
    from rustainer.backend.terminal import Terminal

    script = (r"printf '\033]0;my-title\007\033[1;31mred\033[0m plain\n'; "
              f"seq 1 {lines}; printf '\033[44mEND-MARK\033[0m \033[?25l'; read stop")
    detached("lazy", "sh", "-c", script)
    state = ps(cli)["lazy"]
    log = rroot / "containers" / state["id"] / "container.log"
    wait_for(lambda: b"END-MARK" in log.read_bytes(), what="the output")
    wait_for(lambda: log.read_bytes().endswith(b"\033[?25l"), what="the escape sequences after the mark")
    got = _snapshot(rroot, state["id"])
    reference = Terminal(80, 24)
    reference.feed(log.read_bytes())
    assert got == reference.snapshot()
    assert got["title"] == "my-title" and len(got["history"]) == (10000 if lines > 10000 else 0)
    assert _snapshot(rroot, state["id"]) == got  # and again, from the model now built


def test_two_clients_see_the_same_session(cli, detached) -> None:
    detached("shared", "sh")
    a, b = attach("shared"), attach("shared")
    try:
        a.sendline("echo from-$((1+1))-a")
        a.expect("from-2-a")
        b.expect("from-2-a")
        b.sendline("echo from-$((1+2))-b")
        a.expect("from-3-b")
        # kill -9 of one client: the container and the other client go on
        a.kill(signal.SIGKILL)
        b.sendline("echo still-$((2*2))")
        b.expect("still-4")
    finally:
        close(a)
        close(b)
    assert ps(cli)["shared"]["status"] == "running"


def test_a_prefix_key_alone_reaches_the_shell(cli, detached) -> None:
    detached("keys", "cat", "-v")
    a = attach("keys")
    try:
        a.send("\x10")
        a.send("a\r")
        a.expect(r"\^Pa")
        a.send("\x10")  # nothing follows: it goes through after the short pause
        time.sleep(0.6)
        a.send("b\r")
        a.expect(r"\^Pb")
    finally:
        close(a)


def test_resize_reaches_the_container(cli, detached) -> None:
    detached("sizes", "sh")
    a = attach("sizes", dimensions=(30, 100))
    try:
        a.sendline("stty size")
        a.expect("30 100")
        a.setwinsize(40, 120)
        wait_for(lambda: (a.sendline("stty size"), a.expect(["40 120", pexpect.TIMEOUT], timeout=1))[1] == 0,
                 what="the new size")
    finally:
        close(a)


def test_logs_tail_and_follow(cli, detached) -> None:
    detached("talker", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; read x; echo bye")
    wait_for(lambda: "line5" in cli("logs", "talker").stdout, what="output")
    assert cli("logs", "--tail", "2", "talker").stdout.split() == ["line4", "line5"]
    follower = subprocess.Popen([*CLI, "logs", "-f", "talker"], stdout=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
    try:
        a = attach("talker")
        a.sendline("")
        a.expect(pexpect.EOF)
        close(a)
        out, _ = follower.communicate(timeout=20)  # -f ends when the container does
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert "bye" in out and "line1" in out


def test_killed_supervisor_leaves_an_exited_container_and_no_leak(cli, detached) -> None:
    detached("orphan", "sleep", "300")
    state = ps(cli)["orphan"]
    os.kill(state["supervisor_pid"], signal.SIGKILL)
    wait_for(lambda: not os.path.exists(f"/proc/{state['pid']}"), what="the container to end")
    after = wait_for(lambda: ps(cli)["orphan"]["status"] == "exited" and ps(cli)["orphan"], what="exited")
    assert "lost" in (after["error"] or "")
    cli("rm", "orphan", check_rc=0)
    assert "orphan" not in ps(cli)


def tail_of(log: Path) -> bytes:
    """The log's last 4 KiB; nothing while it is being rotated (renamed to .1, then made anew)."""
    try:
        return log.read_bytes()[-4096:]
    except FileNotFoundError:
        return b""


def test_a_client_let_go_behind_a_flood_attaches_again(cli, detached, rroot: Path) -> None:
    """A client that stops reading while the container floods its terminal is let go once 8 MB
    wait for it (the container never waits for it); when it reads again it attaches again by itself
    and shows the current screen, as tmux redraws a client it skipped output for."""
    detached("flood", "sh")
    log = rroot / "containers" / ps(cli)["flood"]["id"] / "container.log"
    a = attach("flood")
    try:
        a.sendline("echo armed-$((2+2)); while [ ! -e /tmp/go ]; do sleep 0.1; done; "
                   "yes 0123456789012345678901234567890123456789 | head -c 20000000; echo flood-$((6*7))")
        a.expect("armed-4")  # the shell runs the line (and this client has shown its output)
        os.kill(a.pid, signal.SIGSTOP)  # this client stalls
        cli("exec", "flood", "touch", "/tmp/go", check_rc=0)
        wait_for(lambda: b"flood-42" in tail_of(log), timeout=60, what="the flood to end")
        os.kill(a.pid, signal.SIGCONT)
        a.expect("flood-42", timeout=30, searchwindowsize=4096)
        assert len(a.before) < 4 << 20  # far less than the 20 MB: the client skipped the backlog
        a.sendline("echo again-$((2+3))")
        a.expect("again-5")
        assert a.isalive()
    finally:
        close(a)


def test_a_client_whose_supervisor_is_killed_says_so(cli, detached) -> None:
    detached("victim", "sh")
    a = attach("victim")
    try:
        a.sendline("echo up-$((1+1))")
        a.expect("up-2")
        os.kill(ps(cli)["victim"]["supervisor_pid"], signal.SIGKILL)
        a.expect("lost the connection to the supervisor of victim")
        a.expect(pexpect.EOF)
        a.close()
        assert a.exitstatus == 125
    finally:
        close(a)


def test_killed_cli_does_not_touch_a_detached_container(cli, detached) -> None:
    detached("steady", "sh")
    a = attach("steady")
    try:
        a.sendline("echo before")
        a.expect("before")
    finally:
        os.kill(a.pid, signal.SIGKILL)
        close(a)
    b = attach("steady")
    try:
        b.sendline("echo after-$((3*3))")
        b.expect("after-9")
    finally:
        close(b)


def test_running_ghosts_after_a_reboot_show_as_exited(cli, detached, rroot: Path) -> None:
    detached("ghost", "sleep", "300")
    state = ps(cli)["ghost"]
    path = rroot / "containers" / state["id"] / "state.json"
    data = json.loads(path.read_text())
    real_boot = data["boot_id"]
    data["boot_id"] = "0" * 36  # as if recorded before the last boot
    path.write_text(json.dumps(data))
    assert ps(cli)["ghost"]["status"] == "exited"
    # our container is in fact alive on this boot: put the id back and let rm -f end it for real
    data = json.loads(path.read_text())
    data.update(boot_id=real_boot, status="running", pid=state["pid"], supervisor_pid=state["supervisor_pid"])
    path.write_text(json.dumps(data))


def test_slow_client_is_dropped_not_the_container(cli, detached, rroot: Path) -> None:
    # ~14.9 MB of output: more than a client may have queued (supervisor.shim.CLIENT_LIMIT, 8 MB)
    detached("flood", "sh", "-c", "read go; seq 1 2000000; read stop")
    state = ps(cli)["flood"]
    stuck = socket.socket(socket.AF_UNIX)
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    from rustainer.backend.supervisor import protocol as P

    with P.SocketPath(str(rroot / "containers" / state["id"] / "attach.sock")) as path:
        stuck.connect(path)
    stuck.sendall(P.hello(P.MODE_NONE) + P.frame(P.INPUT, b"\n"))
    try:
        # the flood completes although this client never reads
        wait_for(lambda: "2000000" in cli("logs", "--tail", "1", "flood").stdout, timeout=60, what="the flood")
        stuck.settimeout(10)
        received = 0
        while chunk := stuck.recv(1 << 20):  # the supervisor closed it: we get EOF after its queue
            received += len(chunk)
        assert received < 12_000_000  # far less than the flood: it was dropped
    finally:
        stuck.close()
    assert ps(cli)["flood"]["status"] == "running"


def test_memory_of_a_flood_is_given_back(cli, detached, rroot: Path) -> None:
    """10 MB at full speed outrun the parser, so the supervisor holds megabytes of unparsed output
    for a while; once parsed, those pages go back to the kernel (glibc keeps them otherwise)."""
    detached("flood", "sh", "-c", "seq 1 1500000; echo FLOOD-END; read stop")
    state = ps(cli)["flood"]
    log = rroot / "containers" / state["id"] / "container.log"
    # (the log appears with the container's first output, which may come after `run` returns)
    wait_for(lambda: b"FLOOD-END" in tail_of(log)[-64:], timeout=60, what="the flood")

    def heap_kb() -> int:
        text = Path(f"/proc/{state['supervisor_pid']}/smaps").read_text()
        heap = text.split("[heap]\n", 1)[1] if "[heap]\n" in text else ""
        return int(heap.split("Rss:", 1)[1].split()[0]) if heap else 0

    wait_for(lambda: heap_kb() < 3 * 1024, timeout=30, what="the heap to shrink (it held the backlog)")


def test_attach_errors(cli, detached, busybox_rootfs: Path) -> None:
    unknown = cli("attach", "nobody")
    assert unknown.returncode == 125 and unknown.stderr.count("\n") == 1 and "no such container" in unknown.stderr
    cli("run", "--name", "done", "--rootfs", str(busybox_rootfs), "--", "true", check_rc=0)
    stopped = cli("attach", "done")
    assert stopped.returncode == 125 and "not running" in stopped.stderr
    cli("rm", "done", check_rc=0)
    detached("dup", "sh")
    again = cli("run", "--detach", "--name", "dup", "--rootfs", str(busybox_rootfs), "--", "sh")
    assert again.returncode == 125 and "already in use" in again.stderr
    bad = cli("attach", "--detach-keys", "alt-x", "dup")
    assert bad.returncode == 125


@pytest.mark.slow
def test_100_detach_rm_cycles_leave_nothing(cli, busybox_rootfs: Path, rroot: Path) -> None:
    for i in range(100):
        name = f"cyc{i}"
        cli("run", "--detach", "--name", name, "--rootfs", str(busybox_rootfs), "-m", "32M", "--", "sh", check_rc=0)
        cli("rm", "-f", name, check_rc=0)
    assert list((rroot / "containers").iterdir()) == []
    assert list((rroot / "names").iterdir()) == []


@pytest.mark.parametrize("opts", [(), ("--no-init",)], ids=["init", "no-init"])
def test_ctrl_c_interrupts_the_foreground_job(cli, detached, opts: tuple[str, ...]) -> None:
    """The supervisor ignores SIGINT itself; the container must not inherit that (nor job control
    break under the init)."""
    detached("intr", "sh", opts=opts)
    a = attach("intr")
    try:
        a.sendline("tty; sleep 30")
        a.expect("/dev/pts/")
        wait_for(lambda: "sleep" in commands_in(cli, "intr"), what="sleep to start")  # Ctrl-C before hits the shell
        a.sendcontrol("c")
        a.sendline("echo back-$((2+3))")
        a.expect("back-5", timeout=5)
    finally:
        close(a)


def test_supervisors_share_a_zygote_whose_death_harms_nobody(cli, detached, rroot: Path) -> None:
    """Supervisors are forked by one preloaded launcher per root (shared memory); it is no single
    point of failure: kill -9 it and every container, and the next start, go on."""
    from rustainer.backend.supervisor import zygote

    detached("z1", "sh")
    detached("z2", "sh")
    states = ps(cli)
    launcher = zygote.running_pid(str(rroot))
    assert launcher is not None
    for name in ("z1", "z2"):
        status = Path(f"/proc/{states[name]['supervisor_pid']}/status").read_text()
        assert f"PPid:\t{launcher}\n" in status
    os.kill(launcher, signal.SIGKILL)
    wait_for(lambda: zygote.running_pid(str(rroot)) is None, what="the launcher to die")
    a = attach("z1")
    try:
        a.sendline("echo alive-$((5*5))")
        a.expect("alive-25")
    finally:
        close(a)
    detached("z3", "sh")  # a new launcher is started on demand
    assert zygote.running_pid(str(rroot)) not in (None, launcher)
