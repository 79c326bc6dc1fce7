"""Each isolation property checked from inside a real container (root, real kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import inspect, tree_digest, wait_for

pytestmark = pytest.mark.root


def sh(cli, script: str, *opts: str, rc: int = 0):  # type: ignore[no-untyped-def]
    return cli("run", "--rm", *opts, "--", "sh", "-c", script, check_rc=rc)


@pytest.mark.parametrize("init", [True, False], ids=["init", "no-init"])
def test_pid_namespace_shows_only_the_containers_tree(cli, busybox_rootfs: Path, init: bool) -> None:
    out = sh(cli, 'echo "me=$$"; ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\\n" " "; echo; ps -o pid,comm',
             "--rootfs", str(busybox_rootfs), *(() if init else ("--no-init",))).stdout
    assert ("me=2" if init else "me=1") in out
    pids = out.splitlines()[1].split()
    # the init (1) and sh (2), or sh (1); ls, grep, sort, tr: only the container's processes, no host pid.
    assert pids[0] == "1" and all(int(p) < 20 for p in pids), out
    rows = [line.split() for line in out.splitlines()[3:]]
    assert rows[0] == ["1", "rustainer-init" if init else "ps"], out  # (sh -c execs its last command)
    assert "ps" in out and not any("init" in row[1] for row in rows[1:]), out  # no host init


def test_proc_is_the_containers(cli, busybox_rootfs: Path) -> None:
    # --no-init: PID 1 is the command itself (with the init, see test_init)
    out = sh(cli, "cat /proc/1/cmdline | tr '\\0' ' '; echo; readlink /proc/1/exe", "--rootfs", str(busybox_rootfs),
             "--no-init").stdout
    assert out.splitlines()[0].startswith("sh -c cat /proc/1/cmdline")
    assert out.splitlines()[1] == "/bin/busybox"  # never the host's python


def test_hostname_is_the_container_name(cli) -> None:
    assert sh(cli, "hostname", "--name", "web-1").stdout.strip() == "web-1"
    assert sh(cli, "hostname", "--hostname", "db.local").stdout.strip() == "db.local"
    assert os.uname().nodename not in ("web-1", "db.local")


def test_host_view_is_read_only_and_hides_the_host(cli, tmp_path: Path) -> None:
    secret = tmp_path / "host-only" / "marker"
    secret.parent.mkdir()
    secret.write_text("host")
    script = f"""
    test -e {secret} && echo SEEN-MARKER
    test -e /work && echo SEEN-WORK
    touch /usr/x 2>/dev/null && echo WROTE-USR
    touch /etc/x 2>/dev/null && echo WROTE-ETC
    touch /newdir 2>/dev/null && echo WROTE-ROOT
    touch /tmp/ok /root/ok /run/ok && echo TMP-OK
    echo "shadow=[$(cat /etc/shadow)] gshadow=[$(cat /etc/gshadow 2>/dev/null)]"
    ls /usr/bin/python3 >/dev/null && echo HAS-USR
    """
    out = sh(cli, script).stdout
    for bad in ("SEEN-MARKER", "SEEN-WORK", "WROTE-USR", "WROTE-ETC", "WROTE-ROOT"):
        assert bad not in out, out
    assert "TMP-OK" in out and "HAS-USR" in out
    assert "shadow=[]" in out and "gshadow=[]" in out
    assert Path("/etc/shadow").read_text() != ""  # the host's file is untouched


def test_rootfs_folder_is_never_modified(cli, busybox_rootfs: Path) -> None:
    before = tree_digest(busybox_rootfs)
    out = sh(cli, "echo new > /etc/passwd; rm /bin/ls; mkdir /data; echo x > /data/f; cat /etc/passwd; ls /bin/ls",
             "--rootfs", str(busybox_rootfs), rc=1)
    assert "new" in out.stdout
    assert tree_digest(busybox_rootfs) == before
    # and a second container gets a fresh writable layer
    assert "root:x:0:0" in sh(cli, "cat /etc/passwd", "--rootfs", str(busybox_rootfs)).stdout


def test_writable_layer_exists_only_inside_the_container(cli, busybox_rootfs: Path, rroot: Path) -> None:
    """The overlay's upper and work folders live on a tmpfs of the container's own mount namespace:
    the host's mount table and disk never see them, and nothing is left to clean up."""
    script = ("dd if=/dev/zero of=/big bs=1024 count=2048 2>/dev/null; grep ' / / ' /proc/self/mountinfo; "
              "cat /proc/self/mountinfo > /dev/null; echo DONE")
    proc = cli("run", "--detach", "--name", "layer", "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
               script + "; sleep 300", check_rc=0)
    assert proc.stdout.strip() == "layer"
    wait_for(lambda: "DONE" in cli("logs", "layer", check_rc=0).stdout, what="the container to write its file")
    out = cli("logs", "layer", check_rc=0).stdout
    upper = out.split("upperdir=")[1].split(",")[0]
    assert upper.startswith(str(rroot))
    with open("/proc/self/mountinfo") as fh:  # the host's mount table: nothing of it
        assert str(rroot) not in fh.read()
    assert sorted(os.listdir(rroot / "mnt")) == []
    cdir = rroot / "containers" / inspect(cli, "layer")["id"]
    assert not {"rootfs", "upper", "work"} & set(os.listdir(cdir))
    assert sum(f.stat().st_size for f in rroot.rglob("*") if f.is_file()) < 1 << 20  # the 2 MB are not on disk
    cli("rm", "-f", "layer", check_rc=0)
    assert os.listdir(rroot / "containers") == [] and os.listdir(rroot / "mnt") == []


