"""A host without /etc/hosts (a minimal chroot, an image used as a host) still gives every container
on a bridge network its /etc/hosts (issue 14). The CLI runs in a private mount namespace where a
copy of the host's /etc without ``hosts`` is bound over /etc: the real host's /etc is never touched,
and the copy must not be written either."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import CLI

pytestmark = pytest.mark.root


@pytest.fixture
def etc_without_hosts(tmp_path: Path) -> Path:
    copy = tmp_path / "etc"
    shutil.copytree("/etc", copy, symlinks=True, ignore_dangling_symlinks=True,
                    ignore=shutil.ignore_patterns("hosts"), dirs_exist_ok=False)
    assert not os.path.lexists(copy / "hosts")
    return copy


def in_private_etc(etc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cli = " ".join(shlex.quote(a) for a in (*CLI, *args))
    script = f"mount --bind {shlex.quote(str(etc))} /etc && exec {cli}"
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("with_hosts", [False, True], ids=["host-without-hosts", "host-with-hosts"])
def test_a_bridged_container_gets_its_hosts_file(cli, rroot: Path, etc_without_hosts: Path,  # type: ignore[no-untyped-def]
                                                 with_hosts: bool) -> None:
    etc = etc_without_hosts
    if with_hosts:
        (etc / "hosts").write_text("127.0.0.1 localhost\n")
    before = sorted(os.listdir(etc))
    # ahostsv4: `getent hosts` asks for an IPv6 address first, which the hosts file lacks, and so
    # waited for the host's DNS servers (10 s here, unreachable) before the IPv4 answer
    script = ("cat /etc/hosts; echo resolved: $(getent ahostsv4 web); "
              "touch /etc/new 2>/dev/null && echo etc-writable || echo etc-read-only; "
              "test -e /etc/shadow && test ! -s /etc/shadow && echo shadow-masked")
    proc = in_private_etc(etc, "run", "--rm", "--name", "web", "--network", "bridge", "--", "sh", "-c", script)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "resolved: 10." in out and " web" in out.split("resolved:")[1], out
    assert "etc-read-only" in out, out
    if os.path.exists("/etc/shadow"):
        assert "shadow-masked" in out, out
    assert sorted(os.listdir(etc)) == before  # the host's (copied) /etc was never written
    assert cli("ps", "-a", check_rc=0).stdout.count("\n") == 1
