"""Terminal core: exact pyte-compatible emulation, fast, with snapshots for instant reattach.

Shared by the supervisor (keeps every container's screen) and the dashboard (draws it); no
Textual here.  Modules, one job each:

* ``terminal``  -- :class:`Terminal`, the public API.
* ``screen``    -- :class:`~.screen.CoreScreen`: stock pyte 0.8.2 plus alternate screen,
                   scrollback, resize like tmux.
* ``fastpath``  -- the parser: regex tokens, cached escape handlers, inlined redraw paths,
                   falling back to pyte's own parser for everything else.
* ``bulk``      -- bulk scrolling: whole lines that scroll away are never drawn; the screen rows
                   it keeps aside, read in place or written back into pyte's buffer.
* ``rowcache``  -- ready-made cells shared by every screen: blank rows, runs of text a redraw
                   repeats.
* ``history``   -- the bounded scrollback ring (compact rows, or raw blocks not yet looked at).
* ``cells``     -- compact row form and cell caches.
* ``sgr``       -- colon-separated SGR parameters.
* ``modes``     -- the modes a front end needs (cursor keys, paste, mouse, cursor visibility).
* ``snapshot``  -- JSON-compatible snapshot / restore.
* ``repaint``   -- an escape-sequence stream that repaints the state on any xterm-like terminal.
* ``search``    -- searching the scrollback and screen as one list of lines (the dashboard's ``/``).
"""

from .terminal import Terminal

__all__ = ["Terminal"]
