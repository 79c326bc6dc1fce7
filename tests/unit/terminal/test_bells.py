"""The core counts the bells a program rings (the dashboard flags them): a BEL on its own, on the
fast path and the slow one, but not the BEL that ends an OSC string (a window title)."""

from __future__ import annotations

from rustainer.backend.terminal import Terminal


def test_bells_are_counted_but_not_the_end_of_an_osc_string() -> None:
    term = Terminal(80, 24, 100)
    assert term.bells == 0
    term.feed(b"\x1b]0;a title\x07")  # a title, ended by BEL
    assert term.bells == 0 and term.title == "a title"
    term.feed(b"ding\x07")
    assert term.bells == 1
    term.feed(b"\x1b[31m\xc3\xa9t\xc3\xa9\x07\x1b[0m\r\n" * 3)  # mixed with colours and UTF-8
    assert term.bells == 4
    term.feed(b"".join(b"line %d\r\n" % i for i in range(100)) + b"\x07")  # after a bulk scroll
    assert term.bells == 5
    term.feed(b"\x1b]2;x")
    term.feed(b"\x07")  # an OSC string split across feeds
    assert term.bells == 5 and term.title == "x"
