"""Unpack one image layer, a tar stream written by a stranger, into a fresh folder.

Nothing here trusts the archive. ``tarfile`` only parses headers (in stream mode); every write is
ours, done relative to directory descriptors:

- every path is split into components and walked from the layer root one directory descriptor at a
  time with ``O_NOFOLLOW | O_DIRECTORY``: a symlink (or a file) where a directory is expected is
  refused, never followed, so an earlier entry cannot redirect a later one out of the root (docker
  CVE-2014-6407/9356, CVE-2017-14992 and GNU tar's CVE-2025-45582 were this);
- absolute names and ``..`` components are refused (docker CVE-2014-9357/9358);
- a file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` after whatever was at its name is removed,
  so nothing is ever written through an existing link;
- owner, mode and times are applied to descriptors of what was just made, never through a path
  (containerd CVE-2021-32760 chmod'ed a symlink's target): owner first, then the mode (a set-uid bit
  last, as chown clears it); symlinks get an owner and times only, and their target is stored
  verbatim;
- a hard link's target is resolved inside the layer root by the same walk (umoci CVE-2021-29136,
  and docker's hard links to host files);
- only ``user.*`` and ``security.capability`` extended attributes are kept: a ``trusted.overlay.*``
  in a layer could steer overlayfs (redirects, metacopy) and is dropped;
- block and character devices and FIFOs are made as the OCI image spec lists them; the store keeps
  layers in a root-only (0700) folder and containers mount them ``nodev``;
- the decompressed stream and the bytes written are both counted against a limit (decompression
  bombs, sparse files that claim terabytes), and so are the entries.

Whiteouts become overlayfs's own: ``.wh.NAME`` a 0/0 character device NAME, ``.wh..wh..opq``
the ``trusted.overlay.opaque=y`` attribute on its folder.

Decompression (gzip, zstd, xz, by magic bytes) runs here in the calling process, never in a chroot
or a container.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

from rustainer.backend.errors import LayerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

DEFAULT_MAX_BYTES = 32 << 30  # 32 GiB of uncompressed tar per layer
DEFAULT_MAX_ENTRIES = 2_000_000
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
_CHUNK = 1 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KEPT_XATTRS = ("user.", "security.capability")

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"


def max_bytes_default() -> int:
    """The per-layer limit: ``RUSTAINER_MAX_LAYER_SIZE`` (bytes, or 512M / 4G) or 32 GiB."""
    raw = os.environ.get("RUSTAINER_MAX_LAYER_SIZE")
    if not raw:
        return DEFAULT_MAX_BYTES
    from rustainer.backend.spec import parse_size

    return parse_size(raw)


class Counted(io.RawIOBase):
    """A read-only stream that hashes and counts what passes, failing past ``limit`` bytes."""

    def __init__(self, inner: BinaryIO, limit: int, what: str) -> None:
        self.inner, self.limit, self.what = inner, limit, what
        self.count = 0
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        data = self.inner.read(len(buf))
        n = len(data)
        self.count += n
        if self.count > self.limit:
            raise LayerError(f"{self.what} is larger than the limit of {self.limit} bytes uncompressed "
                             "(RUSTAINER_MAX_LAYER_SIZE)")
        self.hash.update(data)
        buf[:n] = data
        return n

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def compression_of(head: bytes) -> str:
    """'gzip', 'zstd', 'xz' or 'none' from the first bytes of a stream."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    if head.startswith(XZ_MAGIC):
        return "xz"
    return "none"


def decompressed(raw: BinaryIO) -> BinaryIO:
    """A stream of ``raw``'s uncompressed bytes (gzip, zstd and xz recognised by their magic)."""
    buffered = raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw)  # type: ignore[arg-type, type-var]
    kind = compression_of(buffered.peek(8)[:8])
    if kind == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    if kind == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        return io.BufferedReader(reader)  # type: ignore[arg-type, return-value]
    if kind == "xz":
        import lzma

        return lzma.LZMAFile(buffered, mode="rb")  # type: ignore[return-value]
    return buffered  # type: ignore[return-value]


