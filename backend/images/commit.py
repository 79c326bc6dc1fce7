"""``commit``: a container's changes as one new layer on top of its image.

The changes are the overlay's upper folder (reached through a directory descriptor: see
rootfs/layer.py). It is written as an OCI layer: new and changed files, folders, links, FIFOs and
devices as they are; an overlayfs whiteout (a 0/0 character device) as an empty ``.wh.NAME``; an
opaque folder (``trusted.overlay.opaque=y``) as the folder plus ``.wh..wh..opq``. The walk is done
one directory descriptor at a time with ``O_NOFOLLOW``: what the container wrote is data, a symlink
is stored, never followed, and a file is read only if what was opened is the regular file that was
listed. The layer is gzip-compressed (reproducibly: sorted entries, no gzip timestamp), stored as a
blob, then unpacked into the store by the same extractor as a pull (so it is checked like any
stranger's layer), and the image is recorded with the base's config plus the new diff_id.

A rootfs-folder container (``run --rootfs DIR``) has no image: its commit is an image of two layers,
the folder (walked the same way, from the host) and the changes. The host view cannot be committed.

Files whose names begin with ``.wh.`` cannot be expressed in a layer (the format reserves them for
whiteouts): they are left out. Sockets have no tar form and are left out too.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
import time
import zlib

from rustainer.backend.errors import ImageError
from rustainer.backend.images.reference import parse_reference
from rustainer.backend.images.store import ImageRecord, LayerInfo, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_KEPT_XATTRS = ("user.", "security.capability")
_CHUNK = 1 << 20


class _LayerWriter:
    """A file object for ``tarfile`` (stream mode): hashes the tar (the diff_id), gzips it into
    ``out`` and hashes that (the blob's digest)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.tar_hash = hashlib.sha256()
        self.blob_hash = hashlib.sha256()
        self.tar_size = self.size = 0
        self.gzip = zlib.compressobj(6, zlib.DEFLATED, 31)  # a gzip header without a timestamp

    def write(self, data: bytes) -> int:
        self.tar_hash.update(data)
        self.tar_size += len(data)
        self._out(self.gzip.compress(data))
        return len(data)

    def _out(self, data: bytes) -> None:
        if data:
            self.blob_hash.update(data)
            self.size += len(data)
            self.out.write(data)

    def close(self) -> None:
        self._out(self.gzip.flush())


class _Exactly:
    """``size`` bytes of an open file for ``tarfile``: a file that shrinks while it is read (the
    container still runs) is padded with zeros, one that grows is cut at the size announced."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.left = fd, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = os.read(self.fd, n) if n else b""
        if len(data) < n:
            data += b"\0" * (n - len(data))
            os.lseek(self.fd, 0, os.SEEK_END)
        self.left -= len(data)
        return data


def _xattrs(fd: int) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        return out
    for attr in sorted(names):
        if attr.startswith("trusted.overlay.") and attr in ("trusted.overlay.redirect", "trusted.overlay.metacopy"):
            raise ImageError("the container's writable layer uses overlayfs redirects or metacopy, which a "
                             "layer cannot express: commit is not possible on this kernel's settings")
        if attr.startswith(_KEPT_XATTRS):
            try:
                out["SCHILY.xattr." + attr] = os.getxattr(fd, attr).decode("utf-8", "surrogateescape")
            except OSError:
                continue
    return out


class _Walker:
    """Writes the tree under a directory descriptor to a tar stream, never following a link."""

    def __init__(self, tf: tarfile.TarFile, *, overlay: bool, skip: frozenset[str]) -> None:
        self.tf, self.overlay, self.skip = tf, overlay, skip
        self.links: dict[tuple[int, int], str] = {}

    def _info(self, name: str, st: os.stat_result) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = int(st.st_mtime)
        return info

    def walk(self, dir_fd: int, prefix: str) -> None:
        for entry in sorted(os.listdir(dir_fd)):
            path = prefix + entry
            if path in self.skip or entry.startswith(".wh."):
                continue  # a name the layer format reserves for whiteouts cannot be stored as a file
            try:
                st = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we walk (the container still runs)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                self._dir(dir_fd, entry, path, st)
            elif stat.S_ISREG(mode):
                self._file(dir_fd, entry, path, st)
            elif stat.S_ISLNK(mode):
                info = self._info(path, st)
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(entry, dir_fd=dir_fd)
                self.tf.addfile(info)
            elif stat.S_ISCHR(mode) and st.st_rdev == 0 and self.overlay:
                parent, _, base = path.rpartition("/")
                info = self._info((parent + "/" if parent else "") + ".wh." + base, st)
                info.mode = 0o644
                self.tf.addfile(info)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
                info = self._info(path, st)
                info.type = (tarfile.CHRTYPE if stat.S_ISCHR(mode) else
                             tarfile.BLKTYPE if stat.S_ISBLK(mode) else tarfile.FIFOTYPE)
                if not stat.S_ISFIFO(mode):
                    info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
                self.tf.addfile(info)
            # sockets have no tar form: skipped, as docker and tar do

    def _dir(self, dir_fd: int, entry: str, path: str, st: os.stat_result) -> None:
        try:
            fd = os.open(entry, _DIR, dir_fd=dir_fd)
        except (FileNotFoundError, NotADirectoryError):
            return  # replaced while we walk
        try:
            info = self._info(path + "/", st)
            info.type = tarfile.DIRTYPE
            info.pax_headers = _xattrs(fd)
            self.tf.addfile(info)
            if self.overlay:
                try:
                    opaque = os.getxattr(fd, "trusted.overlay.opaque") == b"y"
                except OSError:
                    opaque = False
                if opaque:
                    marker = self._info(path + "/.wh..wh..opq", st)
                    marker.mode = 0o644
                    self.tf.addfile(marker)
            self.walk(fd, path + "/")
        finally:
            os.close(fd)

    def _file(self, dir_fd: int, entry: str, path: str, st: os.stat_result) -> None:
        if st.st_nlink > 1 and (st.st_dev, st.st_ino) in self.links:
            info = self._info(path, st)
            info.type, info.linkname = tarfile.LNKTYPE, self.links[(st.st_dev, st.st_ino)]
            self.tf.addfile(info)
            return
        try:
            fd = os.open(entry, _FILE, dir_fd=dir_fd)
        except (FileNotFoundError, OSError):
            return  # gone, or replaced by a link (ELOOP) while we walk
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                return  # swapped for something else between the listing and the open
            info = self._info(path, now)
            info.size = now.st_size
            info.pax_headers = _xattrs(fd)
            self.tf.addfile(info, _Exactly(fd, now.st_size))  # type: ignore[arg-type]
            if now.st_nlink > 1:
                self.links[(now.st_dev, now.st_ino)] = path
        finally:
            os.close(fd)


def write_layer(store: Store, dir_fd: int, *, overlay: bool, skip: frozenset[str] = frozenset(),
                what: str) -> LayerInfo:
    """The tree under ``dir_fd`` as a gzip layer blob in the store, unpacked into its layers."""
    work = store.tmpdir("commit-")
    try:
        tmp = os.path.join(work, "layer.tar.gz")
        with open(tmp, "wb") as out:
            writer = _LayerWriter(out)
            with tarfile.open(fileobj=writer, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
                _Walker(tf, overlay=overlay, skip=skip).walk(dir_fd, "")
            writer.close()
        digest = "sha256:" + writer.blob_hash.hexdigest()
        diff_id = "sha256:" + writer.tar_hash.hexdigest()
        if not store.has_blob(digest):
            store.ingest(tmp, digest, writer.size)
        with open(store.blob_path(digest), "rb") as f:
            store.unpack_layer(f, diff_id, what)
        return LayerInfo(digest, LAYER_GZIP, writer.size, diff_id)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def commit(store: Store, *, upper_fd: int, name: str, base: ImageRecord | None, rootfs: str | None,
           container: str, skip: frozenset[str] = frozenset()) -> ImageRecord:
    """Record a new image ``name``: ``base``'s layers (or the ``rootfs`` folder as a first layer) and
    the changes under ``upper_fd`` on top. The store's ``gc`` lock is held shared meanwhile."""
    from rustainer.backend.images.archive import OCI_MANIFEST, _manifest
    from rustainer.backend.images.pull import host_platform
    from rustainer.backend.images.reference import sha256_digest

    ref = parse_reference(name)
    if ref.digest is not None:
        raise ImageError(f"commit names an image by tag, not by digest: {name}")
    store.ensure()
    with store.pulling():
        if base is not None:
            base = store.get(base.id)  # still there (a container's image cannot be removed)
            config: dict[str, Any] = store.config(base)
            layers = list(base.layers)
        else:
            assert rootfs is not None
            _os, arch = host_platform().split("/")[:2]
            config = {"architecture": arch, "os": "linux",
                      "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                                 "Cmd": ["/bin/sh"]},
                      "rootfs": {"type": "layers", "diff_ids": []},
                      "history": [{"created": _now(), "created_by": f"rustainer commit: the folder {rootfs}"}]}
            try:
                folder = os.open(rootfs, _DIR)
            except OSError as err:
                raise ImageError(f"cannot read the container's rootfs folder {rootfs}: {err.strerror}") from err
            try:
                layers = [write_layer(store, folder, overlay=False, what=f"the rootfs folder {rootfs}")]
            finally:
                os.close(folder)
            config["rootfs"]["diff_ids"].append(layers[0].diff_id)
        top = write_layer(store, upper_fd, overlay=True, skip=skip, what=f"the changes of container {container}")
        layers.append(top)
        rootfs_conf = config.get("rootfs") if isinstance(config.get("rootfs"), dict) else None
        diff_ids = [x.diff_id for x in layers]
        config["rootfs"] = {**(rootfs_conf or {}), "type": "layers", "diff_ids": diff_ids}
        config["created"] = _now()
        history = config.get("history")
        config["history"] = [*(history if isinstance(history, list) else []), {"created": config["created"],
                                        "created_by": f"rustainer commit {container}"}]
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = store.put_blob(config_bytes)
        manifest = _manifest(config_digest, len(config_bytes), layers)
        store.put_blob(manifest)
        platform = "/".join(p for p in (config.get("os"), config.get("architecture"), config.get("variant"))
                            if isinstance(p, str) and p)
        record = ImageRecord(config_digest, sha256_digest(manifest), OCI_MANIFEST, layers, config["created"],
                             platform)
        return store.add_image(record, [ref.name])
