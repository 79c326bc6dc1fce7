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
    fault("cgroup")  # nothing asked for: nothing happens
    monkeypatch.setenv("RUSTAINER_FAULT", "cgroup")
    with pytest.raises(InjectedFault, match="injected fault at step 'cgroup'") as caught:
        fault("cgroup")
    assert caught.value.exit_code == 125
    fault("state")  # another step goes on
    log = tmp_path / "log"
    monkeypatch.setenv("RUSTAINER_FAULT", "list")
    monkeypatch.setenv("RUSTAINER_FAULT_LOG", str(log))
    fault("state")
    fault("go")
    assert log.read_text().split() == ["state", "go"]
