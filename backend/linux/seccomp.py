"""A small seccomp filter: no new user namespaces, no kernel keyrings inside the container.

Dropping CAP_SYS_ADMIN already makes ``mount`` and most ``unshare`` calls fail, but an unprivileged
``unshare --user`` would still hand the container a namespace in which it holds every capability (and
with it mount, more namespaces and a large kernel attack surface). Docker's default profile blocks it;
so do we, with the few rules that matter: user namespaces through unshare/clone, clone3 (whose flags
a filter cannot see; glibc falls back to clone on ENOSYS), and the keyring calls (keys are not
namespaced). Syscalls of a foreign architecture (32-bit compat) get ENOSYS rather than a way around;
x32 calls (the native architecture, numbers with bit 30 set) get EPERM, whatever the call.
"""

from __future__ import annotations

import os
import sys

from rustainer.backend.linux import syscalls

_ARCH = {
    # machine: (AUDIT_ARCH, unshare, clone, clone3, keyctl, add_key, request_key)
    "x86_64": (0xC000003E, 272, 56, 435, 250, 248, 249),
    "aarch64": (0xC00000B7, 97, 220, 435, 219, 217, 218),
}
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_X32_SYSCALL_BIT = 0x40000000
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    # struct sock_filter {u16 code; u8 jt; u8 jf; u32 k} in native order (struct's "HBBI", without
    # importing struct on every container start)
    order = sys.byteorder
    return code.to_bytes(2, order) + bytes((jt, jf)) + k.to_bytes(4, order)


def build_program(machine: str) -> bytes | None:
    """The filter as raw sock_filter instructions, or None for an architecture we have no table for."""
    if machine not in _ARCH:
        return None
    arch, unshare, clone, clone3, keyctl, add_key, request_key = _ARCH[machine]
    deny_eperm = _ERRNO | _EPERM
    prog = [
        _insn(_LD_W_ABS, 0, 0, 4),  # 0: A = arch
        _insn(_JEQ_K, 1, 0, arch),  # 1: native? skip the next
        _insn(_RET_K, 0, 0, _ERRNO | _ENOSYS),  # 2
        _insn(_LD_W_ABS, 0, 0, 0),  # 3: A = nr
        # 4: x32 (x86_64's AUDIT_ARCH with bit 30 in the number) and anything above: refused, as in
        # docker's profile, or unshare/clone would pass by another number on a kernel with x32
        _insn(_JGE_K, 11, 0, _X32_SYSCALL_BIT),  # 4 -> 16
        _insn(_JEQ_K, 6, 0, unshare),  # 5 -> 12
        _insn(_JEQ_K, 5, 0, clone),  # 6 -> 12
        _insn(_JEQ_K, 7, 0, clone3),  # 7 -> 15
        _insn(_JEQ_K, 7, 0, keyctl),  # 8 -> 16
        _insn(_JEQ_K, 6, 0, add_key),  # 9 -> 16
        _insn(_JEQ_K, 5, 0, request_key),  # 10 -> 16
        _insn(_RET_K, 0, 0, _ALLOW),  # 11
        _insn(_LD_W_ABS, 0, 0, 16),  # 12: A = low word of args[0] (flags)
        _insn(_JSET_K, 2, 0, syscalls.CLONE_NEWUSER),  # 13: flag set -> 16
        _insn(_RET_K, 0, 0, _ALLOW),  # 14
        # 15: clone3 answers ENOSYS so that libc falls back to clone, whose flags we can check.
        _insn(_RET_K, 0, 0, _ERRNO | _ENOSYS),
        _insn(_RET_K, 0, 0, deny_eperm),  # 16
    ]
    return b"".join(prog)


def install_filter() -> None:
    program = build_program(os.uname().machine)
    if program is None:
        return
    syscalls.set_seccomp_filter(program, PR_SET_SECCOMP, SECCOMP_MODE_FILTER)
