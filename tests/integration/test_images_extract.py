"""Layer extraction against hostile tarballs built here: each is refused or contained, the host untouched.

Root: the extractor makes device nodes, sets owners and ``trusted.*`` attributes.
"""

from __future__ import annotations

import gzip
import io
import lzma
import os
import stat
import tarfile
from pathlib import Path

import pytest

from rustainer.backend.errors import LayerError
from rustainer.backend.images.extract import extract

pytestmark = pytest.mark.root


class Tar:
    """Builds a tar in memory entry by entry, whatever the entries say."""

    def __init__(self, fmt: int = tarfile.PAX_FORMAT) -> None:
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=fmt)

    def add(self, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", *, link: str = "",
            mode: int = 0o644, uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000,
            pax: dict[str, str] | None = None, dev: tuple[int, int] = (0, 0)) -> Tar:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode, info.uid, info.gid, info.mtime = kind, link, mode, uid, gid, mtime
        info.devmajor, info.devminor = dev
        if pax:
            info.pax_headers = pax
        if kind == tarfile.REGTYPE:
            info.size = len(data)
            self.tf.addfile(info, io.BytesIO(data))
        else:
            self.tf.addfile(info)
        return self

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A stand-in for the host's files, outside the layer: must never change."""
    h = tmp_path / "host"
    h.mkdir()
    (h / "victim").write_text("original\n")
    (h / "victim").chmod(0o600)
    return h


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "layer"
    d.mkdir()
    return d


def run(data: bytes, dest: Path, **kw: int) -> str:
    return extract(io.BytesIO(data), str(dest), **kw).diff_id  # type: ignore[arg-type]


def untouched(host: Path) -> None:
    assert sorted(os.listdir(host)) == ["victim"]
    assert (host / "victim").read_text() == "original\n"
    st = os.lstat(host / "victim")
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0


