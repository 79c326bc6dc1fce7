"""State survives a crash or power loss: every file is fsync'ed before it is renamed into place, and
its folder after (so that the rename itself is on disk), for containers, names and networks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rustainer.backend.container.state import RUNNING, StateStore
from rustainer.backend.network.store import NetworkStore
from rustainer.backend.spec import ContainerSpec


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """("fsync", what the descriptor is) and ("rename", destination), in the order they happen."""
    seen: list[tuple[str, str]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        seen.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def rename(src: str, dst: str) -> None:
        real_rename(src, dst)
        seen.append(("rename", os.path.abspath(dst)))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    return seen


def assert_durable(events: list[tuple[str, str]]) -> None:
    renames = [i for i, (kind, _) in enumerate(events) if kind == "rename"]
    assert renames, events
    for i in renames:
        dst = events[i][1]
        before = [what for kind, what in events[:i] if kind == "fsync"]
        after = [what for kind, what in events[i + 1:] if kind == "fsync"]
        # the temporary file that became dst was synced before the rename...
        assert any(os.path.dirname(what) == os.path.dirname(dst) and what.endswith(".tmp") for what in before), (dst, events)
        # ...and its folder after it
        assert os.path.dirname(dst) in after, (dst, events)


def test_container_state_and_name_are_written_durably(tmp_path: Path, events: list[tuple[str, str]]) -> None:
    store = StateStore(str(tmp_path))
    state = store.create(ContainerSpec(name="durable"))
    state = store.update(state, status=RUNNING, pid=1)
    assert_durable(events)
    assert {what for kind, what in events if kind == "rename"} == {
        os.path.join(store.container_dir(state.id), "state.json"), os.path.join(store.names, "durable")}
    # the new container's own folder is on disk too: the folder holding it was synced after mkdir
    assert ("fsync", store.containers) in events
    assert store.load(state.id).status == RUNNING
    assert not [p for p in Path(store.container_dir(state.id)).iterdir() if p.name.endswith(".tmp")]


def test_network_records_are_written_durably_and_their_leases_atomically(tmp_path: Path,
                                                                         events: list[tuple[str, str]]) -> None:
    """A network's record survives a power loss; its leases need not (no member survives one), so
    they are renamed into place without fsyncs, and the record is not rewritten for a lease."""
    store = NetworkStore(str(tmp_path))
    store.ensure()
    store.save({"name": "n1", "subnet": "10.0.0.0/24", "leases": {}})
    record, leases = store.path("n1"), store.leases_path("n1")
    assert_durable([e for e in events if e != ("rename", leases)])
    assert [what for kind, what in events if kind == "rename"] == [record, leases]
    assert not [what for kind, what in events if kind == "fsync" and what.startswith(leases)]
    del events[:]
    data = store.load("n1")
    assert data == {"name": "n1", "subnet": "10.0.0.0/24", "leases": {}, "cursor": 1}
    data["leases"]["10.0.0.2"] = {"id": "c" * 64, "name": "web", "hostname": "web"}
    store.save(data)
    assert events == [("rename", leases)]  # no fsync at all, and the record untouched
    assert store.load("n1") == data


def test_a_removed_on_exit_container_is_written_atomically_without_fsyncs(tmp_path: Path,
                                                                          events: list[tuple[str, str]]) -> None:
    """``--rm``: nothing of it outlives the next boot, so its start does not pay for fsyncs."""
    store = StateStore(str(tmp_path))
    state = store.create(ContainerSpec(name="brief", remove=True))
    state = store.update(state, status=RUNNING, pid=1)
    assert [kind for kind, _ in events] == ["rename", "rename", "rename"]  # state, name, state again
    assert store.load(state.id).status == RUNNING
    assert not [p for p in Path(store.container_dir(state.id)).iterdir() if p.name.endswith(".tmp")]


def test_threads_writing_one_file_at_once_never_collide(tmp_path: Path) -> None:
    """The image store's pulls write the same names file from several threads: each write gets its
    own temporary file (one per pid would be shared and one rename would fail), and none is left."""
    import threading

    from rustainer.backend.util.jsonfile import write_durably

    target = str(tmp_path / "names.json")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(50):
                write_durably(target, f"{n}-{i}".encode(), durable=i % 10 == 0)
        except BaseException as err:  # noqa: BLE001 - collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Path(target).read_text().endswith("-49")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["names.json"]