def test_rootfs_symlink_escape_is_refused(cli, busybox_rootfs: Path, tmp_path: Path) -> None:
    evil = tmp_path / "evil"
    os.system(f"cp -a {busybox_rootfs} {evil}")
    (evil / "proc").rmdir()
    target = tmp_path / "victim"
    target.mkdir()
    (evil / "proc").symlink_to(str(target))
    proc = cli("run", "--rm", "--rootfs", str(evil), "--", "true")
    assert proc.returncode == 125
    assert "symlink" in proc.stderr and proc.stderr.count("\n") == 1
    assert list(target.iterdir()) == []


def test_cpuset_is_enforced(cli) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    out = sh(cli, "grep Cpus_allowed_list /proc/self/status", "-c", str(cpus[0])).stdout
    assert out.split()[-1] == str(cpus[0])
    if len(cpus) > 1:
        out = sh(cli, "grep Cpus_allowed_list /proc/self/status", "-c", f"{cpus[0]}-{cpus[1]}").stdout
        assert out.split()[-1] == f"{cpus[0]}-{cpus[1]}"


def test_memory_limit_oom_kills_and_is_reported(cli, busybox_rootfs: Path) -> None:
    # busybox tail keeps the "last line" of /dev/zero, which never ends: memory grows until the limit.
    proc = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "-m", "32M", "--", "tail", "/dev/zero")
    assert proc.returncode == 137, proc
    assert "OOM-killed" in proc.stderr


def test_pids_limit_stops_a_fork_loop(cli, busybox_rootfs: Path) -> None:
    # Only shell builtins after the loop: once the limit is reached nothing else can fork.
    script = 'last=; for i in $(seq 40); do sleep 3 & [ "$!" != "$last" ] && echo started; last=$!; done'
    proc = cli("run", "--rm", "--rootfs", str(busybox_rootfs), "--pids-limit", "10", "--", "sh", "-c", script)
    started = proc.stdout.count("started")
    assert 1 <= started < 10, proc  # sh itself and the $(seq) subshell count too
    assert "fork" in proc.stderr, proc.stderr


def test_network_has_only_loopback(cli, busybox_rootfs: Path) -> None:
    out = sh(cli, "ls /sys/class/net; ip -o link; ip -o addr", "--rootfs", str(busybox_rootfs)).stdout
    assert out.split()[0] == "lo" and "eth" not in out and "veth" not in out
    assert "127.0.0.1" in out and "UP" in out or "LOOPBACK,UP" in out


def test_exit_codes_follow_docker(cli, busybox_rootfs: Path) -> None:
    rf = ("--rootfs", str(busybox_rootfs))
    assert cli("run", "--rm", *rf, "--", "sh", "-c", "exit 3").returncode == 3
    nf = cli("run", "--rm", *rf, "--", "/no/such/program")
    assert nf.returncode == 127 and "not found" in nf.stderr
    ne = cli("run", "--rm", *rf, "--", "/etc/passwd")
    assert ne.returncode == 126 and "cannot execute" in ne.stderr
    # A signal ends the command with 128+N (PID 1 ignores it from inside, so the grandchild execs it).
    assert cli("run", "--rm", *rf, "--", "sh", "-c", "sh -c 'kill -TERM $$'; exit $?").returncode == 143


def test_pipes_without_a_terminal(cli) -> None:
    proc = cli("run", "--rm", "--", "cat", input="hi\n")
    assert proc.returncode == 0 and proc.stdout == "hi\n"
    big = "x" * 300_000 + "\n"
    assert cli("run", "--rm", "--", "cat", input=big).stdout == big


def test_environment_and_workdir(cli, tmp_path: Path) -> None:
    work = tmp_path / "work"
    out = cli("run", "--rm", "-e", "FOO=bar baz", "-d", str(work), "--", "sh", "-c", 'echo "$FOO"; pwd; echo hi > f',
              check_rc=0).stdout
    assert out.splitlines() == ["bar baz", str(work)]
    assert not work.exists()  # created by rustainer, so removed with the container


def test_existing_directory_is_never_deleted(cli, tmp_path: Path) -> None:
    work = tmp_path / "mine"
    work.mkdir()
    (work / "keep.txt").write_text("precious")
    cli("run", "--rm", "-d", str(work), "--", "sh", "-c", "echo more > new.txt", check_rc=0)
    assert (work / "keep.txt").read_text() == "precious"
    assert (work / "new.txt").read_text() == "more\n"


def test_two_roots_do_not_interfere(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from helpers import CLI

    procs = []
    for i in range(2):
        env = dict(os.environ, RUSTAINER_ROOT=str(tmp_path / f"root{i}"))
        procs.append(subprocess.Popen([*CLI, "run", "--rm", "--name", "same", "--", "sh", "-c", "sleep 0.5; hostname"],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      stdin=subprocess.DEVNULL))
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0 and out.strip() == "same", err


def test_kept_container_is_listed_and_removed(cli, rroot: Path) -> None:
    cli("run", "--name", "keeper", "--", "true", check_rc=0)
    out = cli("ps", "-a", check_rc=0).stdout
    assert "keeper" in out and "exited (0)" in out
    assert "keeper" not in cli("ps", check_rc=0).stdout
    dup = cli("run", "--name", "keeper", "--", "true")
    assert dup.returncode == 125 and "already in use" in dup.stderr
    cli("rm", "keeper", check_rc=0)
    assert "keeper" not in cli("ps", "-a", check_rc=0).stdout
    assert os.listdir(rroot / "containers") == []


def test_no_signal_is_ignored_or_blocked_inside(cli) -> None:
    # Python ignores SIGPIPE; an ignored disposition would survive exec into the container.
    out = cli("run", "--rm", "--", "sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; yes | head -1",
              check_rc=0).stdout.split()
    assert out == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000", "y"]
