"""reconcile(): a running entry whose processes are gone becomes exited, unless its owner lives on."""

from __future__ import annotations

import os
from pathlib import Path

from rustainer.backend.container.cleanup import reconcile
from rustainer.backend.container.liveness import process_start
from rustainer.backend.container.state import RUNNING, StateStore
from rustainer.backend.spec import ContainerSpec


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _running(store: StateStore, **owner: object):  # type: ignore[no-untyped-def]
    state = store.create(ContainerSpec(name="c"))
    return store.update(state, status=RUNNING, pid=_dead_pid(), **owner)


def test_an_entry_whose_owner_lives_is_left_to_the_owner(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    store.ensure()
    state = _running(store, owner_pid=os.getpid(), owner_start=process_start(os.getpid()))
    assert reconcile(store, state).status == RUNNING


def test_a_ghost_becomes_exited_and_says_why(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    store.ensure()
    # same pid as a live process, other start time: a reused pid is not the owner
    state = _running(store, owner_pid=os.getpid(), owner_start=1)
    after = reconcile(store, state)
    assert after.status == "exited" and after.exit_code == 137 and "lost" in (after.error or "")
    assert store.load(state.id).status == "exited"


def test_after_a_reboot_running_entries_are_exited(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    store.ensure()
    state = _running(store, owner_pid=os.getpid(), owner_start=process_start(os.getpid()), boot_id="old-boot")
    after = reconcile(store, state)
    assert after.status == "exited" and "rebooted" in (after.error or "")


def test_an_end_the_owner_recorded_after_our_read_is_kept(tmp_path: Path) -> None:
    # The race a CI run caught: `ps` read the entry as running, the supervisor then recorded the exit
    # (code 3) and exited, and `ps` - seeing neither the container nor its owner - overwrote the
    # record with "lost" and 137. Here the stale copy is what `ps` read; the owner is gone.
    store = StateStore(str(tmp_path))
    store.ensure()
    stale = _running(store, owner_pid=_dead_pid(), owner_start=1)
    recorded = store.update(stale, status="exited", pid=None, exit_code=3)
    after = reconcile(store, stale)
    assert after == recorded and store.load(stale.id) == recorded


def test_an_entry_removed_meanwhile_is_not_written_again(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path))
    store.ensure()
    stale = _running(store, owner_pid=_dead_pid(), owner_start=1)
    store.delete(stale)  # its owner ended it and removed it (--rm)
    after = reconcile(store, stale)
    assert after.status == "exited" and after.pid is None
    assert not os.path.exists(store.container_dir(stale.id))
