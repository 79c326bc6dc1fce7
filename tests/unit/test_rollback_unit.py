"""The undo stack itself: newest first, every undo runs even when one fails, and the seam."""

from __future__ import annotations

import pytest

from rustainer.backend.errors import InjectedFault
from rustainer.backend.util.rollback import Rollback, fault


def test_undos_run_newest_first_and_all_of_them() -> None:
    done: list[str] = []
    undo = Rollback()
    undo.push("a", lambda: done.append("a"))
    undo.push("b", lambda: (_ for _ in ()).throw(OSError("b failed")))
    undo.push("c", lambda: done.append("c"))
    failed = undo.unwind()
    assert done == ["c", "a"]
    assert [(step, str(err)) for step, err in failed] == [("b", "b failed")]
    assert undo.steps() == [] and undo.unwind() == []


def test_drop_forgets_the_newest_of_a_step() -> None:
    done: list[int] = []
    undo = Rollback()
    undo.push("x", lambda: done.append(1))
    undo.push("x", lambda: done.append(2))
    undo.drop("x")
    undo.unwind()
    assert done == [1]


def test_the_fault_seam(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rustainer.backend.util import rollback

    monkeypatch.setattr(rollback, "_fired", False)
    monkeypatch.setattr(rollback, "_log", None)
    fault("cgroup")  # nothing asked for: nothing happens
    monkeypatch.setenv("RUSTAINER_FAULT", "cgroup")
    with pytest.raises(InjectedFault, match="injected fault at step 'cgroup'") as caught:
        fault("cgroup")
    assert caught.value.exit_code == 125
    fault("state")  # another step goes on
    fault("cgroup")  # once per process: an undo passing the same step again goes through
    log = tmp_path / "log"
    monkeypatch.setenv("RUSTAINER_FAULT", "list")
    monkeypatch.setenv("RUSTAINER_FAULT_LOG", str(log))
    fault("state")
    fault("go")
    assert log.read_text().split() == ["state", "go"]


def test_the_fault_list_survives_its_descriptor_being_closed_or_reused(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A process that closed its descriptors (and opened others in their place) since its last
    step still lists the next one in the log, and never writes into the file now at that number."""
    import os

    from rustainer.backend.util import rollback

    monkeypatch.setattr(rollback, "_log", None)
    log, other = tmp_path / "log", tmp_path / "other"
    monkeypatch.setenv("RUSTAINER_FAULT", "list")
    monkeypatch.setenv("RUSTAINER_FAULT_LOG", str(log))
    fault("one")
    assert rollback._log is not None
    fd = rollback._log[0]
    os.close(fd)
    reused = os.open(other, os.O_WRONLY | os.O_CREAT, 0o644)  # the lowest free number: the log's
    try:
        assert reused == fd
        fault("two")
    finally:
        os.close(reused)
    os.close(rollback._log[0])
    assert log.read_text().split() == ["one", "two"] and other.read_text() == ""
