"""Docker's default capability set, and dropping everything else from every set.

Root in the container keeps uid 0, so what separates it from the host's root is the capability
sets: the bounding set above all, since execve() recomputes a root process's permitted set from it.
"""

from __future__ import annotations

from rustainer.backend.linux import syscalls

CAPS = {
    "chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "fsetid": 4, "kill": 5, "setgid": 6,
    "setuid": 7, "setpcap": 8, "linux_immutable": 9, "net_bind_service": 10, "net_broadcast": 11,
    "net_admin": 12, "net_raw": 13, "ipc_lock": 14, "ipc_owner": 15, "sys_module": 16, "sys_rawio": 17,
    "sys_chroot": 18, "sys_ptrace": 19, "sys_pacct": 20, "sys_admin": 21, "sys_boot": 22, "sys_nice": 23,
    "sys_resource": 24, "sys_time": 25, "sys_tty_config": 26, "mknod": 27, "lease": 28, "audit_write": 29,
    "audit_control": 30, "setfcap": 31, "mac_override": 32, "mac_admin": 33, "syslog": 34, "wake_alarm": 35,
    "block_suspend": 36, "audit_read": 37, "perfmon": 38, "bpf": 39, "checkpoint_restore": 40,
}
DEFAULT_CAPS = (
    "chown", "dac_override", "fowner", "fsetid", "kill", "setgid", "setuid", "setpcap", "net_bind_service",
    "net_raw", "sys_chroot", "mknod", "audit_write", "setfcap",
)


def mask(names: tuple[str, ...]) -> int:
    value = 0
    for name in names:
        value |= 1 << CAPS[name]
    return value


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return max(CAPS.values())


def restrict_to(keep: int, last: int) -> None:
    """Drop every capability outside ``keep`` from the bounding, ambient and thread sets, and leave the
    inheritable set empty, as docker does: an inheritable capability would be granted again by any
    file carrying it in its inheritable file capabilities (the pattern of CVE-2022-24769)."""
    for cap in range(last + 1):
        if not keep & (1 << cap):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)
    try:
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass  # kernels before 4.3 have no ambient set
    syscalls.capset(keep, keep, 0)


PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT_RAISE = 2


def drop_bounding(keep: int, last: int) -> None:
    """Drop every capability outside ``keep`` from the bounding set (the first step of
    ``apply_sets``; a user switch may come between it and the rest)."""
    for cap in range(last + 1):
        if not keep & (1 << cap):
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, cap)


def keep_across_setuid(on: bool) -> None:
    """PR_SET_KEEPCAPS: leaving uid 0 keeps the permitted set (the OCI runtime sets the sets after)."""
    syscalls.prctl(PR_SET_KEEPCAPS, 1 if on else 0)


def apply_sets(effective: int, permitted: int, inheritable: int, ambient: int) -> None:
    """The thread's sets as the OCI spec's ``process.capabilities`` names them; ambient ones must
    also be permitted and inheritable (the kernel's rule)."""
    syscalls.capset(effective, permitted, inheritable)
    try:
        syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        return  # kernels before 4.3 have no ambient set
    for cap in range(64):
        if ambient & (1 << cap):
            syscalls.prctl(syscalls.PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
