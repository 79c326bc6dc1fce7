"""The seccomp program: well-formed BPF, and (in a forked child) it really blocks user namespaces."""

from __future__ import annotations

import ctypes
import errno
import os
import struct

import pytest

from rustainer.backend.linux import seccomp, syscalls

_BPF_JMP, _BPF_RET = 0x05, 0x06


def decode(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


@pytest.mark.parametrize("machine", sorted(seccomp._ARCH))
def test_program_is_well_formed(machine: str) -> None:
    program = seccomp.build_program(machine)
    assert program is not None
    assert len(program) % 8 == 0 and struct.calcsize("HBBI") == 8
    insns = decode(program)
    assert 0 < len(insns) <= 4096
    for i, (code, jt, jf, _k) in enumerate(insns):
        if code & 0x07 == _BPF_JMP:
            # conditional jumps are relative to the next instruction and must land inside the program
            assert i + 1 + jt < len(insns) and i + 1 + jf < len(insns), (i, jt, jf)
    assert insns[-1][0] == _BPF_RET  # the program cannot fall off its end
    # first thing: the architecture check
    arch = seccomp._ARCH[machine][0]
    assert insns[0] == (0x20, 0, 0, 4) and insns[1][3] == arch


@pytest.mark.parametrize("machine", sorted(seccomp._ARCH))
def test_program_rules(machine: str) -> None:
    """Interpret the program for a few syscalls: what it allows, and what gets EPERM/ENOSYS."""
    arch, unshare, clone, clone3, keyctl, add_key, request_key = seccomp._ARCH[machine]
    program = seccomp.build_program(machine)
    assert program is not None

    def run(nr: int, arg0: int = 0, arch_: int = arch) -> int:
        data = struct.pack("<IIQ6Q", nr, arch_, 0, arg0, 0, 0, 0, 0, 0)
        insns = decode(program)
        pc, acc = 0, 0
        while True:
            code, jt, jf, k = insns[pc]
            if code == 0x20:
                acc = struct.unpack_from("<I", data, k)[0]
            elif code == 0x15:
                pc += jt if acc == k else jf
            elif code == 0x45:
                pc += jt if acc & k else jf
            elif code == 0x35:
                pc += jt if acc >= k else jf
            elif code == 0x06:
                return k
            else:
                raise AssertionError(f"unexpected opcode {code:#x}")
            pc += 1

    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    assert run(0) == allow and run(1) == allow
    assert run(unshare, syscalls.CLONE_NEWNS) == allow
    assert run(unshare, syscalls.CLONE_NEWUSER) == eperm
    assert run(unshare, syscalls.CLONE_NEWUSER | syscalls.CLONE_NEWNS) == eperm
    assert run(clone, 0x11) == allow  # SIGCHLD | ... : plain fork
    assert run(clone, syscalls.CLONE_NEWUSER | 0x11) == eperm
    assert run(clone3) == enosys
    for nr in (keyctl, add_key, request_key):
        assert run(nr) == eperm
    assert run(0, arch_=0x40000003) == enosys  # i386 compat calls
    # x32 calls carry the native AUDIT_ARCH with bit 30 set in the number: refused outright (as
    # docker's profile does), whatever the call, so that unshare/clone cannot slip past by number
    x32 = 0x40000000
    for nr in (unshare, clone, clone3, keyctl, 0, 39):
        assert run(x32 | nr, syscalls.CLONE_NEWUSER) == eperm, nr
        assert run(x32 | nr, 0) == eperm, nr
    assert run(0xFFFFFFFF) == eperm  # and any number past it


def test_unknown_machine_has_no_program() -> None:
    assert seccomp.build_program("sparc") is None


@pytest.mark.skipif(os.uname().machine not in seccomp._ARCH, reason="no filter for this architecture")
def test_filter_blocks_user_namespaces_for_real() -> None:
    """In a forked child: after install_filter(), unshare(CLONE_NEWUSER) is EPERM, getpid still works."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        result = "setup"
        try:
            os.close(r)
            syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)  # lets a non-root user install a filter
            seccomp.install_filter()
            libc = ctypes.CDLL(None, use_errno=True)
            rc = libc.unshare(syscalls.CLONE_NEWUSER)
            err = ctypes.get_errno()
            keys = libc.syscall(seccomp._ARCH[os.uname().machine][4], 0, 0, 0, 0, 0)
            kerr = ctypes.get_errno()
            result = f"{rc} {err} {keys} {kerr} {int(os.getpid() > 0)}"
        except BaseException as exc:  # noqa: BLE001
            result = f"error {exc!r}"
        finally:
            os.write(w, result.encode())
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert out == f"-1 {errno.EPERM} -1 {errno.EPERM} 1", out
