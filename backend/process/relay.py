"""Copy bytes between the caller's stdio and a foreground container.

The container never gets the caller's descriptors: with a terminal it gets a fresh pty (whose master
we copy to and from, with the caller's terminal in raw mode), otherwise fresh pipes. A container
with the caller's terminal could push keystrokes into the caller's shell (TIOCSTI); one with a
caller's directory descriptor as stdin could walk the host's file system through /proc/self/fd.
"""

from __future__ import annotations

import errno
import os
import select

_CHUNK = 65536


def _write_all(fd: int, data: bytes) -> bool:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except OSError as err:
            if err.errno in (errno.EPIPE, errno.EIO, errno.EBADF):
                return False
            raise
        view = view[n:]
    return True


def copy_window_size(src_fd: int, dst_fd: int) -> None:
    import fcntl
    import termios

    try:
        size = fcntl.ioctl(src_fd, termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst_fd, termios.TIOCSWINSZ, size)
    except OSError:
        pass


def relay_pty(master: int) -> None:
    """Raw-mode terminal <-> pty master until the container side closes; resizes follow SIGWINCH."""
    import signal
    import termios
    import tty

    saved = termios.tcgetattr(0)
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: copy_window_size(0, master))
    tty.setraw(0, termios.TCSANOW)
    try:
        copy_window_size(0, master)
        watch = [0, master]
        while True:
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, _CHUNK)
                except OSError:
                    data = b""
                if not data:
                    return
                _write_all(1, data)
            if 0 in ready:
                data = os.read(0, _CHUNK)
                if not data:
                    watch = [master]
                elif not _write_all(master, data):
                    return
    finally:
        termios.tcsetattr(0, termios.TCSAFLUSH, saved)
        signal.signal(signal.SIGWINCH, old_winch)


def relay_pipes(stdin_w: int, stdout_r: int, stderr_r: int) -> None:
    """Our stdin -> the container's stdin pipe; its stdout/stderr pipes -> ours, until both close.

    Input waiting for the container is buffered and written only when its pipe has room, so a
    container that is busy writing output never deadlocks against us writing its input.
    """
    outputs = {stdout_r: 1, stderr_r: 2}
    pending = b""
    reading_stdin = True
    try:
        os.fstat(0)
    except OSError:
        reading_stdin = False
    os.set_blocking(stdin_w, False)
    stdin_w_open = True
    if not reading_stdin:
        os.close(stdin_w)
        stdin_w_open = False
    while outputs:
        want_read = list(outputs) + ([0] if reading_stdin and not pending else [])
        want_write = [stdin_w] if stdin_w_open and pending else []
        try:
            readable, writable, _ = select.select(want_read, want_write, [])
        except InterruptedError:
            continue
        if writable:
            try:
                pending = pending[os.write(stdin_w, pending):]
            except BlockingIOError:
                pass
            except OSError:
                pending, reading_stdin = b"", False
            if not pending and not reading_stdin:
                os.close(stdin_w)
                stdin_w_open = False
        for fd in readable:
            if fd == 0:
                try:
                    data = os.read(0, _CHUNK)
                except OSError:
                    data = b""
                if data:
                    pending = data
                else:
                    reading_stdin = False
                    if not pending and stdin_w_open:
                        os.close(stdin_w)
                        stdin_w_open = False
                continue
            data = os.read(fd, _CHUNK)
            if data:
                _write_all(outputs[fd], data)
            else:
                os.close(fd)
                del outputs[fd]
    if stdin_w_open:
        os.close(stdin_w)
