"""A thin layer over the Linux calls Python 3.11's ``os`` lacks, on ctypes' own primitives.

Only what the engine needs: unshare, setns, mount, umount2, pivot_root, prctl and capset. Each raises
OSError with errno set, so callers translate it into a RustainerError that says what was attempted.

Why ``_ctypes`` and not ``ctypes``: importing ``ctypes`` runs its whole ``__init__`` (every C type,
byte-order variants, caches: about 4-6 ms, a sixth of a container's start here). These calls need a
handful of the primitives it is built on (a function pointer with errno kept, a few simple types,
``Structure``), which ``_ctypes`` provides directly, as it does for ``ctypes`` itself.
"""

from __future__ import annotations

import os
import sys
from _ctypes import (
    FUNCFLAG_CDECL,
    FUNCFLAG_PYTHONAPI,
    FUNCFLAG_USE_ERRNO,
    Array,
    CFuncPtr,
    Structure,
    _SimpleCData,
    addressof,
    byref,
    dlopen,
    get_errno,
)

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_INTO_CGROUP = 0x200000000  # clone3 only (Linux 5.7)
CLONE_PARENT = 0x00008000
PR_SET_CHILD_SUBREAPER = 36
SIGCHLD = 17

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

_ARCH_SYSCALLS = {
    "x86_64": {"pivot_root": 155, "capset": 126, "clone3": 435},
    "aarch64": {"pivot_root": 41, "capset": 91, "clone3": 435},
}


