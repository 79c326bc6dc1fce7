"""Running an nftables script as one transaction: in-process through libnftables when it loads,
else through the ``nft`` command.

The ``nft`` command is a thin wrapper around libnftables (nftables' own library, documented in
libnftables(3)); calling the library directly costs about 0.5 ms per transaction instead of about
20 ms for forking and executing ``nft`` (and the imports of ``subprocess`` and ``shutil``). The
script goes through a memfd and ``nft_run_cmd_from_filename``, as ``nft -f`` reads a file: from a
plain buffer, nftables 1.0.6 shows the first line of a multi-line script under an error, not the
refused one. Bound with ``_ctypes``' primitives, as ``linux.syscalls`` is, to keep ``ctypes``'
own import off the start path.
"""

from __future__ import annotations

import _thread
import os

from rustainer.backend.errors import NetworkError
from rustainer.backend.util.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

LIBRARY = "libnftables.so.1"
_unset = object()
_library: object = _unset  # the bound functions once loaded; None if libnftables is missing
_made: tuple[int, object] | None = None  # (pid, context): see _context
_lock = _thread.allocate_lock()


def _after_fork() -> None:
    """A child forked while another thread ran a transaction must not inherit the lock held."""
    global _lock
    _lock = _thread.allocate_lock()


os.register_at_fork(after_in_child=_after_fork)


@record
class Result:
    """What one run gave: nft's exit status (0: done), its output and its error text."""

    returncode: int
    output: str
    error: str


def run(script: str) -> Result:
    """Run ``script`` (``nft -f`` syntax) as one transaction."""
    functions = _functions()
    if functions is None:
        return _run_command(script)
    _new, _free, _buffer_output, _buffer_error, run_file, get_output, get_error = functions
    fd = os.memfd_create("rustainer-nft", os.MFD_CLOEXEC)
    try:
        os.write(fd, script.encode())
        with _lock:
            ctx = _context(functions)
            code = run_file(ctx, f"/proc/self/fd/{fd}".encode())
            output, error = get_output(ctx) or b"", get_error(ctx) or b""
    finally:
        os.close(fd)
    return Result(0 if code == 0 else 1, output.decode(errors="replace"), error.decode(errors="replace"))  # type: ignore[attr-defined]


def _context(functions: tuple[Callable[..., object], ...]) -> object:
    """This process's libnftables context, made on first use and kept: freeing it closes its
    netfilter socket, and closing that socket right after a transaction waits (in the kernel, as
    nftables flushes its deferred clean-up) for an RCU grace period, 10-30 ms here. Kept open, the
    close at exit finds that work long done. A child forked after it was made gets its own (the
    socket is shared with the parent; requests and answers must not interleave)."""
    global _made
    if _made is not None and _made[0] == os.getpid():
        return _made[1]
    new, _free, buffer_output, buffer_error = functions[:4]
    before = _descriptors()
    ctx = new(0)
    if not ctx:
        raise NetworkError("libnftables could not make a context (out of memory?)")
    # Its netfilter socket is opened without close-on-exec: a command we exec (a container's) must
    # never inherit a root netfilter socket, so every socket the call opened gets it.
    for fd, _target in _descriptors() - before:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass
    buffer_output(ctx)
    buffer_error(ctx)
    _made = (os.getpid(), ctx)
    return ctx


def close() -> None:
    """Free this process's context, if it has one (the next ``run`` makes a new one, in the network
    namespace of the thread that runs it). Not for the start path: freeing waits as explained in
    ``_context``."""
    global _made
    with _lock:
        made, _made = _made, None
        functions = _library
        if made is not None and made[0] == os.getpid() and isinstance(functions, tuple):
            functions[1](made[1])


def _descriptors() -> set[tuple[int, str]]:
    """The sockets this process holds: (descriptor, ``socket:[inode]``)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
        if target.startswith("socket:"):
            found.add((int(name), target))
    return found


def _run_command(script: str) -> Result:
    import shutil
    import subprocess

    nft = shutil.which("nft") or "/usr/sbin/nft"
    try:
        proc = subprocess.run([nft, "-f", "-"], input=script, capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise NetworkError("nft (nftables) is not installed: bridge networks need it") from None
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _functions() -> tuple[Callable[..., object], ...] | None:
    """libnftables' functions, bound on first use; None if the library is not there."""
    global _library
    if _library is _unset:
        _library = _bind()
    return _library  # type: ignore[return-value]


def _bind() -> tuple[Callable[..., object], ...] | None:
    from _ctypes import FUNCFLAG_CDECL, CFuncPtr, dlopen

    from rustainer.backend.linux.syscalls import c_char_p, c_int, c_void_p

    try:
        handle = dlopen(LIBRARY, 0)  # RTLD_LOCAL (and RTLD_NOW, which _ctypes adds)
    except OSError:
        return None

    class Library:
        _handle = handle

    class Function(CFuncPtr):
        _flags_ = FUNCFLAG_CDECL
        _restype_ = c_int

    def bind(name: str, argtypes: tuple[type, ...], restype: type | None = c_int) -> Callable[..., object]:
        function = Function((name, Library))  # type: ignore[arg-type]  # anything with a _handle will do
        function.argtypes = argtypes
        function.restype = restype
        return function  # type: ignore[return-value]

    try:
        return (
            bind("nft_ctx_new", (c_int,), c_void_p),
            bind("nft_ctx_free", (c_void_p,), None),
            bind("nft_ctx_buffer_output", (c_void_p,)),
            bind("nft_ctx_buffer_error", (c_void_p,)),
            bind("nft_run_cmd_from_filename", (c_void_p, c_char_p)),
            bind("nft_ctx_get_output_buffer", (c_void_p,), c_char_p),
            bind("nft_ctx_get_error_buffer", (c_void_p,), c_char_p),
        )
    except AttributeError:  # a libnftables too old to have one of them
        return None
