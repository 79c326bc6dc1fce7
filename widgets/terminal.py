"""Transitional: the names the former single terminal module exported, for code written against it
(the dashboard's split, under way in parallel). New code imports the modules themselves:
:mod:`.terminal_render` (cells to strips), :mod:`.terminal_session` (link and core),
:mod:`.terminal_pane` (the widget)."""

from rustainer.widgets.terminal_pane import TerminalPane
from rustainer.widgets.terminal_render import screen_lines
from rustainer.widgets.terminal_session import TerminalSession

__all__ = ["TerminalPane", "TerminalSession", "screen_lines"]
