"""A compiler from the OCI spec's seccomp profile (``linux.seccomp``) to a classic BPF program.

The same kind of program as the engine's own filter (``seccomp.py``), for any profile: the
architecture checked first (a foreign one is killed, libseccomp's default), then each rule in the
profile's order (the first that matches decides), then the default action. Each name of a rule is
its own small block whose jumps stay inside it (classic BPF jumps forward at most 255
instructions): ``nr == N`` and every argument condition, else on to the next block with the
syscall number reloaded. 64-bit argument values are compared as two 32-bit words.
"""

from __future__ import annotations

import os
import sys

from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.util.record import record


@record
class SeccompArg:
    index: int
    value: int
    value_two: int = 0
    op: str = "SCMP_CMP_EQ"


@record
class SeccompRule:
    names: tuple[str, ...]
    action: str
    errno_ret: int | None = None
    args: tuple[SeccompArg, ...] = ()


@record
class Seccomp:
    default_action: str
    default_errno: int | None = None
    architectures: tuple[str, ...] = ()
    syscalls: tuple[SeccompRule, ...] = ()

AUDIT_ARCH = {"x86_64": 0xC000003E}
SPEC_ARCH = {"x86_64": "SCMP_ARCH_X86_64"}
_LD_W_ABS, _JEQ, _JGT, _JGE, _AND, _RET = 0x20, 0x15, 0x25, 0x35, 0x54, 0x06
ACTIONS = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
           "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
           "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000}
EPERM = 1


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    order = sys.byteorder
    return code.to_bytes(2, order) + bytes((jt, jf)) + (k & 0xFFFFFFFF).to_bytes(4, order)


def action_value(action: str, errno_ret: int | None) -> int:
    value = ACTIONS[action]
    if action == "SCMP_ACT_ERRNO":
        value |= (EPERM if errno_ret is None else errno_ret) & 0xFFFF
    elif action == "SCMP_ACT_TRACE":
        value |= (errno_ret or 0) & 0xFFFF
    return value


def _arg_checks(arg: SeccompArg) -> list[tuple[int, int | str, int | str, int]]:
    """Instructions for one condition, as (code, jt, jf, k) where a jump of ``"F"`` means the
    block's failure exit (filled in later). The accumulator ends holding nothing we need."""
    lo_off, hi_off = 16 + 8 * arg.index, 16 + 8 * arg.index + 4
    if sys.byteorder == "big":
        lo_off, hi_off = hi_off, lo_off
    v, v2 = arg.value & 0xFFFFFFFFFFFFFFFF, arg.value_two & 0xFFFFFFFFFFFFFFFF
    vh, vl = v >> 32, v & 0xFFFFFFFF
    F = "F"  # the block's failure exit, filled in by the caller
    op = arg.op
    if op == "SCMP_CMP_EQ":
        return [(_LD_W_ABS, 0, 0, hi_off), (_JEQ, 0, F, vh), (_LD_W_ABS, 0, 0, lo_off), (_JEQ, 0, F, vl)]
    if op == "SCMP_CMP_NE":
        # fail only when both words are equal
        return [(_LD_W_ABS, 0, 0, hi_off), (_JEQ, 0, 2, vh), (_LD_W_ABS, 0, 0, lo_off), (_JEQ, F, 0, vl)]
    if op == "SCMP_CMP_MASKED_EQ":
        mh, ml = vh, vl
        wh, wl = v2 >> 32, v2 & 0xFFFFFFFF
        return [(_LD_W_ABS, 0, 0, hi_off), (_AND, 0, 0, mh), (_JEQ, 0, F, wh),
                (_LD_W_ABS, 0, 0, lo_off), (_AND, 0, 0, ml), (_JEQ, 0, F, wl)]
    # ordered comparisons: high words first, the low words decide only when the high ones are equal
    if op in ("SCMP_CMP_GT", "SCMP_CMP_GE"):
        low = _JGT if op == "SCMP_CMP_GT" else _JGE
        return [(_LD_W_ABS, 0, 0, hi_off), (_JGT, 3, 0, vh), (_JEQ, 0, F, vh),
                (_LD_W_ABS, 0, 0, lo_off), (low, 0, F, vl)]
    if op in ("SCMP_CMP_LT", "SCMP_CMP_LE"):
        # a < v  <=>  not (a >= v);  a <= v  <=>  not (a > v)
        low = _JGE if op == "SCMP_CMP_LT" else _JGT
        return [(_LD_W_ABS, 0, 0, hi_off), (_JGT, F, 0, vh), (_JEQ, 0, 2, vh),
                (_LD_W_ABS, 0, 0, lo_off), (low, F, 0, vl)]
    raise InvalidSpecError(f"unknown seccomp operator {op}")


def compile_profile(profile: Seccomp, machine: str | None = None) -> bytes:
    from rustainer.backend.linux.syscall_table import X86_64

    machine = machine or os.uname().machine
    if machine not in AUDIT_ARCH:
        raise InvalidSpecError(f"seccomp profiles are not supported on {machine} by rustainer-oci")
    if profile.architectures and SPEC_ARCH[machine] not in profile.architectures:
        raise InvalidSpecError(f"the seccomp profile does not name this machine's architecture ({SPEC_ARCH[machine]})")
    table = X86_64
    default = action_value(profile.default_action, profile.default_errno)
    prog: list[bytes] = [
        _insn(_LD_W_ABS, 0, 0, 4),
        _insn(_JEQ, 1, 0, AUDIT_ARCH[machine]),
        _insn(_RET, 0, 0, ACTIONS["SCMP_ACT_KILL_PROCESS"]),
        _insn(_LD_W_ABS, 0, 0, 0),
        # x32 numbers (bit 30) are refused as docker's profile does
        _insn(_JGE, 0, 1, 0x40000000),
        _insn(_RET, 0, 0, ACTIONS["SCMP_ACT_ERRNO"] | EPERM),
    ]
    for rule in profile.syscalls:
        ret = action_value(rule.action, rule.errno_ret)
        if ret == default and not rule.args:
            continue
        for name in rule.names:
            nr = table.get(name)
            if nr is None:
                continue  # unknown on this machine: skipped, as runc does
            body: list[tuple[int, int | str, int | str, int]] = []
            for arg in rule.args:
                body += _arg_checks(arg)
            # block: jeq nr (else skip the block), body, ret, [reload nr] - failures go to the reload
            size = len(body) + 1  # body + ret
            if body:
                size += 1  # the reload at the end
            if size > 255:
                raise InvalidSpecError(f"seccomp rule for {name} has too many conditions")
            prog.append(_insn(_JEQ, 0, size, nr))
            for i, (code, jt, jf, k) in enumerate(body):
                to_fail = len(body) - i  # from instruction i, the reload is len(body)-i instructions ahead... +ret
                jt_v = to_fail if jt == "F" else jt
                jf_v = to_fail if jf == "F" else jf
                prog.append(_insn(code, int(jt_v), int(jf_v), int(k)))
            prog.append(_insn(_RET, 0, 0, ret))
            if body:
                prog.append(_insn(_LD_W_ABS, 0, 0, 0))
    prog.append(_insn(_RET, 0, 0, default))
    if len(prog) > 4096:
        raise InvalidSpecError("the seccomp profile is too large for one filter")
    return b"".join(prog)
