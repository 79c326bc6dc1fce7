"""A private tmux server for the dashboard's end-to-end tests: one session, ``dash``, driven with
send-keys and read back with capture-pane (what a person would see)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable


class Tmux:
    """``tmux(*args)`` runs a tmux command on this test's own server (``-L``, never the user's);
    ``kill()`` ends every server it used (``new_server()`` moves to a fresh one)."""

    def __init__(self, prefix: str, config: str = "/dev/null") -> None:
        self.servers = [f"{prefix}-{os.getpid()}-{time.monotonic_ns()}"]
        self.config = config

    def __call__(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["tmux", "-L", self.servers[-1], "-f", self.config, *args], capture_output=True,
                              text=True, check=check, timeout=10).stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "dash")

    def wait_for(self, predicate: Callable[[str], object], what: str, timeout: float = 30.0) -> str:
        """Poll the screen until ``predicate`` holds; on timeout, the error shows the screen."""
        end = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{text}")
            time.sleep(0.1)

    def keys(self, *names: str) -> None:
        self("send-keys", "-t", "dash", *names)

    def typed(self, text: str) -> None:
        """``text`` typed literally (no key names)."""
        self("send-keys", "-t", "dash", "-l", text)

    def new_server(self) -> None:
        """Kill this server and use a new one (the first one's socket may still be going)."""
        self._kill(self.servers[-1])
        self.servers.append(self.servers[0] + "-again")

    def kill(self) -> None:
        for server in self.servers:
            self._kill(server)

    @staticmethod
    def _kill(server: str) -> None:
        subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True, timeout=10)