class Result:
    """What an extraction found: the digest and size of the uncompressed tar, the entries."""

    def __init__(self, diff_id: str, size: int, entries: int) -> None:
        self.diff_id, self.size, self.entries = diff_id, size, entries


def _components(name: str, what: str) -> list[str]:
    if "\0" in name:
        raise LayerError(f"layer entry {name!r}: NUL in the name")
    if name.startswith("/"):
        raise LayerError(f"layer entry {name!r}: absolute paths are refused")
    parts = [p for p in name.split("/") if p and p != "."]
    if ".." in parts:
        raise LayerError(f"layer {what} {name!r}: '..' is refused")
    return parts


class _Extractor:
    def __init__(self, root_fd: int, max_bytes: int, max_entries: int) -> None:
        self.root_fd = root_fd
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.written = 0
        self.entries = 0
        self.dir_times: list[tuple[list[str], int]] = []
        self._cached: tuple[tuple[str, ...], int] | None = None

    def close(self) -> None:
        self._forget()

    def _forget(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    # -- walking -------------------------------------------------------------------------------------
    def _walk(self, parts: list[str], create: bool, name: str) -> int:
        """A new descriptor of directory ``parts`` under the root, never through a symlink."""
        fd = os.dup(self.root_fd)
        try:
            for part in parts:
                try:
                    nxt = os.open(part, _DIR, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise LayerError(f"layer entry {name!r}: {'/'.join(parts)!r} does not exist") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nxt = os.open(part, _DIR, dir_fd=fd)
                    os.fchmod(nxt, 0o755)
                except OSError:
                    raise LayerError(f"layer entry {name!r}: {'/'.join(parts)!r} is a symlink or not a folder; "
                                     "refusing to go through it") from None
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _parent(self, parts: list[str], name: str) -> int:
        """The (cached, not to be closed) descriptor of the folder holding ``parts[-1]``."""
        key = tuple(parts[:-1])
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        self._forget()
        fd = self._walk(list(key), True, name)
        self._cached = (key, fd)
        return fd

    def _clear(self, parent: int, name: str, keep_dir: bool = False) -> bool:
        """Remove what is at ``name`` (never following it); True if a folder was kept in place."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            import shutil  # the cached descriptor is ``parent`` itself, never inside what goes

            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)
        return False

    # -- entries -------------------------------------------------------------------------------------
    def entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        self.entries += 1
        if self.entries > self.max_entries:
            raise LayerError(f"layer has more than {self.max_entries} entries")
        parts = _components(m.name, "entry")
        if not parts:
            return  # the root itself: its metadata is the store's
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts, m.name)
            return
        parent = self._parent(parts, m.name)
        if m.isdir():
            if not self._clear(parent, base, keep_dir=True):
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = os.open(base, _DIR, dir_fd=parent)
            try:
                self._owner_mode(fd, m)
            finally:
                os.close(fd)
            self.dir_times.append((parts, int(m.mtime)))
            return
        self._clear(parent, base)
        if m.isreg():
            self._file(tf, m, parent, base)
        elif m.issym():
            os.symlink(m.linkname, base, dir_fd=parent)
            os.chown(base, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
            os.utime(base, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
        elif m.islnk():
            self._hardlink(m, parent, base)
        elif m.ischr() or m.isblk() or m.isfifo():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
            dev = os.makedev(m.devmajor, m.devminor) if not m.isfifo() else 0
            os.mknod(base, kind | 0o600, dev, dir_fd=parent)
            fd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
            try:
                # an O_PATH descriptor: chown and chmod through /proc/self/fd act on this very inode
                os.chown(f"/proc/self/fd/{fd}", m.uid, m.gid)
                os.chmod(f"/proc/self/fd/{fd}", m.mode & 0o7777)
            finally:
                os.close(fd)
            os.utime(base, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
        else:
            raise LayerError(f"layer entry {m.name!r}: unsupported entry type {m.type!r}")

    def _whiteout(self, parts: list[str], name: str) -> None:
        base = parts[-1]
        parent = self._parent(parts, name)
        if base == OPAQUE:
            fd = os.open(".", _DIR, dir_fd=parent)
            try:
                os.setxattr(fd, "trusted.overlay.opaque", b"y")
            finally:
                os.close(fd)
            return
        if base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk...): nothing for overlayfs
        hidden = base[len(WHITEOUT_PREFIX):]
        if hidden in ("", ".", ".."):
            raise LayerError(f"layer entry {name!r}: a whiteout of nothing")
        self._clear(parent, hidden)
        os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent)

    def _file(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parent: int, base: str) -> None:
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            src = tf.extractfile(m)
            if src is not None:
                while True:
                    chunk = src.read(_CHUNK)
                    if not chunk:
                        break
                    self.written += len(chunk)
                    if self.written > self.max_bytes:
                        raise LayerError(f"layer writes more than the limit of {self.max_bytes} bytes "
                                         "(RUSTAINER_MAX_LAYER_SIZE)")
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(fd, view):]
            self._owner_mode(fd, m)
            os.utime(fd, (m.mtime, m.mtime))
        finally:
            os.close(fd)

    def _owner_mode(self, fd: int, m: tarfile.TarInfo) -> None:
        os.fchown(fd, m.uid, m.gid)  # first: chown clears set-uid bits and file capabilities
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                attr = key[len("SCHILY.xattr."):]
                if attr.startswith(_KEPT_XATTRS):
                    os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
        os.fchmod(fd, m.mode & 0o7777)

    def _hardlink(self, m: tarfile.TarInfo, parent: int, base: str) -> None:
        target = _components(m.linkname.lstrip("/"), "hard link target")
        if not target:
            raise LayerError(f"layer entry {m.name!r}: a hard link to the layer root")
        tparent = self._walk(target[:-1], False, m.name)
        try:
            st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"layer entry {m.name!r}: a hard link to a folder")
            os.link(target[-1], base, src_dir_fd=tparent, dst_dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            raise LayerError(f"layer entry {m.name!r}: hard link target {m.linkname!r} is not in this layer") from None
        finally:
            os.close(tparent)

    def finish(self) -> None:
        """Folder times last: creating entries inside a folder changes its mtime."""
        self._forget()
        for parts, mtime in reversed(self.dir_times):
            try:
                fd = self._walk(parts, False, "/".join(parts))
            except LayerError:
                continue  # replaced or removed by a later entry
            try:
                os.utime(fd, (mtime, mtime))
            finally:
                os.close(fd)


def extract(stream: BinaryIO, dest: str, *, max_bytes: int | None = None,
            max_entries: int = DEFAULT_MAX_ENTRIES, what: str = "layer") -> Result:
    """Unpack the (possibly compressed) tar ``stream`` into the existing empty folder ``dest``.

    Returns the sha256 of the uncompressed tar (the layer's diff_id). On any refusal or error a
    LayerError is raised and ``dest`` is left as it is: the caller removes it (it is a fresh folder
    of the store's, not yet visible to anyone).
    """
    limit = max_bytes if max_bytes is not None else max_bytes_default()
    try:
        counted = Counted(decompressed(stream), limit, what)
    except (OSError, EOFError) as err:
        raise LayerError(f"{what}: cannot read it: {err}") from err
    root_fd = os.open(dest, _DIR)
    ex = _Extractor(root_fd, limit, max_entries)
    try:
        with tarfile.open(fileobj=io.BufferedReader(counted), mode="r|") as tf:
            for member in tf:
                try:
                    ex.entry(tf, member)
                except LayerError:
                    raise
                except (OSError, OverflowError, ValueError) as err:
                    detail = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
                    raise LayerError(f"{what}: entry {member.name!r}: {detail}") from err
            ex.finish()
            counted.drain()
    except LayerError:
        raise
    except (tarfile.TarError, EOFError, OSError, ValueError) as err:
        raise LayerError(f"{what} is not a valid tar archive: {err}") from err
    except Exception as err:  # decoders raise their own types (zstandard.ZstdError, lzma.LZMAError)
        raise LayerError(f"{what} cannot be decompressed: {err}") from err
    finally:
        ex.close()
        os.close(root_fd)
    return Result(counted.digest, counted.count, ex.entries)
