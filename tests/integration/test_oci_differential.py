"""rustainer-oci against runc: the same bundles, run by each (``run --bundle B ID``), must show the
same thing from inside (identity, capabilities, namespaces, mounts, /dev, limits, hostname, exit
status), and the bad ones must be refused by both, leaving nothing behind.

Namespace ids differ from run to run: they are compared as "the host's" or "new". Mount ids and
the order of sibling mounts are not compared; everything else in /proc/self/mountinfo is.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ocitools import (
    base_config,
    bundle,
    cgroup_dirs,
    cgroups_path,
    make_busybox_tree,
    oci_binary,
    remove_cgroup_dirs,
)

pytestmark = [pytest.mark.root, pytest.mark.slow]

PARENT = "ocitest-diff"
PROBE = ("hostname; id; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; "
         "for n in ipc mnt net pid uts cgroup; do echo ns $n $(readlink /proc/self/ns/$n); done; "
         "echo pid1 $(cat /proc/1/comm); pwd; ulimit -Sn; ulimit -Hn; ls /dev | tr '\\n' ' '; echo; "
         "for f in memory/memory.limit_in_bytes cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us cpu/cpu.shares "
         "pids/pids.max; do echo $f $(cat /sys/fs/cgroup/$f 2>&1); done; "
         "echo env $FOO; echo oom $(cat /proc/self/oom_score_adj); echo umask $(umask); touch /probe-write 2>/dev/null && echo root-writable || echo root-readonly; "
         "mkdir /tmp/probe-dir 2>&1 | tail -1; cat /proc/sys/net/ipv4/ip_forward; cat /proc/self/mountinfo; ")


def runtime_run(binary: str, folder: Path, cid: str, state_root: Path,
                extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, "--root", str(state_root), "run", *extra, "--bundle", str(folder), cid],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def normalize(out: str) -> list[str]:
    host_ns = {os.readlink(f"/proc/self/ns/{n}") for n in ("ipc", "mnt", "net", "pid", "uts", "cgroup")}
    lines = []
    mounts = []
    for line in out.splitlines():
        if line.startswith("ns "):
            _, name, value = line.split(" ", 2)
            lines.append(f"ns {name} {'host' if value in host_ns else 'new'}")
        elif line[:1].isdigit() and " - " in line:
            fields = line.split()
            mounts.append(" ".join(fields[3:]))  # root, mount point, options, ... (no ids, no device)
        else:
            lines.append(line)
    return lines + sorted(mounts)


def edit(path: str, value: object) -> Callable[[dict], None]:  # type: ignore[type-arg]
    """Set ``path`` (dotted keys) in the config."""
    def apply(cfg: dict) -> None:  # type: ignore[type-arg]
        *keys, last = path.split(".")
        node = cfg
        for key in keys:
            node = node.setdefault(key, {})
        node[last] = value
    return apply


def add_mount(mount: dict) -> Callable[[dict], None]:  # type: ignore[type-arg]
    return lambda cfg: cfg["mounts"].append(mount)


def drop_namespace(kind: str) -> Callable[[dict], None]:  # type: ignore[type-arg]
    def apply(cfg: dict) -> None:  # type: ignore[type-arg]
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != kind]
    return apply


CAPS = ["CAP_CHOWN", "CAP_NET_RAW", "CAP_SYS_ADMIN"]
CASES: dict[str, list[Callable[[dict], None]]] = {  # type: ignore[type-arg]
    "default": [],
    "user-env-cwd-hostname": [edit("process.user", {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}),
                              edit("process.cwd", "/tmp/work"), edit("hostname", "diffhost"),
                              edit("process.oomScoreAdj", 123),
                              lambda c: c["process"]["env"].append("FOO=bar baz")],
    "capabilities": [edit("process.capabilities", {k: CAPS for k in ("bounding", "effective", "permitted",
                                                                     "inheritable")}),
                     edit("process.noNewPrivileges", False)],
    "host-network-and-uts": [drop_namespace("network"), drop_namespace("uts"), lambda c: c.pop("hostname")],
    "joined-by-path": [drop_namespace("network"), drop_namespace("ipc"),
                       lambda c: c["linux"]["namespaces"].extend([{"type": "network", "path": "/proc/self/ns/net"},
                                                                  {"type": "ipc", "path": "/proc/self/ns/ipc"}])],
    "limits": [edit("linux.resources.memory", {"limit": 67108864}),
               edit("linux.resources.cpu", {"quota": 25000, "period": 50000, "shares": 512}),
               edit("linux.resources.pids", {"limit": 20}),
               edit("process.rlimits", [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}])],
    "writable-root-and-mounts": [edit("root.readonly", False),
                                 add_mount({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                            "options": ["nosuid", "nodev", "mode=1777", "size=1m"]}),
                                 add_mount({"destination": "/mnt/host-etc", "type": "bind", "source": "/etc",
                                            "options": ["rbind", "ro", "nosuid", "rprivate"]})],
    "masked-readonly-sysctl": [edit("linux.maskedPaths", ["/proc/cpuinfo", "/sys/kernel"]),
                               edit("linux.readonlyPaths", ["/proc/sys", "/etc"]),
                               edit("linux.sysctl", {"net.ipv4.ip_forward": "1"})],
    "seccomp": [edit("linux.seccomp", {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                     {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"},
                     {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                      "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]})],
    "pid1-survives-its-own-kill": [],
    "no-pivot": [],  # run --no-pivot: the root moved over / and chrooted into
}
BAD: dict[str, list[Callable[[dict], None]]] = {  # type: ignore[type-arg]
    "missing-command": [edit("process.args", ["/no/such/command"])],
    "empty-args": [edit("process.args", [])],
    "missing-root": [edit("root.path", "/no/such/rootfs")],
    "unknown-namespace": [lambda c: c["linux"]["namespaces"].append({"type": "bogus"})],
    "missing-bind-source": [add_mount({"destination": "/mnt", "type": "bind", "source": "/no/such/dir",
                                       "options": ["rbind"]})],
    "relative-cwd": [edit("process.cwd", "tmp")],
}


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("runc") is None and not os.path.exists("/usr/sbin/runc"):
        pytest.skip("runc is not installed (the test set-up command installs it)")
    root = tmp_path_factory.mktemp("diff-rootfs")
    make_busybox_tree(root)
    root.chmod(0o755)  # mktemp's 0700 would keep a non-root user out of "/"
    (root / "tmp" / "work").mkdir()
    return root


@pytest.fixture
def runtimes(tmp_path: Path) -> Iterator[dict[str, str]]:
    runc = shutil.which("runc") or "/usr/sbin/runc"
    yield {"runc": runc, "rustainer-oci": oci_binary()}
    remove_cgroup_dirs(PARENT)
    assert not cgroup_dirs(PARENT)


def run_both(case: str, mods: list[Callable[[dict], None]], rootfs: Path, tmp_path: Path,  # type: ignore[type-arg]
             runtimes: dict[str, str], args: list[str]) -> dict[str, subprocess.CompletedProcess[str]]:
    results = {}
    for name, binary in runtimes.items():
        cfg = copy.deepcopy(base_config(rootfs, args, cgroups_path(PARENT, case)))
        for mod in mods:
            mod(cfg)
        folder = bundle(tmp_path / f"{name}-bundle", rootfs, cfg)
        state_root = tmp_path / f"{name}-state"
        results[name] = runtime_run(binary, folder, case, state_root, ("--no-pivot",) if case == "no-pivot" else ())
        assert not list(state_root.glob("*")), f"{name} left its state for {case}"
        assert not [p for p in cgroup_dirs(PARENT) if p.endswith("/" + case)], f"{name} left the cgroup of {case}"
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_view_as_runc(case: str, rootfs: Path, tmp_path: Path, runtimes: dict[str, str]) -> None:
    args = ["sh", "-c", PROBE + "exit 3"]
    if case == "pid1-survives-its-own-kill":  # the kernel ignores a SIGKILL from inside to its PID 1
        args = ["sh", "-c", "kill -9 $$; echo alive; exit 4"]
    results = run_both(case, CASES[case], rootfs, tmp_path, runtimes, args)
    runc, ours = results["runc"], results["rustainer-oci"]
    assert runc.returncode == ours.returncode, (runc.stderr, ours.stderr)
    assert normalize(ours.stdout) == normalize(runc.stdout)
    assert ours.returncode == (4 if case == "pid1-survives-its-own-kill" else 3), ours.stderr
    expected = {"user-env-cwd-hostname": ["diffhost", "uid=1000 gid=1000 groups=10,20", "/tmp/work", "env bar baz",
                                          "oom 123"],
                "seccomp": ["mkdir: can't create directory '/tmp/probe-dir': Permission denied"],
                "limits": ["memory/memory.limit_in_bytes 67108864", "cpu/cpu.cfs_quota_us 25000", "pids/pids.max 20"],
                "masked-readonly-sysctl": ["1"], "writable-root-and-mounts": ["root-writable"],
                "default": ["root-readonly", "runc"]}
    for line in expected.get(case, []):
        assert line in ours.stdout.splitlines(), (line, ours.stdout[:600])


def test_hooks_see_what_runc_hooks_see(rootfs: Path, tmp_path: Path, runtimes: dict[str, str]) -> None:
    """prestart, createRuntime, poststart and poststop each get the state on stdin: the same
    status, id and pid presence as runc gives them, in the same order."""
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\ncat >> \"$1\"; echo >> \"$1\"\n")
    hook.chmod(0o755)
    seen = {}
    for name in runtimes:
        log = tmp_path / f"{name}-hooks.log"
        hooks = {kind: [{"path": str(hook), "args": ["hook.sh", str(log)]}]
                 for kind in ("prestart", "createRuntime", "poststart", "poststop")}
        results = run_both("hooks", [edit("hooks", hooks)], rootfs, tmp_path, {name: runtimes[name]}, ["true"])
        assert results[name].returncode == 0, results[name].stderr
        import json

        states = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        seen[name] = [(s["id"], s["status"], s.get("pid", 0) > 0, s["bundle"].endswith("-bundle")) for s in states]
    assert seen["rustainer-oci"] == seen["runc"]
    assert len(seen["runc"]) == 4


@pytest.mark.parametrize("case", sorted(BAD))
def test_both_refuse(case: str, rootfs: Path, tmp_path: Path, runtimes: dict[str, str]) -> None:
    results = run_both(case, BAD[case], rootfs, tmp_path, runtimes, ["sh", "-c", "echo ran"])
    for name, proc in results.items():
        assert proc.returncode != 0, f"{name} accepted {case}"
        assert "ran" not in proc.stdout
    assert results["rustainer-oci"].stderr.startswith("rustainer-oci: ")


def test_command_line_edges(tmp_path: Path) -> None:
    """What go-runc relies on: errors as one line on stderr and a JSON line in --log, exit 1;
    unsupported commands say so; --version and features answer."""
    import json

    binary = oci_binary()
    log = tmp_path / "log.json"
    proc = subprocess.run([binary, "--root", str(tmp_path / "state"), "--log", str(log), "--log-format", "json",
                           "start", "nope"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1 and proc.stderr == "rustainer-oci: container nope does not exist\n"
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "container nope does not exist"
    for command in ("checkpoint", "restore"):
        proc = subprocess.run([binary, command, "x"], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "not supported" in proc.stderr
    assert subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.startswith("rustainer-oci version")
    features = json.loads(subprocess.run([binary, "features"], capture_output=True, text=True).stdout)
    assert "pid" in features["linux"]["namespaces"] and "SCMP_ACT_ERRNO" in features["linux"]["seccomp"]["actions"]


def test_preserve_fds_like_runc(rootfs: Path, tmp_path: Path, runtimes: dict[str, str]) -> None:
    """--preserve-fds 1: the caller's descriptor 3 reaches the command, nothing else does."""
    outputs = {}
    for name, binary in runtimes.items():
        cfg = base_config(rootfs, ["sh", "-c", "cat <&3; ls /proc/self/fd | wc -l"], cgroups_path(PARENT, "pfds"))
        folder = bundle(tmp_path / f"{name}-bundle", rootfs, cfg)
        r, w = os.pipe()
        os.write(w, b"through-fd-3\n")
        os.close(w)
        try:
            saved = os.dup(3)  # whatever this process holds as 3, put back afterwards
        except OSError:
            saved = -1
        os.dup2(r, 3)
        try:
            proc = subprocess.run([binary, "--root", str(tmp_path / f"{name}-state"), "run", "--preserve-fds", "1",
                                   "--bundle", str(folder), "pfds"], capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL, pass_fds=(3,))
        finally:
            if saved >= 0:
                os.dup2(saved, 3, inheritable=False)
                os.close(saved)
            else:
                os.close(3)
            if r != 3:
                os.close(r)
        assert proc.returncode == 0, proc.stderr
        outputs[name] = proc.stdout
    assert outputs["rustainer-oci"] == outputs["runc"]
    assert outputs["runc"].startswith("through-fd-3\n")
