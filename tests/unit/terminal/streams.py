"""Stream generators and comparison helpers shared by the terminal tests and the benchmark."""

from __future__ import annotations

import random

import pyte

from rustainer.backend.terminal import Terminal

WIDE = ["中", "文", "ｱ", "😀", "한"]
COMBINING = ["\u0301", "\u0308", "\u20dd"]
ODD = ["\u200b", "\u00ad", "\u00a0", "é", "ß", "\x85", "\x01", "\x1a", "\x9b", "\x00", "\x7f", "\x0e"]
BROKEN_UTF8 = [b"\xff", b"\xc3", b"\xe4\xb8", b"\xf0\x9f\x98", b"\x80", b"\xed\xa0\x80"]


def _csi(rng: random.Random, final: str, nparams: int = 1, hi: int = 50) -> str:
    params = ";".join(str(rng.randint(0, hi)) if rng.random() < 0.8 else "" for _ in range(nparams))
    return "\x1b[" + params + final


def fuzz_stream(rng: random.Random, length: int = 400) -> bytes:
    """Random mix of everything pyte implements (alternate screen, colon SGR, DECCOLM and charset
    switching excluded: there the core deliberately differs from pyte, or pyte is chunk-dependent)."""
    out: list[bytes] = []
    for _ in range(length):
        r = rng.random()
        if r < 0.25:
            n = rng.randint(1, 90)
            out.append("".join(rng.choice("abcdefghij XYZ0123456789-=") for _ in range(n)).encode())
        elif r < 0.32:
            out.append(rng.choice(["\r\n", "\n", "\r", "\b", "\t", "\x07", "\x0b", "\x0c", "\r\n\r\n"]).encode())
        elif r < 0.40:
            f = rng.choice("ABCDEFGHdfaIe`")
            nparams = rng.choice([1, 1, 2]) if f in "Hf" else 1  # pyte raises on surplus parameters.
            out.append(_csi(rng, f, nparams, hi=rng.choice([5, 50, 200])).encode())
        elif r < 0.47:
            f = rng.choice("@PXKJLMgZ")
            out.append(_csi(rng, f, 1, hi=2 if f in "JK" else rng.choice([3, 10, 40])).encode())
        elif r < 0.50:
            a, b = rng.randint(0, 30), rng.randint(0, 30)
            out.append(f"\x1b[{a};{b}r".encode() if rng.random() < 0.8 else b"\x1b[r")
        elif r < 0.55:
            mode = rng.choice(["?6", "?7", "4", "20", "?25", "?1", "?2004", "?1000", "?5", "?1006"])
            out.append(f"\x1b[{mode}{rng.choice('hl')}".encode())
        elif r < 0.65:
            codes = [rng.choice([0, 1, 3, 4, 5, 7, 9, 22, 23, 24, 27, 31, 42, 39, 49, 93, 105, 100])]
            if rng.random() < 0.3:
                codes += [38, 5, rng.randint(0, 300)] if rng.random() < 0.5 else [48, 2, 1, 2, rng.randint(0, 255)]
            if rng.random() < 0.1:
                codes = []
            out.append(("\x1b[" + ";".join(map(str, codes)) + "m").encode())
        elif r < 0.70:
            out.append(rng.choice(["\x1b7", "\x1b8", "\x1bD", "\x1bE", "\x1bM", "\x1bH", "\x1b[3g", "\x1b[g", "\x1b=", "\x1b>", "\x1b(0", "\x1b)B"]).encode())
        elif r < 0.76:
            out.append("".join(rng.choice(WIDE + COMBINING + ["a", "b"]) for _ in range(rng.randint(1, 8))).encode())
        elif r < 0.80:
            out.append(rng.choice(ODD).encode() + b"tail")
        elif r < 0.83:
            out.append(rng.choice(BROKEN_UTF8) + b"x")
        elif r < 0.86:
            title = "".join(rng.choice("tile ") for _ in range(rng.randint(0, 8)))
            end = rng.choice(["\x07", "\x1b\\"])
            out.append(f"\x1b]{rng.choice('012')};{title}{end}".encode())
        elif r < 0.87:
            out.append(rng.choice([b"\x1b#8", b"\x1bc", b"\x1b[?25$p", b"\x1b[>c", b"\x1b[1\x08;2H", b"\x1b[5\x18x"]))
        else:
            # Whole lines that scroll: the bulk path.
            for _ in range(rng.randint(1, 30)):
                text = "".join(rng.choice("lorem ipsum ") for _ in range(rng.randint(0, 130)))
                if rng.random() < 0.3:
                    text = f"\x1b[{rng.choice([0, 1, 31, 44])}m" + text + "\x1b[0m"
                out.append((text + "\r\n").encode())
    return b"".join(out)


def pyte_screen(data: bytes, columns: int, lines: int) -> pyte.Screen:
    screen = pyte.Screen(columns, lines)
    pyte.ByteStream(screen).feed(data)
    return screen


def screen_diff(term: Terminal, ref: pyte.Screen) -> str | None:
    """First difference between the core and a stock pyte screen (every cell, cursor, modes), or None."""
    core = term.screen
    if (core.cursor.x, core.cursor.y) != (ref.cursor.x, ref.cursor.y):
        return f"cursor {(core.cursor.x, core.cursor.y)} != {(ref.cursor.x, ref.cursor.y)}"
    if core.cursor.attrs != ref.cursor.attrs:
        return f"cursor attrs {core.cursor.attrs} != {ref.cursor.attrs}"
    if core.cursor.hidden != ref.cursor.hidden:
        return "cursor visibility"
    if core.title != ref.title or core.icon_name != ref.icon_name:
        return f"title {core.title!r} != {ref.title!r}"
    if set(core.mode) != set(ref.mode):
        return f"modes {sorted(core.mode)} != {sorted(ref.mode)}"
    if core.margins != ref.margins:
        return f"margins {core.margins} != {ref.margins}"
    for y in range(ref.lines):
        for x in range(ref.columns):
            a, b = core.buffer[y][x], ref.buffer[y][x]
            if a != b:
                return f"cell ({x},{y}) {a} != {b}"
        # Which cells were written matters too: pyte's erase functions only touch written cells.
        if set(core.buffer[y]) != set(ref.buffer[y]):
            return f"written cells of line {y}: {sorted(core.buffer[y])} != {sorted(ref.buffer[y])}"
    if term.display != ref.display:
        return "display"
    return None


def feed_chunked(term: Terminal, data: bytes, rng: random.Random, max_chunk: int = 7) -> None:
    i = 0
    while i < len(data):
        n = rng.randint(1, max_chunk)
        term.feed(data[i : i + n])
        i += n


def state(term: Terminal) -> tuple[object, ...]:
    """Everything observable, for chunking comparisons (scrollback included)."""
    scr = term.screen
    cells = tuple(tuple(scr.buffer[y][x] for x in range(scr.columns)) for y in range(scr.lines))
    return (cells, term.cursor, scr.cursor.attrs, term.cursor_hidden, term.title, sorted(scr.mode),
            scr.margins, tuple(term.history), term.alternate_screen)
