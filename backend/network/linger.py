"""A network's bridge and nftables table outlive its last member by a few seconds, then a detached
process takes them down.

Why: deleting a bridge makes the kernel wait twice for every pending RCU callback
(``rcu_barrier()`` in the bridge's multicast clean-up and again in ``netdev_run_todo``), 20-50 ms
here - more than the whole start of a container without a network. Taken down by the last member's
own ``run --rm`` or ``stop``, that wait was the largest part of a bridged container's cost, and a
script starting containers one after another paid it, and the bring-up, every time. Lingering, the
next member within the grace period finds the network up (as docker's ``docker0`` always is), and
an idle network still goes away on its own (as podman's does), in a process nobody waits for.

The grace period is ``RUSTAINER_NETWORK_LINGER`` seconds (default 2); ``0`` takes the network down
in the leaving command itself, as before. A failure path (a start rolled back) never lingers: its
undo is complete when the command returns. Should the lingering process be killed, the network's
record still says when it went idle, and the next ``network ls``/``inspect``/``rm`` or member to
leave takes a network idle for longer than its grace period down (see ``manager.stale``).
"""

from __future__ import annotations

import os

LINGER_ENV = "RUSTAINER_NETWORK_LINGER"
DEFAULT_SECONDS = 2.0
MAX_SECONDS = 3600.0


def seconds() -> float:
    """The grace period; a value that is not a number from 0 to an hour means the default (the
    setting is read where a container ends, far from any command line that could report it)."""
    text = os.environ.get(LINGER_ENV)
    if text is None:
        return DEFAULT_SECONDS
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_SECONDS
    return value if 0 <= value <= MAX_SECONDS else DEFAULT_SECONDS


def schedule(root: str, name: str, grace: float) -> None:
    """Start the process that takes network ``name`` down after ``grace`` seconds unless a member
    joined (or left again, starting a grace period of its own) meanwhile. In a session of its own,
    so no terminal's hang-up ends it; it keeps no descriptor of the caller's (a caller reading our
    output to its end must not wait for it). Forked once and not waited for (a double fork, to
    spare the caller a zombie, cost three times as much: ~1.5 ms against ~0.5): the callers, the
    CLI and a supervisor, exit right after a container's end, and init reaps it then."""
    if os.fork() == 0:  # pragma: no cover - the lingering process
        _linger(root, name, grace)


def _linger(root: str, name: str, grace: float) -> None:  # pragma: no cover - a detached process
    try:
        _detach()
        import time

        time.sleep(grace)
        from rustainer.backend.network.manager import tear_down_if_idle

        tear_down_if_idle(root, name, grace)
    except BaseException:  # noqa: BLE001, S110 - nobody to tell: the next command reconciles
        pass
    finally:
        os._exit(0)


def _detach() -> None:
    from rustainer.backend.linux import signals, syscalls

    os.setsid()
    for signum in (signals.SIGHUP, signals.SIGINT, signals.SIGTERM, signals.SIGQUIT):
        signals.set_handler(signum, signals.SIG_DFL)  # the caller's (forwarding to a container) are void here
    signals.set_mask(signals.SIG_SETMASK, ())
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(3, 1 << 20)
    os.chdir("/")
    syscalls.set_process_name(b"rustainer-linger")
