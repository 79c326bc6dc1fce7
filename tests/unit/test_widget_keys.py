"""Key events to xterm bytes: what programs in the container receive for each key."""

from __future__ import annotations

import pytest

from rustainer.widgets.keys import APP_KEYS, key_to_bytes


@pytest.mark.parametrize(("key", "character", "expected"), [
    ("a", "a", b"a"),
    ("A", "A", b"A"),
    ("shift+a", "A", b"A"),
    ("exclamation_mark", "!", b"!"),
    ("eacute", "\u00e9", "\u00e9".encode()),
    ("space", " ", b" "),
    ("enter", "\r", b"\r"),
    ("tab", "\t", b"\t"),
    ("shift+tab", None, b"\x1b[Z"),
    ("backspace", "\x7f", b"\x7f"),
    ("escape", "\x1b", b"\x1b"),
    ("home", None, b"\x1b[H"),
    ("end", None, b"\x1b[F"),
    ("pageup", None, b"\x1b[5~"),
    ("pagedown", None, b"\x1b[6~"),
    ("insert", None, b"\x1b[2~"),
    ("delete", None, b"\x1b[3~"),
    ("f1", None, b"\x1bOP"),
    ("f4", None, b"\x1bOS"),
    ("f5", None, b"\x1b[15~"),
    ("f10", None, b"\x1b[21~"),
    ("f12", None, b"\x1b[24~"),
    ("shift+f1", None, b"\x1b[1;2P"),
    ("ctrl+f5", None, b"\x1b[15;5~"),
    ("ctrl+a", None, b"\x01"),
    ("ctrl+c", None, b"\x03"),
    ("ctrl+z", None, b"\x1a"),
    ("ctrl+shift+d", None, b"\x04"),
    ("ctrl+at", None, b"\x00"),
    ("ctrl+backslash", None, b"\x1c"),
    ("ctrl+underscore", None, b"\x1f"),
    ("ctrl+8", None, b"\x7f"),
    ("alt+x", "x", b"\x1bx"),
    ("alt+shift+x", "X", b"\x1bX"),
    ("alt+ctrl+b", None, b"\x1b\x02"),
    ("alt+backspace", None, b"\x1b\x7f"),
    ("alt+period", ".", b"\x1b."),
    ("ctrl+left", None, b"\x1b[1;5D"),
    ("shift+up", None, b"\x1b[1;2A"),
    ("alt+right", None, b"\x1b[1;3C"),
    ("ctrl+delete", None, b"\x1b[3;5~"),
])
def test_key_bytes(key: str, character: str | None, expected: bytes) -> None:
    assert key_to_bytes(key, character, app_cursor=False) == expected


@pytest.mark.parametrize(("key", "normal", "application"), [
    ("up", b"\x1b[A", b"\x1bOA"),
    ("down", b"\x1b[B", b"\x1bOB"),
    ("right", b"\x1b[C", b"\x1bOC"),
    ("left", b"\x1b[D", b"\x1bOD"),
    ("home", b"\x1b[H", b"\x1bOH"),
    ("end", b"\x1b[F", b"\x1bOF"),
    ("ctrl+up", b"\x1b[1;5A", b"\x1b[1;5A"),  # modified keys ignore the mode, as in xterm
    ("pageup", b"\x1b[5~", b"\x1b[5~"),
])
def test_application_cursor_mode(key: str, normal: bytes, application: bytes) -> None:
    assert key_to_bytes(key, None, app_cursor=False) == normal
    assert key_to_bytes(key, None, app_cursor=True) == application


@pytest.mark.parametrize("key", sorted(APP_KEYS | {"shift+pageup", "shift+pagedown"}))
def test_the_apps_keys_and_scrollback_keys_are_not_sent(key: str) -> None:
    assert key_to_bytes(key, None, app_cursor=False) is None


def test_app_keys_are_the_documented_ones() -> None:
    assert {"ctrl+q", "ctrl+pageup", "ctrl+pagedown", "ctrl+right_square_bracket", "alt+1", "alt+9"} <= APP_KEYS
    assert "alt+0" not in APP_KEYS and key_to_bytes("alt+0", "0", False) == b"\x1b0"


@pytest.mark.parametrize("key", ["super+a", "meta+x", "ctrl+f13x", "ctrl+comma", "<ignore>"])
def test_inexpressible_keys_send_nothing(key: str) -> None:
    assert key_to_bytes(key, None, app_cursor=False) is None
