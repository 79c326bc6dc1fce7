"""Terminal core: exact pyte-compatible emulation, fast, with snapshots for instant reattach."""

from .terminal import Terminal

__all__ = ["Terminal"]
