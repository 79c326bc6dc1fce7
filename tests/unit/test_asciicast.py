"""The asciicast v2 encoding and the supervisor's recorder, without a container (no root)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rustainer.backend.errors import ProtocolError
from rustainer.backend.supervisor import protocol as P
from rustainer.backend.supervisor import recording
from rustainer.backend.supervisor.recording import Recorder
from rustainer.backend.terminal import asciicast


def test_header_and_events_are_asciicast_v2_lines() -> None:
    head = json.loads(asciicast.header(100, 30, 1700000000, env={"TERM": "xterm"}, title="web"))
    assert head == {"version": 2, "width": 100, "height": 30, "timestamp": 1700000000, "env": {"TERM": "xterm"},
                    "title": "web"}
    assert json.loads(asciicast.output_event(1.23456789, "a\x1b[0m\"é")) == [1.234568, "o", "a\x1b[0m\"é"]
    assert json.loads(asciicast.resize_event(2.0, 120, 40)) == [2.0, "r", "120x40"]
    assert asciicast.output_event(0, "x").endswith(b"\n") and b"\n" not in asciicast.output_event(0, "a\nb")[:-1]


def test_recorder_keeps_a_character_cut_between_reads_whole(tmp_path: Path) -> None:
    path = tmp_path / "r.cast"
    rec = Recorder(str(path), 24, 80, env={"TERM": "xterm"}, title="t")
    rec.output(b"caf\xc3")  # the read ended inside a character
    rec.flush()
    rec.output(b"\xa9 ")
    rec.output(b"ok\xff")  # not UTF-8 at all: U+FFFD, as asciinema does
    assert rec.pending
    rec.flush()
    rec.resize(30, 100)
    rec.output(b"\xe2\x82")  # cut at the very end: completed with U+FFFD when the recording closes
    rec.close()
    head, events = asciicast.parse(path.read_bytes())
    assert (head["width"], head["height"], head["title"]) == (80, 24, "t")
    assert [(kind, text) for _, kind, text in events] == [("o", "caf"), ("o", "é ok\ufffd"), ("r", "100x30"),
                                                         ("o", "\ufffd")]
    assert [t for t, _, _ in events] == sorted(t for t, _, _ in events)


def test_recorder_is_full_past_its_cap_and_never_follows_a_symlink(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(recording, "MAX_BYTES", 4096)
    rec = Recorder(str(tmp_path / "r.cast"), 24, 80, env={}, title="t")
    rec.output(b"x" * 5000)
    rec.flush()
    assert rec.full
    rec.close()
    (tmp_path / "target").write_text("keep")
    (tmp_path / "link.cast").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        Recorder(str(tmp_path / "link.cast"), 24, 80, env={}, title="t")
    assert (tmp_path / "target").read_text() == "keep"


def test_record_and_reply_frames_are_checked() -> None:
    client = P.Decoder(P.FROM_CLIENT)
    assert client.feed(P.frame(P.RECORD, b"1") + P.frame(P.RECORD, b"0")) == [(P.RECORD, b"1"), (P.RECORD, b"0")]
    for bad in (P.frame(P.RECORD, b"x"), P.frame(P.RECORD, b""), P.frame(P.RECORD, b"11"), P.reply(True, "x")):
        with pytest.raises(ProtocolError):
            P.Decoder(P.FROM_CLIENT).feed(bad)
    sup = P.Decoder(P.FROM_SUPERVISOR)
    [(kind, payload)] = sup.feed(P.reply(False, "cannot record: No space left on device"))
    assert kind == P.REPLY and P.parse_reply(payload) == (False, "cannot record: No space left on device")
    assert P.parse_reply(P.reply(True, "/x/recording.cast")[5:]) == (True, "/x/recording.cast")
    with pytest.raises(ProtocolError):
        P.Decoder(P.FROM_SUPERVISOR).feed(P.frame(P.REPLY, b"2oops"))
