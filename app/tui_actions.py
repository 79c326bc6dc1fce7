"""What the dashboard does to containers, always through the ``rustainer`` CLI in a subprocess.

Starting a container forks (and a supervisor double-forks); forking a process that runs Textual's
threads is unsafe, so the dashboard never calls the engine's start path in-process. Reading state
and cgroup counters is done in-process (no fork involved).
"""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from dataclasses import dataclass

from rustainer.backend.spec import ContainerSpec, format_cpus

CLI = (sys.executable, "-m", "rustainer.app.cli")


@dataclass(frozen=True)
class NewContainer:
    """The dialog's answer: already validated strings, ``None`` for "not given"."""

    name: str
    rootfs: str | None = None
    directory: str | None = None
    cpus: str | None = None
    memory: str | None = None
    cpu_quota: str | None = None
    pids_limit: str | None = None
    network: str | None = None

    def run_args(self) -> list[str]:
        args = ["run", "--detach", "--name", self.name]
        for flag, value in (("--rootfs", self.rootfs), ("-d", self.directory), ("-c", self.cpus),
                            ("-m", self.memory), ("--cpu-quota", self.cpu_quota),
                            ("--pids-limit", self.pids_limit), ("--network", self.network)):
            if value is not None:
                args += [flag, value]
        return args


def run_args_from_spec(spec: ContainerSpec) -> list[str]:
    """``run --detach`` arguments that recreate a container from its stored spec (restart)."""
    r = spec.resources
    args = ["run", "--detach", "--name", spec.name]
    if spec.rootfs:
        args += ["--rootfs", spec.rootfs]
    if spec.directory:
        args += ["-d", spec.directory]
    if r.cpus:
        args += ["-c", format_cpus(r.cpus)]
    if r.memory is not None:
        args += ["-m", str(r.memory)]
    if r.cpu_quota is not None:
        args += ["--cpu-quota", repr(r.cpu_quota)]
    if r.pids_limit is not None:
        args += ["--pids-limit", str(r.pids_limit)]
    if spec.hostname:
        args += ["--hostname", spec.hostname]
    for key, value in spec.env:
        args += ["-e", f"{key}={value}"]
    if spec.network != "none":
        args += ["--network", spec.network]
    for host_ip, host_port, container_port, proto in spec.publish:
        args += ["-p", f"{host_ip}:{host_port}:{container_port}/{proto}"]
    if not spec.nat:
        args.append("--no-nat")
    if spec.cgroup_driver:
        args += ["--cgroup-driver", spec.cgroup_driver]
    if spec.cgroup_parent:
        args += ["--cgroup-parent", spec.cgroup_parent]
    if not spec.init:
        args.append("--no-init")
    if spec.command:
        args += ["--", *spec.command]
    return args


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def error(self) -> str:
        """The CLI's one-line error, without its ``rustainer:`` prefix."""
        text = (self.stderr.strip().splitlines() or [f"exit status {self.code}"])[-1]
        return text.removeprefix("rustainer: ")


async def run_cli(*args: str, root: str, timeout: float = 60.0) -> CliResult:
    """Run one CLI verb against ``root`` without blocking the event loop."""
    env = dict(os.environ, RUSTAINER_ROOT=root)
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return CliResult(124, "", f"rustainer {args[0]} did not finish in {timeout:.0f} s")
    return CliResult(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))


def spawn_exec_shell(name: str, root: str, rows: int, cols: int) -> tuple[subprocess.Popen[bytes], int]:
    """``rustainer exec -it NAME sh`` on a fresh local pty; returns the process and the pty master.

    The CLI runs in its own session so the dashboard's terminal never becomes its controlling tty.
    """
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, RUSTAINER_ROOT=root, TERM=os.environ.get("TERM", "xterm-256color"))
        proc = subprocess.Popen([*CLI, "exec", "-it", name, "sh"], stdin=slave, stdout=slave, stderr=slave,
                                env=env, start_new_session=True, close_fds=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_inheritable(master, False)
    return proc, master
