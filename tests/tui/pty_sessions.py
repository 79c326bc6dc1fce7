"""Sessions on local ptys for the dashboard's tests that need a shell's output but no container (no
root): a test writes what a program would print into the pty's far end, and the session reads it
through the same data path as a container's output; what the dashboard sends the program comes out
there too. Each such session is put in the app's sessions as a running container's would be."""

from __future__ import annotations

import os
import select
import termios
import tty

from rustainer.app.tui_app import RustainerApp
from rustainer.widgets.terminal_session import TerminalSession


class PtyShells:
    """The far ends of the ptys of the fake containers' sessions, closed by :meth:`close`."""

    def __init__(self) -> None:
        self.ends: dict[str, int] = {}

    async def add(self, app: RustainerApp, cid: str, name: str) -> TerminalSession:
        master, end = os.openpty()
        tty.setraw(end, termios.TCSANOW)  # no echo, no line discipline: bytes as sent
        session = TerminalSession(label=name)
        await session.attach_pty(master, columns=80, lines=24)
        app.sessions[cid] = session
        self.ends[name] = end
        return session

    def write(self, name: str, data: bytes) -> None:
        """What the program in ``name`` prints."""
        os.write(self.ends[name], data)

    def read(self, name: str, timeout: float = 5.0) -> bytes:
        """What the dashboard sent the program since the last read (raw bytes)."""
        end = self.ends[name]
        out = b""
        while select.select([end], [], [], timeout)[0]:
            out += os.read(end, 4096)
            timeout = 0.2
        return out

    def close(self) -> None:
        for end in self.ends.values():
            os.close(end)
        self.ends.clear()
