"""Corpus recording (real programs in real ptys), generated traffic, and tmux as a reference terminal.

Shared by the integration tests and tests/bench/bench_terminal.py.  Recordings are cached under
tests/.corpus-cache/ (git-ignored); nothing here is committed as a binary.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

COLUMNS, LINES = 120, 40
REPO = Path(__file__).resolve().parents[3]
CACHE = REPO / "tests" / ".corpus-cache"


# -- generated traffic -------------------------------------------------------------------------
def gen_plain(size: int) -> bytes:
    """What ``seq`` prints through a pty."""
    out, i, total = [], 1, 0
    while total < size:
        line = b"%d\r\n" % i
        out.append(line)
        total += len(line)
        i += 1
    return b"".join(out)


def gen_ansi(size: int, seed: int = 1) -> bytes:
    """Coloured ``ls -lR``-like output: long lines with a few SGR runs each."""
    rng = random.Random(seed)
    colours = [b"\x1b[0m", b"\x1b[1;34m", b"\x1b[1;32m", b"\x1b[1;36m", b"\x1b[01;31m", b"\x1b[38;5;208m"]
    out, total, n = [], 0, 0
    while total < size:
        n += 1
        if n % 40 == 0:
            line = b"\r\n/usr/share/doc/package-%d:\r\ntotal %d\r\n" % (n, rng.randint(1, 999))
        else:
            name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz-_.") for _ in range(rng.randint(4, 30)))
            line = b"%s %3d root     root     %8d Jan %2d %02d:%02d %s%s\x1b[0m\r\n" % (
                rng.choice([b"-rw-r--r--", b"drwxr-xr-x", b"lrwxrwxrwx"]), rng.randint(1, 9),
                rng.randint(0, 10**7), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
                rng.choice(colours), name.encode())
        out.append(line)
        total += len(line)
    return b"".join(out)


def gen_redraw(size: int, seed: int = 2, columns: int = COLUMNS, lines: int = LINES) -> bytes:
    """htop-like full-screen redraws: cursor addressing, colour changes, bars, erase-to-end."""
    rng = random.Random(seed)
    out, total = [b"\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"], 0
    while total < size:
        frame = [b"\x1b[H"]
        for cpu in range(4):
            used = rng.randint(0, 60)
            frame.append(b"\x1b[%d;1H\x1b[0m%3d\x1b[1;30m[\x1b[32m%s\x1b[31m%s\x1b[0m%s\x1b[1;30m%5.1f%%]\x1b[0m\x1b[K" % (
                cpu + 1, cpu, b"|" * (used // 2), b"|" * (used - used // 2), b" " * (60 - used), used / 0.6))
        frame.append(b"\x1b[6;1H\x1b[30;46m  PID USER      PRI  NI  VIRT   RES   SHR S CPU% MEM%   TIME+  Command" + b" " * (columns - 74) + b"\x1b[0m")
        for row in range(7, lines):
            pid = rng.randint(1, 40000)
            frame.append(b"\x1b[%d;1H%s%5d root       20   0 %5dM %5dM %5dM S %4.1f %4.1f  0:%02d.%02d \x1b[1m%s\x1b[0m\x1b[K" % (
                row, b"\x1b[30;42m" if row == 7 else b"", pid, rng.randint(1, 999), rng.randint(1, 999),
                rng.randint(1, 999), rng.random() * 100, rng.random() * 100, rng.randint(0, 59), rng.randint(0, 99),
                rng.choice([b"/usr/bin/python3 -m rustainer", b"sshd: root@pts/0", b"htop", b"/sbin/init"])))
        frame.append(b"\x1b[%d;1H\x1b[30;46mF1\x1b[0mHelp  \x1b[30;46mF10\x1b[0mQuit\x1b[K" % lines)
        chunk = b"".join(frame)
        out.append(chunk)
        total += len(chunk)
    return b"".join(out)


# -- recording real programs -------------------------------------------------------------------
def busybox() -> str | None:
    return shutil.which("busybox")


def record(argv: list[str], keys: list[bytes] | None = None, columns: int = COLUMNS, lines: int = LINES,
           env: dict[str, str] | None = None, deadline: float = 30.0, cwd: str | None = None) -> bytes:
    """Run ``argv`` in a fresh pty and return every byte it wrote; ``keys`` are typed one group at
    a time, each once the program has gone quiet (a poll with a deadline, not a fixed sleep)."""
    import pexpect

    full_env = {"PATH": "/usr/bin:/bin", "TERM": "xterm", "HOME": "/tmp", "LANG": "C.UTF-8"}
    full_env.update(env or {})
    child = pexpect.spawn(argv[0], argv[1:], env=full_env, dimensions=(lines, columns), cwd=cwd)
    chunks: list[bytes] = []
    end = time.monotonic() + deadline

    def drain(quiet: float) -> bool:
        """Read until ``quiet`` seconds pass without output; False once the program exited."""
        while time.monotonic() < end:
            try:
                chunks.append(child.read_nonblocking(65536, timeout=quiet))
            except pexpect.TIMEOUT:
                return True
            except pexpect.EOF:
                return False
        return False

    try:
        drain(0.3)
        for key in keys or []:
            child.send(key)
            if not drain(0.2):
                break
        while time.monotonic() < end and drain(1.0):
            pass
    finally:
        child.close(force=True)
    return b"".join(chunks)


def _text_file(path: Path) -> Path:
    path.write_text("".join(f"line {i:03d}: the quick brown fox jumps over the lazy dog {'#' * (i % 70)}\n"
                            for i in range(200)))
    return path


def corpus(cache: Path = CACHE) -> dict[str, bytes]:
    """Record (or reuse) the corpus from busybox programs; empty when busybox is absent."""
    bb = busybox()
    if bb is None:
        return {}
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rustainer-corpus-"))
    try:
        text = _text_file(work / "sample.txt")
        recipes: dict[str, Callable[[], bytes]] = {
            "seq": lambda: record([bb, "seq", "1", "30000"]),
            "ls-color": lambda: record([bb, "ls", "--color=always", "-lR", "/usr/share/doc"]),
            "sh-session": lambda: record([bb, "sh", "-i"], env={"PS1": "$ ", "ENV": ""}, keys=[
                b"echo hello world\r", b"printf '\\033[1;31mred\\033[0m plain\\n'\r",
                b"for i in 1 2 3 4 5; do echo line $i; done\r", b"ls -l " + str(work).encode() + b"\r",
                b"printf 'wide \\344\\270\\255\\346\\226\\207 done\\n'\r", b"exit\r"]),
            "top": lambda: record([bb, "top", "-d", "1", "-n", "2"]),
            "less": lambda: record([bb, "less", str(text)], keys=[b" ", b" ", b"b", b"G", b"g", b"/fox\r", b"n", b"q"]),
            "vi": lambda: record([bb, "vi", str(text)], keys=[
                b"jjjjj", b"G", b"gg", b"/lazy\r", b"ihello \x1b", b"10j", b"dd", b"u", b"\x06", b":q!\r"]),
        }
        out = {}
        version = subprocess.run([bb], capture_output=True, text=True).stdout.splitlines()[0]
        tag = hashlib.sha1(f"{version} {COLUMNS}x{LINES} v1".encode()).hexdigest()[:10]
        for name, make in recipes.items():
            path = cache / f"{name}-{tag}.bin"
            if not path.exists() or path.stat().st_size == 0:
                data = make()
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(data)
                tmp.replace(path)
            out[name] = path.read_bytes()
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- tmux as the reference terminal ------------------------------------------------------------
class Tmux:
    """A private tmux server (own socket, no config); never touches the user's default server."""

    def __init__(self, tmux: str, socket: Path) -> None:
        self.tmux = tmux
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> str:
        res = subprocess.run([self.tmux, "-S", str(self.socket), "-f", "/dev/null", *args],
                             capture_output=True, text=True, timeout=30)
        if check and res.returncode != 0:
            raise RuntimeError(f"tmux {args}: {res.stderr}")
        return res.stdout

    def consume(self, data: bytes, columns: int = COLUMNS, lines: int = LINES, deadline: float = 60.0) -> float:
        """Let a fresh pane parse ``data``; returns the seconds from go to fully parsed."""
        name = "s" + uuid.uuid4().hex[:8]
        workdir = Path(tempfile.mkdtemp(prefix="rustainer-tmux-"))
        try:
            feed = workdir / "feed.bin"
            feed.write_bytes(data)
            marker = "done-" + name
            script = workdir / "run.sh"
            script.write_text(
                "stty raw -echo\n"
                f"'{self.tmux}' -S '{self.socket}' wait-for go-{name}\n"
                f"cat '{feed}'\n"
                f"printf '\\033]2;{marker}\\007'\n"
                "exec sleep 100000\n")
            self.run("new-session", "-d", "-s", name, "-x", str(columns), "-y", str(lines), f"sh {script}")
            self.run("set-option", "-t", name, "status", "off")
            start = time.monotonic()
            self.run("wait-for", "-S", f"go-{name}")
            end = start + deadline
            while time.monotonic() < end:
                if self.run("display-message", "-p", "-t", name, "#{pane_title}").strip() == marker:
                    elapsed = time.monotonic() - start
                    self.session = name
                    return elapsed
                time.sleep(0.01)
            raise TimeoutError("tmux did not finish parsing")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def capture(self) -> list[str]:
        out = self.run("capture-pane", "-p", "-t", self.session)
        return out.split("\n")[:-1] if out.endswith("\n") else out.split("\n")

    def cursor(self) -> tuple[int, int]:
        x, y = self.run("display-message", "-p", "-t", self.session, "#{cursor_x} #{cursor_y}").split()
        return int(x), int(y)

    def kill_session(self) -> None:
        self.run("kill-session", "-t", self.session, check=False)


@contextmanager
def tmux_server() -> Iterator[Tmux]:
    exe = shutil.which("tmux")
    if exe is None:
        raise FileNotFoundError("tmux")
    sockdir = Path(tempfile.mkdtemp(prefix="rustainer-tmux-sock-"))
    server = Tmux(exe, sockdir / "sock")
    try:
        yield server
    finally:
        server.run("kill-server", check=False)
        shutil.rmtree(sockdir, ignore_errors=True)


def tmux_display(server: Tmux, data: bytes, columns: int = COLUMNS, lines: int = LINES) -> tuple[list[str], tuple[int, int]]:
    server.consume(data, columns, lines)
    try:
        text = server.capture()
        cursor = server.cursor()
    finally:
        server.kill_session()
    return [line.rstrip() for line in text] + [""] * (lines - len(text)), cursor


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")
