"""rustainer-oci's pure parts: config.json parsing, cgroupsPath forms, the rootfs plan, seccomp
compilation (checked by running the BPF program in a tiny interpreter), and argument parsing."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

from rustainer.app.oci_cli import split_options
from rustainer.backend.cgroups.base import parse_proc_cgroup
from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.linux.seccomp_oci import Seccomp, SeccompArg, SeccompRule, compile_profile
from rustainer.backend.oci.cgroup import cgroup_path, expand_slice, open_cgroup
from rustainer.backend.oci.commands import parse_signal
from rustainer.backend.oci.config import parse
from rustainer.backend.oci.rootfs import late_ops, mount_ops


def minimal(**extra: object) -> dict:  # type: ignore[type-arg]
    cfg: dict = {"ociVersion": "1.0.2", "root": {"path": "rootfs"},  # type: ignore[type-arg]
                 "process": {"args": ["sh"], "cwd": "/"},
                 "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}}
    cfg.update(extra)
    return cfg


def test_parse_core_fields() -> None:
    cfg = parse(minimal(
        hostname="h", mounts=[{"destination": "/data", "type": "bind", "source": "/srv",
                               "options": ["rbind", "ro", "nosuid", "rprivate"]},
                              {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nodev", "mode=1777", "size=1m"]}],
        process={"args": ["sh", "-c", "x"], "env": ["A=1", "B=x=y"], "cwd": "/w", "terminal": True,
                 "user": {"uid": 5, "gid": 6, "additionalGids": [7]},
                 "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NOT_A_CAP"], "effective": ["CAP_KILL"]},
                 "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}], "noNewPrivileges": True,
                 "apparmorProfile": "p", "consoleSize": {"height": 24, "width": 80}, "oomScoreAdj": 100},
        linux={"namespaces": [{"type": "mount"}, {"type": "network", "path": "/proc/1/ns/net"}],
               "resources": {"memory": {"limit": 1 << 26}, "cpu": {"shares": 512, "quota": 5000, "period": 10000,
                                                                     "cpus": "0"}, "pids": {"limit": 9}},
               "cgroupsPath": "/a/b", "sysctl": {"net.ipv4.ip_forward": "1"},
               "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]}), "/bundle")
    assert cfg.root == "/bundle/rootfs" and cfg.hostname == "h"
    bind, tmp = cfg.mounts
    assert bind.bind and bind.flags & 1 and bind.flags & 2 and bind.flags & 16384 and bind.propagation == (1 << 18) | 16384
    assert tmp.flags == 4 and tmp.data == "mode=1777,size=1m"
    p = cfg.process
    assert p is not None and p.environ() == {"A": "1", "B": "x=y"} and (p.uid, p.gid, p.additional_gids) == (5, 6, (7,))
    assert p.capabilities is not None and p.capabilities.bounding == 1 and p.capabilities.effective == 1 << 5
    assert p.rlimits == ((7, 10, 20),) and p.console_size == (24, 80) and p.oom_score_adj == 100
    assert any("apparmor" in w.lower() for w in cfg.warnings) and any("CAP_NOT_A_CAP" in w for w in cfg.warnings)
    assert cfg.namespace("network") is not None and cfg.namespace("network").path == "/proc/1/ns/net"  # type: ignore[union-attr]
    r = cfg.resources
    assert (r.memory, r.cpu_shares, r.cpu_quota, r.cpu_period, r.cpus, r.pids) == (1 << 26, 512, 5000, 10000, "0", 9)
    assert cfg.sysctl == (("net.ipv4.ip_forward", "1"),)


@pytest.mark.parametrize("bad", [
    {"ociVersion": "0.9"},
    {"root": {}},
    {"process": {"args": []}},
    {"process": {"args": ["sh"], "cwd": "relative"}},
    {"linux": {"namespaces": [{"type": "bogus"}]}},
    {"linux": {"namespaces": [{"type": "user"}]}},
    {"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}},
    {"mounts": [{"destination": "relative", "type": "tmpfs"}]},
    {"mounts": [{"destination": "/x", "type": "weirdfs"}]},
    {"linux": {"seccomp": {"defaultAction": "SCMP_ACT_NOPE"}}},
    {"process": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_BOGUS"}]}},
])
def test_bad_configs_are_one_line_errors(bad: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidSpecError) as err:
        parse(minimal(**bad), "/b")
    assert "\n" not in str(err.value)


def test_cgroups_path_forms() -> None:
    assert cgroup_path("/default/x", "x", False) == "/default/x"
    assert cgroup_path("default/x", "x", False) == "default/x"  # beneath the runtime's own cgroup, as runc
    assert cgroup_path("./default//x", "x", False) == "default/x"
    assert cgroup_path(None, "x", False) == "x"
    assert cgroup_path("system.slice:docker:abc", "abc", True) == "/system.slice/docker-abc.scope"
    assert cgroup_path("a-b.slice:cri:c", "c", False) == "/a.slice/a-b.slice/cri-c.scope"
    assert expand_slice("-.slice") == ""
    with pytest.raises(InvalidSpecError):
        cgroup_path("/a/../b", "x", False)
    with pytest.raises(InvalidSpecError):
        cgroup_path("bad:form", "x", True)
    with pytest.raises(InvalidSpecError):
        cgroup_path("a/../../b", "x", False)


def test_a_relative_cgroups_path_nests_beneath_the_runtimes_own_cgroups(tmp_path: Path) -> None:
    """As runc places it, per hierarchy (the caller's cgroups differ between hierarchies: on the
    development VM it is at / for cpu but in /process_api/<id> for memory)."""
    for name in ("cpu", "memory", "pids", "systemd"):
        (tmp_path / name).mkdir()
    own = parse_proc_cgroup("5:memory:/process_api/abc\n4:cpu:/\n3:name=systemd:/user.slice/s.scope\n0::/top\n")
    v1 = open_cgroup("ns/c1", "c1", driver="v1", own=own, root=str(tmp_path))
    assert v1.paths() == {"cpu": f"{tmp_path}/cpu/ns/c1", "memory": f"{tmp_path}/memory/process_api/abc/ns/c1",
                          "pids": f"{tmp_path}/pids/ns/c1", "systemd": f"{tmp_path}/systemd/user.slice/s.scope/ns/c1"}
    v2 = open_cgroup("c2", "c2", driver="v2", own=own, root=str(tmp_path))
    assert v2.paths() == {"unified": f"{tmp_path}/top/c2"}
    absolute = open_cgroup("/ns/c3", "c3", driver="v1", own=own, root=str(tmp_path))
    assert absolute.paths()["memory"] == f"{tmp_path}/memory/ns/c3"  # from the hierarchy's root


def test_rootfs_plan_order() -> None:
    cfg = parse(minimal(mounts=[{"destination": "/proc", "type": "proc", "source": "proc"},
                                {"destination": "/etc/x", "type": "bind", "source": "/etc/hostname"}],
                        linux={"namespaces": [{"type": "mount"}], "maskedPaths": ["/proc/kcore"],
                               "readonlyPaths": ["/proc/sys"]}), "/b")
    ops = mount_ops(cfg, "/b", {}, is_dir=lambda p: False)
    assert ops[0].action == "mount" and ops[0].target == "/" and ops[0].source == "/b/rootfs"
    assert [(o.action, o.target) for o in ops[1:5]] == [("mkdir", "/proc"), ("mount", "/proc"), ("touch", "/etc/x"),
                                                        ("bind", "/etc/x")]
    assert {o.target for o in ops if o.action == "mknod"} >= {"/dev/null", "/dev/zero", "/dev/tty"}
    assert [(o.action, o.target) for o in late_ops(cfg)] == [("readonly_keep", "/proc/sys"), ("mask", "/proc/kcore")]


def test_signals_and_options() -> None:
    assert parse_signal("SIGKILL") == 9 and parse_signal("TERM") == 15 and parse_signal("10") == 10
    assert parse_signal("SIGRTMIN+2") == 36
    with pytest.raises(InvalidSpecError):
        parse_signal("SIGNOPE")
    options, positionals, _ = split_options(["--bundle", "/b", "--pid-file=/p", "--no-pivot", "id"],
                                            {"--bundle", "--pid-file"})
    assert options == {"--bundle": "/b", "--pid-file": "/p", "--no-pivot": "true"} and positionals == ["id"]
    options, positionals, _ = split_options(["id", "9", "--all"], set())
    assert positionals == ["id", "9"] and "--all" in options


# ---- seccomp: a classic-BPF interpreter for the instructions the compiler emits -------------------

def run_bpf(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = 0xC000003E) -> int:
    data = struct.pack("<iI Q 6Q", nr, arch, 0, *(list(args) + [0] * (6 - len(args))))
    insns = [struct.unpack("<HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x54:
            acc &= k
        elif code == 0x06:
            return k
        elif code in (0x15, 0x25, 0x35, 0x45):
            ok = {0x15: acc == k, 0x25: acc > k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += jt if ok else jf
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
        pc += 1


@pytest.mark.skipif(sys.byteorder != "little", reason="the interpreter reads little-endian data")
def test_seccomp_profile_semantics() -> None:
    allow, eperm, eacces = 0x7FFF0000, 0x00050001, 0x0005000D
    profile = Seccomp("SCMP_ACT_ALLOW", None, ("SCMP_ARCH_X86_64",), (
        SeccompRule(("mkdir", "mkdirat"), "SCMP_ACT_ERRNO", 13),
        SeccompRule(("personality",), "SCMP_ACT_ERRNO", None, (SeccompArg(0, 8),)),
        SeccompRule(("kill",), "SCMP_ACT_ERRNO", None, (SeccompArg(1, 9, op="SCMP_CMP_NE"),)),
        SeccompRule(("socket",), "SCMP_ACT_ERRNO", None, (SeccompArg(0, 16, op="SCMP_CMP_GE"),)),
        SeccompRule(("clone",), "SCMP_ACT_ERRNO", None, (SeccompArg(0, 0x10000000, 0x10000000, "SCMP_CMP_MASKED_EQ"),)),
        SeccompRule(("not_a_syscall",), "SCMP_ACT_KILL"),
    ))
    prog = compile_profile(profile, "x86_64")
    assert run_bpf(prog, 83) == eacces and run_bpf(prog, 258) == eacces  # mkdir, mkdirat
    assert run_bpf(prog, 0) == allow  # read
    assert run_bpf(prog, 135, (8,)) == eperm and run_bpf(prog, 135, (0,)) == allow  # personality
    assert run_bpf(prog, 135, (8 | 1 << 32,)) == allow  # the high word counts
    assert run_bpf(prog, 62, (1, 9)) == allow and run_bpf(prog, 62, (1, 15)) == eperm  # kill
    assert run_bpf(prog, 41, (2,)) == allow and run_bpf(prog, 41, (16,)) == eperm and run_bpf(prog, 41, (1 << 40,)) == eperm
    assert run_bpf(prog, 56, (0x10000000 | 0x11,)) == eperm and run_bpf(prog, 56, (0x11,)) == allow
    assert run_bpf(prog, 0, arch=0x40000003) == 0x80000000  # a foreign architecture is killed
    assert run_bpf(prog, 0x40000000 + 83) == eperm  # x32
    deny = compile_profile(Seccomp("SCMP_ACT_ERRNO", 38, (), (SeccompRule(("read",), "SCMP_ACT_ALLOW"),)), "x86_64")
    assert run_bpf(deny, 0) == allow and run_bpf(deny, 1) == 0x00050000 | 38


def test_seccomp_refuses_another_architecture_list() -> None:
    with pytest.raises(InvalidSpecError):
        compile_profile(Seccomp("SCMP_ACT_ALLOW", None, ("SCMP_ARCH_AARCH64",), ()), "x86_64")


def test_json_without_the_json_module() -> None:
    import json

    from rustainer.backend.util.jsonfile import dumps, loads

    value = {"a": [1, -2.5, 3e3, True, False, None, "é\n\"x\""], "b": {}, "c": []}
    assert loads(json.dumps(value)) == value == loads(dumps(value))
    for bad in ("", "{", "{} x", "[1,]", "nan-ish"):
        with pytest.raises(ValueError):
            loads(bad)
