"""Signal dispositions through ``_signal``, the C module behind ``signal``.

``import signal`` builds its Signals/Handlers enums at import, which costs about as much CPU as the
rest of a container's start path on the machines we measured; the start path only needs to set
and restore a few handlers, so it uses the plain integers of the C module. (Typed wrappers here
because ``_signal`` has no type stubs.)
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    Handler = Callable[[int, Any], Any] | int | None

SIGHUP, SIGINT, SIGQUIT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM, SIGSTOP, SIGWINCH = 1, 2, 3, 9, 10, 12, 15, 19, 28
SIG_DFL: int = _signal.SIG_DFL
SIG_IGN: int = _signal.SIG_IGN
NSIG: int = _signal.NSIG
SIG_BLOCK: int = _signal.SIG_BLOCK
SIG_SETMASK: int = _signal.SIG_SETMASK


def set_handler(signum: int, handler: Handler) -> Handler:
    """Install ``handler``; returns the previous one (to restore it later)."""
    previous: Handler = _signal.signal(signum, handler)
    return previous


def set_mask(how: int, signals: Iterable[int]) -> None:
    _signal.pthread_sigmask(how, list(signals))


def get_handler(signum: int) -> Handler:
    """The current disposition as Python knows it (None: set outside Python, e.g. by C code)."""
    handler: Handler = _signal.getsignal(signum)
    return handler
