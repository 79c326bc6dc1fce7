"""``rustainer commit``: a running container's changes (new, changed, deleted files, opaque folders)
become one layer on top of its image; ``run --image`` of the new image sees them, and the image
exports as an OCI archive skopeo reads."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from imagetools import Layout, need, tar_of

pytestmark = pytest.mark.root

CHANGES = ("echo new > /new; echo changed > /etc/motd; rm /keep; rm -r /data; mkdir /data; "
           "echo fresh > /data/c; ln -s /etc/shadow /evil; mkfifo /fifo; echo x > /tmp/.wh.trick; "
           "mkdir -p /deep/er; echo d > /deep/er/f; ln /new /hard")
CHECK = ("cat /new /etc/motd /data/c; ls /data; test -e /keep || echo keep-gone; readlink /evil; "
         "test -p /fifo && echo fifo; test -e /tmp/.wh.trick || echo reserved-name-left-out; cat /deep/er/f; cat /hard; cat /etc/base")


def base_image(cli, tmp_path: Path, busybox_rootfs: Path) -> str:  # type: ignore[no-untyped-def]
    layout = Layout(tmp_path / "base")
    top = tar_of([("etc/motd", b"from the image\n"), ("etc/base", b"base\n"), ("keep", b"k\n"),
                  ("data", None), ("data/a", b"a"), ("data/b", b"b")])
    layout.tag("t", layout.image([tar_of(tree=busybox_rootfs), top], cmd=["/bin/sh", "-c", "echo base-cmd"]))
    cli("image", "import", str(layout.folder), "base/img:1", check_rc=0)
    return "base/img:1"


def test_commit_then_run_sees_changes_and_deletions(cli, tmp_path: Path, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                     rroot: Path) -> None:
    base = base_image(cli, tmp_path, busybox_rootfs)
    cli("run", "--detach", "--name", "box", "--image", base, "--", "sleep", "1000", check_rc=0)
    try:
        cli("exec", "box", "sh", "-c", CHANGES, check_rc=0)
        # the container sees its writable layer's hiding place as an empty folder it cannot uncover
        hidden = cli("exec", "box", "sh", "-c", "ls -A /dev/.rustainer-layer; umount /dev/.rustainer-layer")
        assert hidden.stdout == "" and hidden.returncode != 0
        image_id = cli("commit", "box", "new/img:2", check_rc=0).stdout.strip()
        assert image_id.startswith("sha256:")
        # the container goes on, unchanged (its cover still in place)
        assert cli("exec", "box", "cat", "/new", check_rc=0).stdout == "new\n"
        assert cli("exec", "box", "ls", "-A", "/dev/.rustainer-layer", check_rc=0).stdout == ""
    finally:
        cli("rm", "-f", "box")
    out = cli("run", "--rm", "--image", "new/img:2", "--", "sh", "-c", CHECK, check_rc=0).stdout
    assert out.splitlines() == ["new", "changed", "fresh", "c", "keep-gone", "/etc/shadow", "fifo", "reserved-name-left-out", "d",
                                "new", "base"]
    # the base config stays (its Cmd), the history says what was done
    assert cli("run", "--rm", "--image", "new/img:2", check_rc=0).stdout == "base-cmd\n"
    inspected = json.loads(cli("image", "inspect", "new/img:2", check_rc=0).stdout)[0]
    assert len(inspected["Layers"]) == 3 and len(inspected["RootFS"]["diff_ids"]) == 3
    # the new layer as stored: the deletion a whiteout, the re-made folder opaque, the link verbatim
    top = rroot / "images/layers" / inspected["RootFS"]["diff_ids"][-1][7:] / "diff"
    assert os.stat(top / "keep", follow_symlinks=False).st_rdev == 0
    assert os.getxattr(top / "data", "trusted.overlay.opaque") == b"y"
    assert os.readlink(top / "evil") == "/etc/shadow"
    assert not (top / "dev" / ".rustainer-layer").exists()
    # exported, skopeo reads it; umoci's unpack shows the same changes
    need("skopeo", "umoci")
    archive = tmp_path / "new.tar"
    cli("image", "export", "new/img:2", str(archive), check_rc=0)
    info = json.loads(subprocess.run(["skopeo", "--insecure-policy", "inspect", f"oci-archive:{archive}"],
                                     capture_output=True, text=True, check=True).stdout)
    assert len(info["Layers"]) == 3
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"oci-archive:{archive}",
                    f"oci:{tmp_path / 'copy'}:t"], check=True, capture_output=True)
    subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'copy'}:t", str(tmp_path / "bundle")],
                   check=True, capture_output=True)
    rootfs = tmp_path / "bundle/rootfs"
    assert (rootfs / "new").read_text() == "new\n" and not (rootfs / "keep").exists()
    assert sorted(os.listdir(rootfs / "data")) == ["c"]
    # the base stays in use by the new image's layers: removing the new image keeps the base whole
    cli("rmi", "new/img:2", check_rc=0)
    assert cli("run", "--rm", "--image", base, "--", "cat", "/keep", check_rc=0).stdout == "k\n"


def test_commit_of_a_rootfs_folder_container(cli, busybox_rootfs: Path, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    cli("run", "--detach", "--name", "folder", "--rootfs", str(busybox_rootfs), "--network", "bridge", "--",
        "sleep", "1000", check_rc=0)
    try:
        cli("exec", "folder", "sh", "-c", "echo hello > /hello; rm /etc/group", check_rc=0)
        cli("commit", "folder", "from/folder", check_rc=0)
    finally:
        cli("rm", "-f", "folder")
    inspected = json.loads(cli("image", "inspect", "from/folder", check_rc=0).stdout)[0]
    assert len(inspected["Layers"]) == 2 and inspected["RepoTags"] == ["docker.io/from/folder:latest"]
    out = cli("run", "--rm", "--image", "from/folder", "--", "sh", "-c",
              "cat /hello; test -e /etc/group || echo no-group; test -s /etc/hosts || echo no-hosts",
              check_rc=0).stdout
    assert out.splitlines() == ["hello", "no-group", "no-hosts"]
    assert (busybox_rootfs / "etc/group").exists()  # the folder itself was never changed


def test_commit_refusals_are_one_line(cli, tmp_path: Path, busybox_rootfs: Path, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    base = base_image(cli, tmp_path, busybox_rootfs)
    cli("run", "--detach", "--name", "host", "--", "sleep", "1000", check_rc=0)
    cli("run", "--name", "ended", "--image", base, "--", "true", check_rc=0)
    try:
        cases = [("commit", "host", "x:1"), ("commit", "ended", "x:1"), ("commit", "nosuch", "x:1"),
                 ("commit", "ended", "Bad/Name"), ("commit", "ended")]
        for args in cases:
            proc = cli(*args)
            assert proc.returncode == 125, (args, proc.stderr)
            assert proc.stderr.startswith("rustainer: ") and proc.stderr.count("\n") == 1, (args, proc.stderr)
        assert "host view" in cli("commit", "host", "x:1").stderr
        assert "not running" in cli("commit", "ended", "x:1").stderr
    finally:
        cli("rm", "-f", "host", "ended")
    names = [n for i in json.loads(cli("images", "--format", "json", check_rc=0).stdout) for n in i["names"]]
    assert names == ["docker.io/base/img:1"]
    assert os.listdir(rroot / "images/tmp") == []
