"""Where rustainer keeps its state: one folder, RUSTAINER_ROOT (default /var/lib/rustainer)."""

from __future__ import annotations

import os

DEFAULT_ROOT = "/var/lib/rustainer"


def state_root() -> str:
    return os.path.abspath(os.environ.get("RUSTAINER_ROOT") or DEFAULT_ROOT)
