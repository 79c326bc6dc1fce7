"""The image verbs end to end through the CLI: pull, images, run --image, rmi, prune, import, export."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import subprocess
import tarfile
from pathlib import Path

import pytest

from imagetools import Layout, need, sha, skopeo_push, tar_of

pytestmark = pytest.mark.root


def busybox_image(tmp_path: Path, busybox_rootfs: Path, registry, **config: object) -> str:  # type: ignore[no-untyped-def]
    layout = Layout(tmp_path / "bb-layout")
    top = tar_of([("etc", None), ("etc/motd", b"from the image\n"), ("tmp/.wh.gone", b"")])
    layout.tag("t", layout.image([tar_of(tree=busybox_rootfs), top], **config))  # type: ignore[arg-type]
    ref = f"{registry.host}/test/bb:1"
    skopeo_push(layout.folder, "t", ref)
    return ref


def test_pull_run_and_remove_an_image(cli, tmp_path: Path, busybox_rootfs: Path, registry) -> None:  # type: ignore[no-untyped-def]
    ref = busybox_image(tmp_path, busybox_rootfs, registry, env=["GREETING=hi", "PATH=/bin"],
                        entrypoint=["/bin/sh", "-c"], cmd=['echo "$GREETING"; pwd; id -u; cat /etc/motd'],
                        workdir="/work", user="1000:1000")
    pulled = cli("pull", "--insecure", ref, check_rc=0)
    assert pulled.stdout.startswith("sha256:") and pulled.stderr == ""  # quiet on a pipe
    listing = cli("images", check_rc=0).stdout
    assert f"{registry.host}/test/bb" in listing and "1" in listing
    out = cli("run", "--rm", "--image", ref, check_rc=0).stdout
    assert out.splitlines() == ["hi", "/work", "1000", "from the image"]
    out = cli("run", "--rm", "--image", ref, "-u", "0", "-w", "/", "--", "echo $GREETING-$(id -u)-$(pwd)",
              check_rc=0).stdout
    assert out.strip() == "hi-0-/"
    cli("run", "--name", "keep", "--image", ref, "-u", "0", "--", "touch /tmp/x", check_rc=0)
    refused = cli("rmi", ref)
    assert refused.returncode == 125 and "used by container keep" in refused.stderr
    assert refused.stderr.count("\n") == 1
    cli("rm", "keep", check_rc=0)
    removed = cli("rmi", ref, check_rc=0).stdout
    assert "Deleted: sha256:" in removed
    assert json.loads(cli("images", "--format", "json", check_rc=0).stdout) == []


def test_bad_input_is_one_line_and_exit_125(cli, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    cases = [("pull", "Not/Lower"), ("pull", "--insecure", "127.0.0.1:1/none/here:1"),
             ("pull", "x@sha256:123"), ("run", "--rm", "--image", "nosuch:1", "--", "true"),
             ("image", "import", "/nonexistent/file.tar"), ("image", "inspect", "nosuch"),
             ("rmi", "nosuch"), ("image", "export", "nosuch", "/tmp/never.tar"),
             ("pull", "--insecure", "--platform", "linux", "127.0.0.1:1/x")]
    for args in cases:
        proc = cli(*args)
        assert proc.returncode == 125, (args, proc.stderr)
        assert proc.stderr.startswith("rustainer: ") and proc.stderr.count("\n") == 1, (args, proc.stderr)
    assert not Path("/tmp/never.tar").exists()
    images = rroot / "images"
    assert not images.exists() or not list((images / "records").iterdir())


def test_an_unreadable_archive_leaves_nothing_behind(cli, tmp_path: Path, rroot: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(gzip.compress(b"this is not a tar archive" * 100)[:200])
    proc = cli("image", "import", str(bad), "bad:1")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1
    assert list((rroot / "images/layers").iterdir()) == [] and list((rroot / "images/tmp").iterdir()) == []
    assert list((rroot / "images/records").iterdir()) == []


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.xz", ".tar.zst"])
def test_import_a_rootfs_tarball_and_run_it(suffix: str, cli, tmp_path: Path, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    raw = tar_of(tree=busybox_rootfs)
    data = {".tar": lambda d: d, ".tar.gz": gzip.compress, ".tar.xz": lzma.compress}.get(suffix)
    if data is None:
        import zstandard

        packed = zstandard.ZstdCompressor().compress(raw)
    else:
        packed = data(raw)
    path = tmp_path / f"rootfs{suffix}"
    path.write_bytes(packed)
    image_id = cli("image", "import", str(path), "local/bb:v1", check_rc=0).stdout.strip()
    assert image_id.startswith("sha256:")
    assert cli("run", "--rm", "--image", "local/bb:v1", "--", "echo", "ok", check_rc=0).stdout == "ok\n"
    inspected = json.loads(cli("image", "inspect", "local/bb:v1", check_rc=0).stdout)[0]
    assert inspected["RootFS"]["diff_ids"] == [sha(raw)] and inspected["RepoTags"] == ["docker.io/local/bb:v1"]


def test_export_is_an_oci_archive_skopeo_reads_and_import_gives_it_back(cli, tmp_path: Path, rroot: Path,
                                                                       busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    need("skopeo", "umoci")
    layout = Layout(tmp_path / "src")
    layout.tag("t", layout.image([tar_of(tree=busybox_rootfs), tar_of([("etc/.wh.passwd", b""), ("x", b"x")])],
                                 cmd=["/bin/sh"]))
    image_id = cli("image", "import", str(layout.folder), "ex/app:2", check_rc=0).stdout.strip()
    out = tmp_path / "out.tar"
    cli("image", "export", "ex/app:2", str(out), check_rc=0)
    info = json.loads(subprocess.run(["skopeo", "--insecure-policy", "inspect", f"oci-archive:{out}"],
                                     capture_output=True, text=True, check=True).stdout)
    assert len(info["Layers"]) == 2
    # umoci unpacks what skopeo copied out of our archive: the same tree as our own merged layers
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"oci-archive:{out}",
                    f"oci:{tmp_path / 'copy'}:t"], check=True, capture_output=True)
    subprocess.run(["umoci", "unpack", "--image", f"{tmp_path / 'copy'}:t", str(tmp_path / "bundle")],
                   check=True, capture_output=True)
    rootfs = tmp_path / "bundle/rootfs"
    assert (rootfs / "x").read_text() == "x" and not (rootfs / "etc/passwd").exists()
    assert (rootfs / "bin/busybox").is_file()
    # and back: a fresh root imports the archive as the same image, name kept
    cli("rmi", "ex/app:2", check_rc=0)
    again = cli("image", "import", str(out), check_rc=0).stdout.strip()
    assert again == image_id
    assert "ex/app" in cli("images", check_rc=0).stdout


def test_import_a_docker_save_archive(cli, tmp_path: Path, busybox_rootfs: Path) -> None:  # type: ignore[no-untyped-def]
    layer = tar_of(tree=busybox_rootfs)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/echo", "saved"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in ((f"{sha(config)[7:]}.json", config), ("abc/layer.tar", layer),
                           ("manifest.json", json.dumps([{"Config": f"{sha(config)[7:]}.json",
                                                          "RepoTags": ["saved/one:3"],
                                                          "Layers": ["abc/layer.tar"]}]).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    path = tmp_path / "saved.tar"
    path.write_bytes(buf.getvalue())
    assert cli("image", "import", str(path), check_rc=0).stdout.strip() == sha(config)
    assert cli("run", "--rm", "--image", "saved/one:3", check_rc=0).stdout == "saved\n"


def test_a_docker_save_archive_made_by_skopeo_imports_and_runs(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                busybox_rootfs: Path) -> None:
    """The archive `docker save` writes, as skopeo writes it (docker-archive:), from an OCI layout."""
    need("skopeo")
    layout = Layout(tmp_path / "src")
    layout.tag("t", layout.image([tar_of(tree=busybox_rootfs), tar_of([("etc/greeting", b"hi from skopeo\n")])],
                                 cmd=["/bin/cat", "/etc/greeting"]))
    archive = tmp_path / "saved.tar"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", f"oci:{layout.folder}:t",
                    f"docker-archive:{archive}:skopeo/saved:7"], check=True, capture_output=True)
    cli("image", "import", str(archive), check_rc=0)
    assert "skopeo/saved" in cli("images", check_rc=0).stdout
    assert cli("run", "--rm", "--image", "skopeo/saved:7", check_rc=0).stdout == "hi from skopeo\n"
