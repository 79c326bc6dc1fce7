"""asciicast v2, asciinema's recording format: the encoding, and a reader for checks.

A file is one JSON object per line: first the header (``version`` 2, the terminal's ``width`` and
``height``, when it began as a Unix ``timestamp``, an ``env`` with TERM and SHELL, a ``title``),
then one event per line, ``[seconds since the start, "o", text]`` for output and
``[seconds, "r", "COLSxROWS"]`` for a resize. Text is UTF-8; bytes that are not (a program writing
Latin-1, or a character cut between two reads) must be decoded with an incremental decoder, so a
character split across events is kept whole (see :class:`OutputDecoder`).

Pure functions and one small stateful decoder: the supervisor's recorder (supervisor/recording.py)
does the timing and the file; these know only the format.
"""

from __future__ import annotations

import codecs
import json

VERSION = 2


def header(width: int, height: int, timestamp: int, *, env: dict[str, str] | None = None,
           title: str | None = None) -> bytes:
    """The first line of a recording."""
    data: dict[str, object] = {"version": VERSION, "width": width, "height": height, "timestamp": timestamp}
    if env:
        data["env"] = env
    if title:
        data["title"] = title
    return json.dumps(data, ensure_ascii=False).encode() + b"\n"


def output_event(seconds: float, text: str) -> bytes:
    """One output event line (``text`` already decoded). Non-ASCII characters are written as \\u
    escapes: JSON's encoder is twice as fast that way on the ASCII that dominates a terminal."""
    return json.dumps([round(seconds, 6), "o", text]).encode() + b"\n"


def resize_event(seconds: float, cols: int, rows: int) -> bytes:
    return json.dumps([round(seconds, 6), "r", f"{cols}x{rows}"]).encode() + b"\n"


class OutputDecoder:
    """Bytes -> text for output events: invalid UTF-8 becomes U+FFFD (as asciinema does), and a
    multi-byte character cut at the end of one chunk is completed by the next."""

    __slots__ = ("_decoder",)

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def decode(self, data: bytes, final: bool = False) -> str:
        return self._decoder.decode(data, final)


def parse(data: bytes) -> tuple[dict[str, object], list[tuple[float, str, str]]]:
    """(header, events) of a recording; ValueError if it is not asciicast v2. For checks and tests."""
    lines = data.decode().splitlines()
    if not lines:
        raise ValueError("an empty recording")
    head = json.loads(lines[0])
    if not isinstance(head, dict) or head.get("version") != VERSION:
        raise ValueError("not an asciicast v2 header")
    events: list[tuple[float, str, str]] = []
    for line in lines[1:]:
        if not line.strip():
            continue
        seconds, kind, text = json.loads(line)
        events.append((float(seconds), str(kind), str(text)))
    return head, events
