"""syscalls.spawn: posix_spawn with every disposition reset (what the init starts commands with)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rustainer.backend.linux import syscalls


def status_fields(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_the_spawned_process_ignores_and_blocks_nothing_and_leads_a_session() -> None:
    # Run in a child interpreter that ignores and blocks signals the way a supervisor or Python does.
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path[:0] = {sys.path!r}
        from rustainer.backend.linux import syscalls
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGWINCH])
        pid = syscalls.spawn("/bin/sh", ["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; "
                                         "cut -d' ' -f6 /proc/self/stat; echo $$"], {{"PATH": "/usr/bin:/bin"}})
        print(pid, flush=True)
        os.waitpid(pid, 0)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    pid, rest = out[0], out[1:]
    # glibc's own posix_spawn would leave 32 and 33 ignored (SigIgn 0000000180000000)
    assert rest[:4] == ["SigIgn:", "0000000000000000", "SigBlk:", "0000000000000000"] or \
        rest[:4] == ["SigBlk:", "0000000000000000", "SigIgn:", "0000000000000000"], out
    session, me = rest[4], rest[5]
    assert me == pid and session == pid  # leads its own session


def test_a_missing_program_raises_with_its_errno() -> None:
    with pytest.raises(OSError) as err:
        syscalls.spawn("/nonexistent/prog", ["prog"], {})
    assert err.value.errno == 2


def test_the_terminal_becomes_the_controlling_one(tmp_path: Path) -> None:
    master, slave = os.openpty()
    out = tmp_path / "out"
    try:
        pid = syscalls.spawn("/bin/sh", ["sh", "-c", f"{{ tty; cut -d' ' -f7 /proc/self/stat; }} > {out}"],
                             {"PATH": "/usr/bin:/bin"}, terminal=os.ttyname(slave))
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        name, tty_nr = out.read_text().split()
        assert name == os.ttyname(slave) and int(tty_nr) == os.stat(slave).st_rdev
    finally:
        os.close(master)
        os.close(slave)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # ours untouched
