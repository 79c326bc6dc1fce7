"""Textual key events to the bytes an xterm would send, kept pure so every mapping is unit-tested.

Programs inside the container (shells, vi, less, top) expect exactly xterm's sequences; a wrong byte
is a silently wrong keystroke, so the table is explicit rather than derived.
"""

from __future__ import annotations

#: Keys the dashboard itself binds: a terminal pane must let them through untouched.
APP_KEYS: frozenset[str] = frozenset(
    {"ctrl+q", "ctrl+pageup", "ctrl+pagedown", "ctrl+right_square_bracket"}
    | {f"alt+{n}" for n in range(1, 10)}
)

#: Keys the pane keeps for itself (scrollback) instead of sending them to the program.
SCROLL_KEYS: frozenset[str] = frozenset({"shift+pageup", "shift+pagedown"})

_MODIFIERS = ("shift", "alt", "ctrl", "meta", "super", "hyper")

# Final byte of CSI/SS3 cursor keys; SS3 (ESC O) in application cursor mode, as xterm does.
_CURSOR = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}
# "CSI n ~" keys.
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6,
          "f5": 15, "f6": 17, "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24}
_SS3_FKEYS = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}

_PLAIN = {"enter": b"\r", "tab": b"\t", "backspace": b"\x7f", "escape": b"\x1b", "space": b" ",
          "shift+tab": b"\x1b[Z", "ctrl+at": b"\x00", "ctrl+space": b"\x00", "ctrl+@": b"\x00",
          "ctrl+backslash": b"\x1c", "ctrl+right_square_bracket": b"\x1d",
          "ctrl+left_square_bracket": b"\x1b", "ctrl+circumflex_accent": b"\x1e",
          "ctrl+underscore": b"\x1f", "ctrl+minus": b"\x1f", "ctrl+slash": b"\x1f",
          "ctrl+question_mark": b"\x7f", "newline": b"\n", "ctrl+enter": b"\r",
          "shift+enter": b"\r", "shift+space": b" ", "shift+backspace": b"\x7f",
          "ctrl+backspace": b"\x08", "shift+escape": b"\x1b"}


# xterm's control digits: ctrl+3..ctrl+7 are ESC FS GS RS US, ctrl+8 is DEL.
_CTRL_DIGITS = {"3": b"\x1b", "4": b"\x1c", "5": b"\x1d", "6": b"\x1e", "7": b"\x1f", "8": b"\x7f"}


def _modifier_code(mods: set[str]) -> int:
    """xterm's ``1 + shift + 2*alt + 4*ctrl`` parameter for modified special keys."""
    return 1 + ("shift" in mods) + 2 * ("alt" in mods) + 4 * ("ctrl" in mods)


def _special(base: str, mods: set[str], app_cursor: bool) -> bytes | None:
    code = _modifier_code(mods)
    if base in _CURSOR:
        final = _CURSOR[base]
        if code > 1:
            return f"\x1b[1;{code}{final}".encode()
        return f"\x1bO{final}".encode() if app_cursor else f"\x1b[{final}".encode()
    if base in _SS3_FKEYS:
        final = _SS3_FKEYS[base]
        return f"\x1b[1;{code}{final}".encode() if code > 1 else f"\x1bO{final}".encode()
    if base in _TILDE:
        n = _TILDE[base]
        return f"\x1b[{n};{code}~".encode() if code > 1 else f"\x1b[{n}~".encode()
    return None


def key_to_bytes(key: str, character: str | None, app_cursor: bool) -> bytes | None:
    """The bytes for one key press, or None when the key is not for the program (the app's own
    keys, scrollback keys, or keys a terminal cannot express)."""
    if key in APP_KEYS or key in SCROLL_KEYS:
        return None
    if key in _PLAIN:
        return _PLAIN[key]
    parts = key.split("+")
    mods = set(parts[:-1])
    base = parts[-1]
    if not mods <= set(_MODIFIERS) or not base:
        return None
    if mods & {"meta", "super", "hyper"}:
        return None
    special = _special(base, mods, app_cursor)
    if special is not None:
        return special
    if "alt" in mods:
        # Meta sends ESC first (xterm's metaSendsEscape, what readline and vi expect).
        rest = "+".join([m for m in parts[:-1] if m != "alt"] + [base])
        inner = key_to_bytes(rest, character, app_cursor)
        return b"\x1b" + inner if inner is not None else None
    if "ctrl" in mods:
        if len(base) == 1 and base.isascii() and base.isalpha():
            return bytes([ord(base.lower()) & 0x1F])
        if base in ("2", "@"):
            return b"\x00"
        return _CTRL_DIGITS.get(base)
    if character is not None and character.isprintable() and character:
        return character.encode("utf-8", "surrogateescape")
    if len(base) == 1 and base.isprintable():
        return (base.upper() if "shift" in mods else base).encode()
    return None
