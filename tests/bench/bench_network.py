"""Start latency of a bridge-networked container: ``run --rm --network bridge -- true`` against
``--network none`` (and with one published port, and on a network kept up by another container),
measured interleaved in the same run; the figure that counts is the ratio of medians to ``none``.

Run by hand as root (not collected by pytest):  .venv/bin/python tests/bench/bench_network.py [N] [--baseline VENV]
``--baseline VENV`` (repeatable) adds ``none`` and ``bridge`` for another install (say a venv of an
earlier commit) in the same interleaved run, each compared with its own ``none``.

The ``bridge`` cases are the network's only member. A network lingers for a grace period after its
last member ended (``RUSTAINER_NETWORK_LINGER``, default 2 s; see backend/network/linger.py), so:
``bridge`` (back to back) finds the network the previous run left lingering, as a script running
containers one after another does; ``bridge, cold`` waits (untimed) until the network is down before
each run, so every run brings the bridge and table up (the worst case for the command; the teardown
happens later, in the lingering process); ``bridge, linger 0`` takes the network down in the command
itself, as before lingering existed. ``busy`` joins a network a detached container keeps up.
Goal (issue 14): bridge at most 1.5x none.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keep_busy_up(rustainer: list[str], env: dict[str, str]) -> None:
    """Network ``busy`` with a detached member. Its subnet is random in 10.240-10.254: other roots on
    the machine (tests, other benchmarks) pick theirs from 10.213 upward and may take it meanwhile."""
    import random

    for _ in range(5):
        subnet = f"10.{random.randint(240, 254)}.{random.randint(0, 255)}.0/24"
        subprocess.run([*rustainer, "network", "rm", "busy"], env=env, capture_output=True)
        if subprocess.run([*rustainer, "network", "create", "--subnet", subnet, "busy"], env=env,
                          capture_output=True).returncode != 0:
            continue
        if subprocess.run([*rustainer, "run", "--detach", "--name", "keeper", "--network", "busy", "--", "sleep",
                           "1000000"], env=env, capture_output=True).returncode == 0:
            return
    sys.exit("could not bring network busy up")


def wait_until_down(root: str) -> None:
    """Until the default network of ``root`` has no bridge (its lingering process took it down)."""
    from rustainer.backend.network import ipam

    bridge = f"/sys/class/net/{ipam.bridge_name(root, 'bridge')}"
    deadline = time.monotonic() + 10
    while os.path.exists(bridge):
        if time.monotonic() > deadline:
            sys.exit(f"{bridge} is still up 10 s after its last member ended")
        time.sleep(0.02)


def main() -> None:
    args = sys.argv[1:]
    baselines: list[str] = []
    while "--baseline" in args:  # another install (a venv), measured in the same interleaved run
        at = args.index("--baseline")
        baselines.append(args[at + 1])
        del args[at:at + 2]
    n = int(args[0]) if args else 30
    # the script users run (it leaves through os._exit), not ``python -m`` (runpy, interpreter shutdown)
    rustainer = [os.path.join(os.path.dirname(sys.executable), "rustainer")]
    none = "run --rm --network none -- true"
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, RUSTAINER_ROOT=os.path.join(tmp, "state"))
        port = str(free_port())
        # name -> (argv, environment, the name of the case it is compared with)
        cold_env = dict(os.environ, RUSTAINER_ROOT=os.path.join(tmp, "cold"), RUSTAINER_NETWORK_LINGER="0.1")
        eager_env = dict(os.environ, RUSTAINER_ROOT=os.path.join(tmp, "eager"), RUSTAINER_NETWORK_LINGER="0")
        bridged = ["run", "--rm", "--network", "bridge", "--", "true"]
        cases: dict[str, tuple[list[str], dict[str, str], str]] = {
            none: ([*rustainer, "run", "--rm", "--network", "none", "--", "true"], env, none),
            "run --rm --network bridge -- true (back to back)": ([*rustainer, *bridged], env, none),
            "run --rm --network bridge -- true (cold)": ([*rustainer, *bridged], cold_env, none),
            "run --rm --network bridge -- true (linger 0)": ([*rustainer, *bridged], eager_env, none),
            "run --rm --network bridge -p PORT:80 -- true": (
                [*rustainer, "run", "--rm", "--network", "bridge", "-p", f"{port}:80", "--", "true"], env, none),
            "run --rm --network busy -- true (2nd member)": (
                [*rustainer, "run", "--rm", "--network", "busy", "--", "true"], env, none),
        }
        for i, venv in enumerate(baselines):
            other = [os.path.join(venv, "bin", "rustainer")]
            label = os.path.basename(os.path.dirname(os.path.abspath(venv))) or venv
            other_env = dict(os.environ, RUSTAINER_ROOT=os.path.join(tmp, f"baseline{i}"))
            other_none = f"{label}: {none}"
            cases[other_none] = ([*other, "run", "--rm", "--network", "none", "--", "true"], other_env, other_none)
            cases[f"{label}: run --rm --network bridge -- true"] = (
                [*other, "run", "--rm", "--network", "bridge", "--", "true"], other_env, other_none)
        samples: dict[str, list[float]] = {k: [] for k in cases}
        try:
            keep_busy_up(rustainer, env)
            for argv, case_env, _ in cases.values():  # warm the page cache
                timed(argv, case_env)
            for _ in range(n):
                for name, (argv, case_env, _) in cases.items():
                    # Before every case, not only the cold one: the cold network's teardown (0.1 s
                    # after its run, in its lingering process) deletes a bridge, which holds the
                    # kernel's rtnl lock through two RCU barriers (20-50 ms here) and so stalls
                    # any other case's netlink requests that it overlaps.
                    wait_until_down(cold_env["RUSTAINER_ROOT"])
                    samples[name].append(timed(argv, case_env))
        finally:
            subprocess.run([*rustainer, "rm", "-f", "keeper"], env=env, stdout=subprocess.DEVNULL)
            subprocess.run([*rustainer, "network", "rm", "busy"], env=env, stdout=subprocess.DEVNULL)
            from rustainer.backend.supervisor import zygote

            for _argv, case_env, _base in cases.values():  # the supervisors' launchers, before their roots go
                zygote.stop(case_env["RUSTAINER_ROOT"])
            for _argv, case_env, _base in cases.values():  # lingering networks, before their roots go
                wait_until_down(case_env["RUSTAINER_ROOT"])
    print(f"{'case':<60} {'median ms':>10} {'p90 ms':>8} {'x none':>8}  (ratio of medians, same run)")
    for name, xs in samples.items():
        med = statistics.median(xs)
        p90 = sorted(xs)[int(len(xs) * 0.9) - 1]
        base = statistics.median(samples[cases[name][2]])
        print(f"{name:<60} {med * 1000:>10.1f} {p90 * 1000:>8.1f} {med / base:>8.2f}")


if __name__ == "__main__":
    main()