# The C types the calls below take, as ctypes defines them (``_type_`` is struct's format code).
class c_int(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "i"


class c_uint32(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "I"


class c_ushort(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "H"


class c_long(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "l"


class c_ulong(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "L"


class c_uint64(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "Q"


class c_char_p(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "z"


class c_void_p(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "P"


class c_char(_SimpleCData):  # type: ignore[type-arg]
    _type_ = "c"


class _Function(CFuncPtr):
    """A C function that keeps errno (``ctypes.CDLL(..., use_errno=True)``'s function type)."""

    _flags_ = FUNCFLAG_CDECL | FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _Process:
    """The symbols of this process (libc included): ``ctypes.CDLL(None)``."""

    _handle = dlopen(None, 0)  # type: ignore[arg-type]  # NULL: this process, as dlopen(3) allows


class _PythonApiFunction(CFuncPtr):
    """A C function called with the GIL held (``ctypes.pythonapi``'s kind), keeping errno: for the
    interpreter's own fork hooks, and for the clone that must happen between them as ``os.fork``'s
    does (no other thread may hold the GIL, or the import lock, at the moment of the copy)."""

    _flags_ = FUNCFLAG_CDECL | FUNCFLAG_PYTHONAPI | FUNCFLAG_USE_ERRNO
    _restype_ = c_long


def _function(name: str, argtypes: tuple[type, ...] | None = None, restype: type = c_int) -> _Function:
    function = _Function((name, _Process))  # type: ignore[arg-type]  # anything with a _handle will do
    if argtypes is not None:
        function.argtypes = argtypes
    function.restype = restype
    return function


_mount = _function("mount", (c_char_p, c_char_p, c_char_p, c_ulong, c_char_p))
_umount2 = _function("umount2", (c_char_p, c_int))
_unshare = _function("unshare", (c_int,))
_setns = _function("setns", (c_int, c_int))
_prctl = _function("prctl", (c_int, c_ulong, c_ulong, c_ulong, c_ulong))
_prctl_name = _function("prctl", (c_int, c_char_p, c_ulong, c_ulong, c_ulong))
_syscall = _function("syscall", None, c_long)
_sethostname = _function("sethostname", (c_char_p, c_ulong))
_socket = _function("socket", (c_int, c_int, c_int))
_memmove = _function("memmove", (c_void_p, c_char_p, c_ulong), c_void_p)


def _nr(name: str) -> int:
    machine = os.uname().machine
    try:
        return _ARCH_SYSCALLS[machine][name]
    except KeyError:
        raise OSError(f"{name} is not wired up for {machine} in rustainer's syscall table") from None


def _check(result: int, what: str) -> None:
    if result < 0:
        err = get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def unshare(flags: int) -> None:
    _check(_unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_setns(fd, nstype), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall(_nr("pivot_root"), _b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    result: int = _prctl(option, arg2, arg3, arg4, arg5)
    _check(result, "prctl")
    return result


class _CapHeader(Structure):
    _fields_ = (("version", c_uint32), ("pid", c_int))


class _CapData(Structure):
    """Two ``__user_cap_data_struct``s in a row: the low and the high 32 bits of each set."""

    _fields_ = (("effective", c_uint32), ("permitted", c_uint32), ("inheritable", c_uint32),
                ("effective_high", c_uint32), ("permitted_high", c_uint32), ("inheritable_high", c_uint32))


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set this thread's capability sets (64-bit masks, _LINUX_CAPABILITY_VERSION_3)."""
    low, high = 0xFFFFFFFF, 32
    header = _CapHeader(0x20080522, 0)
    data = _CapData(effective & low, permitted & low, inheritable & low,
                    effective >> high & low, permitted >> high & low, inheritable >> high & low)
    _check(_syscall(_nr("capset"), byref(header), byref(data)), "capset")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_sethostname(raw, len(raw)), "sethostname")


def loopback_up() -> None:
    """Bring ``lo`` up in the current network namespace (SIOCSIFFLAGS; no socket module needed)."""
    import fcntl

    fd = _socket(2, 2 | 0o2000000, 0)  # AF_INET, SOCK_DGRAM | SOCK_CLOEXEC
    _check(fd, "socket")
    try:
        iff_up, iff_loopback, iff_running = 0x1, 0x8, 0x40
        flags = (iff_up | iff_loopback | iff_running).to_bytes(2, sys.byteorder)
        fcntl.ioctl(fd, 0x8914, b"lo".ljust(16, b"\0") + flags + bytes(22))  # struct ifreq, 40 bytes
    finally:
        os.close(fd)


def set_process_name(name: bytes) -> None:
    """PR_SET_NAME: what ``comm`` (``ps``, ``top``) shows; 15 bytes at most."""
    _check(_prctl_name(15, name[:15], 0, 0, 0), "prctl(PR_SET_NAME)")


def write_memory(address: int, data: bytes) -> None:
    """Copy ``data`` to ``address`` in this process (``ctypes.memmove``): for the argv area."""
    _memmove(address, data, len(data))


class _SockFprog(Structure):
    _fields_ = (("len", c_ushort), ("filter", c_char_p))


def set_seccomp_filter(program: bytes, set_seccomp: int, mode_filter: int) -> None:
    """prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &sock_fprog) for a compiled BPF ``program``."""
    fprog = _SockFprog(len(program) // 8, program)  # the struct keeps the bytes alive
    prctl(set_seccomp, mode_filter, addressof(fprog))


def malloc_trim() -> None:
    """glibc's malloc_trim(0): give free heap pages back to the kernel (no-op elsewhere)."""
    try:
        _function("malloc_trim", (c_ulong,))(0)
    except AttributeError:  # not glibc
        pass


# posix_spawn, as glibc and musl lay it out on 64-bit machines: opaque attribute and file-action
# objects, sigset_t of 1024 bits.
_SPAWN_ATTR_BYTES, _SPAWN_ACTIONS_BYTES, _SIGSET_BYTES = 336, 80, 128
POSIX_SPAWN_SETSIGDEF, POSIX_SPAWN_SETSIGMASK, POSIX_SPAWN_SETSID = 0x04, 0x08, 0x80
_ALL_SIGNALS = b"\xff" * 8 + bytes(_SIGSET_BYTES - 8)  # 1..64: every disposition back to SIG_DFL


def _buffer(size: int, data: bytes = b"") -> Array:  # type: ignore[type-arg]
    kind = type("buffer", (Array,), {"_type_": c_char, "_length_": size})
    return kind(*data.ljust(size, b"\0"))  # type: ignore[no-any-return]


def _strings(items: list[bytes]) -> Array:  # type: ignore[type-arg]
    """A NULL-terminated ``char *[]`` (the array keeps the bytes alive)."""
    kind = type("strings", (Array,), {"_type_": c_char_p, "_length_": len(items) + 1})
    return kind(*items, None)  # type: ignore[no-any-return]


_spawn_functions: dict[str, _Function] = {}


def _spawn_function(name: str) -> _Function:
    if name not in _spawn_functions:  # built on first use: only an init spawns
        _spawn_functions[name] = _function(name)
    return _spawn_functions[name]


def spawn(path: str, argv: list[str], env: dict[str, str], *, terminal: str | None = None) -> int:
    """posix_spawn(3) (vfork and exec: none of the caller's page tables copied) into a new session,
    with an empty signal mask and every signal's disposition reset; ``terminal``: opened as stdin,
    which makes it the new session's controlling terminal. Returns the pid; raises OSError.

    Not ``os.posix_spawn``: glibc sets its two internal signals (32, 33) to SIG_IGN in the new
    process unless they are in the reset set, an ignored signal survives exec, and Python's sigset
    conversion refuses to put them there.
    """
    attr, actions = _buffer(_SPAWN_ATTR_BYTES), _buffer(_SPAWN_ACTIONS_BYTES)
    call = _spawn_function
    _check_returned(call("posix_spawnattr_init")(attr), "posix_spawnattr_init")
    _check_returned(call("posix_spawn_file_actions_init")(actions), "posix_spawn_file_actions_init")
    try:
        flags = POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF
        _check_returned(call("posix_spawnattr_setflags")(attr, flags), "posix_spawnattr_setflags")
        _check_returned(call("posix_spawnattr_setsigmask")(attr, _buffer(_SIGSET_BYTES)), "posix_spawnattr_setsigmask")
        _check_returned(call("posix_spawnattr_setsigdefault")(attr, _buffer(_SIGSET_BYTES, _ALL_SIGNALS)),
                        "posix_spawnattr_setsigdefault")
        if terminal is not None:
            _check_returned(call("posix_spawn_file_actions_addopen")(actions, 0, os.fsencode(terminal), os.O_RDWR, 0),
                            "posix_spawn_file_actions_addopen")
        pid = c_int(0)
        args = _strings([os.fsencode(a) for a in argv])
        envp = _strings([os.fsencode(f"{k}={v}") for k, v in env.items()])
        _check_returned(call("posix_spawn")(byref(pid), os.fsencode(path), actions, attr, args, envp), path)
        return int(pid.value)
    finally:
        call("posix_spawn_file_actions_destroy")(actions)
        call("posix_spawnattr_destroy")(attr)


class _CloneArgs(Structure):
    """``struct clone_args`` up to ``cgroup`` (CLONE_ARGS_SIZE_VER2, 88 bytes)."""

    _fields_ = (("flags", c_uint64), ("pidfd", c_uint64), ("child_tid", c_uint64), ("parent_tid", c_uint64),
                ("exit_signal", c_uint64), ("stack", c_uint64), ("stack_size", c_uint64), ("tls", c_uint64),
                ("set_tid", c_uint64), ("set_tid_size", c_uint64), ("cgroup", c_uint64))


_CLONE_ARGS_SIZE = 88
_CLONE_ARGS_SIZE_VER0 = 64  # up to ``tls``: what Linux 5.3 knows


def fork_into_cgroup(flags: int, cgroup_fd: int) -> int:
    """``os.fork()`` through clone3(2) with CLONE_INTO_CGROUP: the child starts in the cgroup2
    directory ``cgroup_fd`` (plus ``flags``: CLONE_NEWPID makes it PID 1 of a new namespace), so
    nobody has to move it there later. Moving a process takes the kernel's global threadgroup lock,
    whose writers wait for an RCU grace period (milliseconds; far more under emulation); a fork
    into the cgroup only reads it. 0 in the child, its pid in the parent; OSError as clone3 gives
    it (ENOSYS before Linux 5.3, E2BIG before 5.7: the caller falls back to fork and a move).
    """
    return clone_fork(flags, cgroup_fd)


def clone_fork(flags: int, cgroup_fd: int | None = None) -> int:
    """``os.fork()`` through clone3(2) with ``flags``: CLONE_INTO_CGROUP with ``cgroup_fd``, or
    CLONE_PARENT (the child is our parent's child, not ours: a supervisor's start helper makes the
    container's PID 1 the supervisor's own child, see supervisor.shim). 0 in the child, its pid
    (in our namespace) in the parent; OSError as clone3 gives it (ENOSYS before Linux 5.3).

    The interpreter's fork hooks run around it as around ``os.fork`` (its locks, the threading
    module's state, ``os.register_at_fork``). glibc's own fork handlers do not: call this only from
    a single-threaded process (no other thread can hold a libc lock at the copy). The thread id
    glibc caches stays the parent's in the child until it execs: Python's calls do not use it, but
    C's ``raise()`` (so ``abort()``) would signal the wrong thread, so the child must not rely on it.
    """
    # With CLONE_PARENT the child's exit signal is ours (to our parent); clone3 wants 0 given.
    exit_signal = 0 if flags & CLONE_PARENT else SIGCHLD
    if cgroup_fd is None:
        args = _CloneArgs(flags, 0, 0, 0, exit_signal, 0, 0, 0, 0, 0, 0)
        size = _CLONE_ARGS_SIZE_VER0
    else:
        args = _CloneArgs(flags | CLONE_INTO_CGROUP, 0, 0, 0, exit_signal, 0, 0, 0, 0, 0, cgroup_fd)
        size = _CLONE_ARGS_SIZE
    hooks = clone_hooks()
    clone3 = hooks["syscall"]
    hooks["PyOS_BeforeFork"]()
    pid = clone3(_nr("clone3"), byref(args), size)
    if pid == 0:
        hooks["PyOS_AfterFork_Child"]()
        return 0
    err = get_errno()
    hooks["PyOS_AfterFork_Parent"]()
    if pid < 0:
        raise OSError(err, f"clone3: {os.strerror(err)}")
    return int(pid)


_hooks: dict[str, _PythonApiFunction] = {}


def clone_hooks() -> dict[str, _PythonApiFunction]:
    """``syscall`` and the interpreter's fork hooks, as ctypes functions (made on first use)."""
    if not _hooks:  # built on first use: a start on cgroup v2 or in a supervisor's helper clones
        for name in ("syscall", "PyOS_BeforeFork", "PyOS_AfterFork_Child", "PyOS_AfterFork_Parent"):
            function = _PythonApiFunction((name, _Process))  # type: ignore[arg-type]
            function.restype = c_long if name == "syscall" else None
            _hooks[name] = function
    return _hooks


def single_threaded() -> bool:
    """Whether this process has one thread (``/proc/self/task``): the condition of ``fork_into_cgroup``."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _check_returned(result: int, what: str) -> None:
    """For the calls that return an error number instead of setting errno."""
    if result != 0:
        raise OSError(result, os.strerror(result), what)
