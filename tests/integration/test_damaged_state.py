"""One container's unreadable or corrupt state never breaks ``ps``, the network listing or the other
containers, and that container can still be removed - with whatever still runs in its cgroup."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import ps, wait_for

pytestmark = pytest.mark.root


def _state_file(rroot: Path, name: str) -> Path:
    cid = (rroot / "names" / name).read_text().strip()
    return rroot / "containers" / cid / "state.json"


@pytest.mark.parametrize("damage", ["garbage", "empty", "wrong-shape", "unreadable"])
def test_a_damaged_state_is_listed_and_removable(cli, started, rroot: Path, damage: str) -> None:  # type: ignore[no-untyped-def]
    started("good", "sleep", "1000")
    bad = started("bad", "sleep", "1000")
    pid = ps(cli)["bad"]["pid"]
    state = _state_file(rroot, "bad")
    if damage == "garbage":
        state.write_text("garbage{")
    elif damage == "empty":
        state.write_text("")
    elif damage == "wrong-shape":
        state.write_text(json.dumps({"id": bad["id"], "spec": 5}))
    else:  # a folder where the file was: reading it fails with EISDIR
        state.unlink()
        state.mkdir()
    listed = ps(cli)
    assert listed["good"]["status"] == "running"
    assert listed["bad"]["status"] == "damaged" and "rustainer rm -f" in listed["bad"]["error"]
    table = cli("ps", "-a", check_rc=0).stdout
    assert "damaged" in table and "good" in table
    cli("network", "ls", check_rc=0)
    refused = cli("rm", "bad")
    assert refused.returncode == 125 and "use rm -f" in refused.stderr and len(refused.stderr.splitlines()) == 1
    cli("rm", "-f", "bad", check_rc=0)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the damaged container's PID 1 to end")
    assert set(ps(cli)) == {"good"}
    assert not (rroot / "names" / "bad").exists()
    cli("run", "--rm", "--name", "bad", "--", "true", check_rc=0)  # the name is free again
