"""The terminal modes a front end must honour when it forwards keys, pastes and mouse events."""

from __future__ import annotations

from typing import NamedTuple

from pyte import modes as mo

DECCKM = 1 << 5  # Application cursor keys.
BRACKETED_PASTE = 2004 << 5
MOUSE_X10 = 9 << 5
MOUSE_NORMAL = 1000 << 5
MOUSE_BUTTON = 1002 << 5
MOUSE_ANY = 1003 << 5
MOUSE_UTF8 = 1005 << 5
MOUSE_SGR = 1006 << 5
MOUSE_URXVT = 1015 << 5
FOCUS_EVENTS = 1004 << 5

#: Private modes a repaint stream restores (beyond those with dedicated handling).
REPAINT_PRIVATE = (1, 9, 1000, 1002, 1003, 1004, 1005, 1006, 1015, 2004)


class Modes(NamedTuple):
    application_cursor: bool
    bracketed_paste: bool
    mouse: str  # "", "x10", "normal", "button" or "any": which mouse events are reported.
    mouse_encoding: str  # "", "utf8", "sgr" or "urxvt".
    cursor_visible: bool
    alternate_screen: bool
    autowrap: bool
    insert: bool
    origin: bool
    focus_events: bool


def modes_of(mode: set[int], cursor_hidden: bool, alternate: bool) -> Modes:
    mouse = ""
    for flag, name in ((MOUSE_X10, "x10"), (MOUSE_NORMAL, "normal"), (MOUSE_BUTTON, "button"), (MOUSE_ANY, "any")):
        if flag in mode:
            mouse = name
    encoding = ""
    for flag, name in ((MOUSE_UTF8, "utf8"), (MOUSE_URXVT, "urxvt"), (MOUSE_SGR, "sgr")):
        if flag in mode:
            encoding = name
    return Modes(
        application_cursor=DECCKM in mode,
        bracketed_paste=BRACKETED_PASTE in mode,
        mouse=mouse,
        mouse_encoding=encoding,
        cursor_visible=not cursor_hidden,
        alternate_screen=alternate,
        autowrap=mo.DECAWM in mode,
        insert=mo.IRM in mode,
        origin=mo.DECOM in mode,
        focus_events=FOCUS_EVENTS in mode,
    )