def test_a_plain_layer_with_owners_modes_links_and_devices(dest: Path) -> None:
    import hashlib

    data = (Tar().add("bin", tarfile.DIRTYPE, mode=0o755)
            .add("bin/tool", data=b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000)
            .add("bin/alias", tarfile.LNKTYPE, link="bin/tool")
            .add("bin/abs", tarfile.SYMTYPE, link="/etc/passwd")
            .add("dev/null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3))
            .add("dev/fifo", tarfile.FIFOTYPE, mode=0o640)
            .add("etc/caps", data=b"x", pax={"SCHILY.xattr.user.note": "kept",
                                              "SCHILY.xattr.trusted.overlay.redirect": "/etc"})
            .add("./etc/", tarfile.DIRTYPE, mode=0o750, mtime=1_234_567_890).bytes())
    digest = run(data, dest)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    tool = os.lstat(dest / "bin/tool")
    assert stat.S_IMODE(tool.st_mode) == 0o4755 and (tool.st_uid, tool.st_gid) == (1000, 1000)
    assert tool.st_nlink == 2 and os.lstat(dest / "bin/alias").st_ino == tool.st_ino
    assert os.readlink(dest / "bin/abs") == "/etc/passwd"  # verbatim, never resolved
    null = os.lstat(dest / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISFIFO(os.lstat(dest / "dev/fifo").st_mode)
    assert os.getxattr(dest / "etc/caps", "user.note") == b"kept"
    assert "trusted.overlay.redirect" not in os.listxattr(dest / "etc/caps")
    etc = os.lstat(dest / "etc")
    assert stat.S_IMODE(etc.st_mode) == 0o750 and etc.st_mtime == 1_234_567_890


def test_whiteouts_and_opaque_folders_become_overlayfs_ones(dest: Path) -> None:
    run(Tar().add("etc/.wh.motd").add("var/cache/.wh..wh..opq").add("var/cache/new", data=b"n")
        .add(".wh..wh.plnk", tarfile.DIRTYPE).bytes(), dest)
    motd = os.lstat(dest / "etc/motd")
    assert stat.S_ISCHR(motd.st_mode) and motd.st_rdev == 0
    assert os.getxattr(dest / "var/cache", "trusted.overlay.opaque") == b"y"
    assert (dest / "var/cache/new").read_bytes() == b"n"
    assert not (dest / ".wh..wh.plnk").exists()


@pytest.mark.parametrize("name", ["/HOST/victim", "../victim", "a/../../victim", "./../host/victim"])
def test_absolute_and_dotdot_names_are_refused(name: str, dest: Path, host: Path) -> None:
    name = name.replace("/HOST", str(host))
    with pytest.raises(LayerError, match="refused"):
        run(Tar().add(name, data=b"pwned").bytes(), dest)
    untouched(host)


def test_a_pax_path_cannot_smuggle_dotdot(dest: Path, host: Path) -> None:
    with pytest.raises(LayerError, match="refused"):
        run(Tar().add("innocent", data=b"pwned", pax={"path": "../host/victim"}).bytes(), dest)
    untouched(host)


def test_writing_through_a_symlinked_folder_is_refused(dest: Path, host: Path) -> None:
    # docker CVE-2014-6407 / GNU tar CVE-2025-45582: a symlink to a host folder, then a file "inside" it
    for target in (str(host), "../host", "../../../../../../" + str(host)):
        with pytest.raises(LayerError, match="symlink"):
            run(Tar().add("escape", tarfile.SYMTYPE, link=target).add("escape/victim", data=b"pwned").bytes(), dest)
        untouched(host)


def test_a_folder_swapped_for_a_symlink_later_in_the_layer_is_refused(dest: Path, host: Path) -> None:
    data = (Tar().add("d", tarfile.DIRTYPE).add("d/a", data=b"1").add("d", tarfile.SYMTYPE, link=str(host))
            .add("d/victim", data=b"pwned").bytes())
    with pytest.raises(LayerError, match="symlink"):
        run(data, dest)
    untouched(host)


def test_a_file_over_a_symlink_replaces_the_link_and_never_writes_through_it(dest: Path, host: Path) -> None:
    victim = str(host / "victim")
    run(Tar().add("f", tarfile.SYMTYPE, link=victim).add("f", data=b"mine", mode=0o777)
        .add("d", tarfile.SYMTYPE, link=str(host)).add("d", tarfile.DIRTYPE, mode=0o777)  # CVE-2021-32760
        .add("h", tarfile.SYMTYPE, link=victim).add("h", tarfile.CHRTYPE, dev=(1, 3)).bytes(), dest)
    assert (dest / "f").read_bytes() == b"mine" and not (dest / "f").is_symlink()
    assert (dest / "d").is_dir() and not (dest / "d").is_symlink()
    untouched(host)


@pytest.mark.parametrize("link", ["/HOST/victim", "../host/victim", "escape/victim"])
def test_hard_links_resolve_inside_the_layer_only(link: str, dest: Path, host: Path) -> None:
    link = link.replace("/HOST", str(host))
    with pytest.raises(LayerError):
        run(Tar().add("escape", tarfile.SYMTYPE, link=str(host)).add("h", tarfile.LNKTYPE, link=link).bytes(), dest)
    untouched(host)
    assert os.lstat(host / "victim").st_nlink == 1


def test_a_hard_link_to_an_absolute_name_inside_the_layer_works(dest: Path) -> None:
    run(Tar().add("bin/busybox", data=b"bb").add("bin/sh", tarfile.LNKTYPE, link="/bin/busybox").bytes(), dest)
    assert os.lstat(dest / "bin/sh").st_ino == os.lstat(dest / "bin/busybox").st_ino


def test_a_hard_link_to_a_symlink_links_the_symlink_itself(dest: Path, host: Path) -> None:
    run(Tar().add("s", tarfile.SYMTYPE, link=str(host / "victim")).add("h", tarfile.LNKTYPE, link="s").bytes(), dest)
    assert os.readlink(dest / "h") == str(host / "victim")
    assert os.lstat(host / "victim").st_nlink == 1
    untouched(host)


def test_hard_links_to_folders_are_refused(dest: Path) -> None:
    with pytest.raises(LayerError, match="folder"):
        run(Tar().add("d", tarfile.DIRTYPE).add("h", tarfile.LNKTYPE, link="d").bytes(), dest)


def test_decompression_bombs_stop_at_the_limit(dest: Path) -> None:
    big = Tar().add("zeros", data=bytes(20 << 20)).bytes()
    bomb = gzip.compress(big)
    assert len(bomb) < 100_000
    with pytest.raises(LayerError, match="limit"):
        run(bomb, dest, max_bytes=4 << 20)


def test_too_many_entries_stop_at_the_limit(dest: Path) -> None:
    t = Tar()
    for i in range(50):
        t.add(f"f{i}")
    with pytest.raises(LayerError, match="entries"):
        run(t.bytes(), dest, max_entries=20)


def test_sparse_files_count_against_the_limit(dest: Path) -> None:
    # a GNU sparse file claiming 1 GiB with one byte of data
    info = tarfile.TarInfo("sparse")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 0
    info.sparse = [(0, 0)]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        info.type = tarfile.REGTYPE
        info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "sparse",
                            "GNU.sparse.realsize": str(1 << 30)}
        body = b"1\n0\n0\n".ljust(512, b"\0")
        info.size = len(body)
        tf.addfile(info, io.BytesIO(body))
    with pytest.raises(LayerError, match="limit"):
        run(raw.getvalue(), dest, max_bytes=1 << 20)


@pytest.mark.parametrize("compress", [gzip.compress, lzma.compress, "zstd"])
def test_compressed_layers_are_recognised_by_their_magic(compress: object, dest: Path) -> None:
    import hashlib

    data = Tar().add("hello", data=b"world").bytes()
    if compress == "zstd":
        import zstandard

        packed = zstandard.ZstdCompressor().compress(data)
    else:
        packed = compress(data)  # type: ignore[operator]
    assert run(packed, dest) == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (dest / "hello").read_bytes() == b"world"


@pytest.mark.parametrize("junk", [b"\x1f\x8b\x08garbage" * 10, b"not a tar at all" * 64,
                                  gzip.compress(b"x" * 5000)[:-12]])
def test_corrupt_streams_are_errors(junk: bytes, dest: Path) -> None:
    with pytest.raises(LayerError):
        run(junk, dest)


def test_device_and_unknown_entry_types(dest: Path) -> None:
    run(Tar().add("blk", tarfile.BLKTYPE, dev=(7, 0), mode=0o600).bytes(), dest)
    assert stat.S_ISBLK(os.lstat(dest / "blk").st_mode)
    with pytest.raises(LayerError, match="unsupported"):
        run(Tar().add("weird", b"Z").bytes(), dest)


def test_a_whiteout_of_dotdot_is_refused(dest: Path, host: Path) -> None:
    with pytest.raises(LayerError):
        run(Tar().add("a/.wh...").bytes(), dest)
    untouched(host)
