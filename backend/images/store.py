"""The image store under ``$RUSTAINER_ROOT/images`` (root only, mode 0700).

```
images/
  blobs/sha256/<hex>     verified blobs by digest: manifests, configs, layer tarballs as pulled
  layers/<hex>/diff/     each layer unpacked once, by its diff_id (the uncompressed tar's digest),
                         used as an overlayfs lower layer by every container of every image with it
  layers/<hex>/link      the layer's short name in l/
  l/<26 chars>           -> ../layers/<hex>/diff: short links keep a many-layer mount's options
                         inside one page (containers/storage's trick), ~28 bytes a layer
  records/<hex>.json     one image, by its id (the digest of its config)
  records/<hex>.run      what run --image needs of it, read without json (see runfile.py)
  names.json             {"docker.io/library/alpine:3.20": "sha256:<image id>"}
  names.idx              the same as lines "NAME ID" (runfile.py)
  locks/                 flock files: one per blob and per layer, meta (metadata writes) and gc
  tmp/                   downloads and unpacks in progress (partial downloads are resumed)
```

Digests are checked (``sha256:`` and 64 lowercase hex digits) before they become a path. Locks:
a pull holds ``gc`` shared for its whole run and one exclusive lock per blob or layer while it
fetches or unpacks it (two pulls of images sharing layers fetch each layer once, and wait for each
other rather than write the same folder); metadata changes take ``meta``; ``rmi`` and ``prune``
take ``gc`` exclusively, so they never remove a layer a pull is about to reference, and they keep
every layer any remaining image references. A container's start holds ``gc`` shared until its state
(which names its image) is written, and ``rmi`` refuses an image a container uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil

from rustainer.backend.errors import ImageError, ImageInUseError, ImageNotFoundError, LayerError
from rustainer.backend.images.reference import (
    check_digest,
    digest_hex,
    looks_like_id,
    parse_reference,
    sha256_digest,
)
from rustainer.backend.util.jsonfile import write_durably

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any, BinaryIO

LAYER_LINK_DIR = "l"


class LayerInfo:
    """A layer of an image as the store records it."""

    def __init__(self, digest: str, media_type: str, size: int, diff_id: str) -> None:
        self.digest, self.media_type, self.size, self.diff_id = digest, media_type, size, diff_id

    def to_json(self) -> dict[str, object]:
        return {"digest": self.digest, "media_type": self.media_type, "size": self.size, "diff_id": self.diff_id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerInfo:
        return cls(check_digest(data["digest"]), str(data["media_type"]), int(data["size"]),
                   check_digest(data["diff_id"]))


class ImageRecord:
    """One image: its id (the config's digest), manifest, config and layers (bottom first)."""

    def __init__(self, id: str, manifest: str, manifest_media_type: str, layers: list[LayerInfo],
                 created: str = "", platform: str = "", names: tuple[str, ...] = ()) -> None:
        self.id, self.manifest, self.manifest_media_type = id, manifest, manifest_media_type
        self.layers, self.created, self.platform, self.names = layers, created, platform, names

    @property
    def config(self) -> str:
        return self.id

    @property
    def short_id(self) -> str:
        return digest_hex(self.id)[:12]

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "manifest": self.manifest, "manifest_media_type": self.manifest_media_type,
                "layers": [layer.to_json() for layer in self.layers], "created": self.created,
                "platform": self.platform}

    @classmethod
    def from_json(cls, data: dict[str, Any], names: tuple[str, ...] = ()) -> ImageRecord:
        return cls(check_digest(data["id"]), check_digest(data["manifest"]), str(data["manifest_media_type"]),
                   [LayerInfo.from_json(x) for x in data["layers"]], str(data.get("created", "")),
                   str(data.get("platform", "")), names)


class Store:
    def __init__(self, state_root: str) -> None:
        self.root = os.path.join(state_root, "images")

    # -- paths and set-up ----------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def ensure(self) -> Store:
        if not os.path.isdir(self.path("tmp")):
            os.makedirs(os.path.dirname(self.root), mode=0o711, exist_ok=True)
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            os.chmod(self.root, 0o700)
            for sub in ("blobs/sha256", "layers", LAYER_LINK_DIR, "records", "locks", "tmp"):
                os.makedirs(self.path(sub), mode=0o700, exist_ok=True)
        return self

    def exists(self) -> bool:
        return os.path.isdir(self.path("records"))

    @contextlib.contextmanager
    def lock(self, name: str, *, shared: bool = False) -> Iterator[None]:
        import fcntl

        fd = os.open(self.path("locks", name + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def pulling(self) -> contextlib.AbstractContextManager[None]:
        """Held (shared) while blobs and layers are added or an image is put to use: no gc meanwhile."""
        return self.lock("gc", shared=True)

    def tmpdir(self, prefix: str = "work-") -> str:
        import tempfile

        return tempfile.mkdtemp(prefix=prefix, dir=self.path("tmp"))

    # -- blobs ---------------------------------------------------------------------------------------
    def blob_path(self, digest: str) -> str:
        return self.path("blobs", "sha256", digest_hex(digest))

    def has_blob(self, digest: str) -> bool:
        return os.path.isfile(self.blob_path(digest))

    def read_blob(self, digest: str) -> bytes:
        try:
            with open(self.blob_path(digest), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise ImageError(f"blob {digest} is missing from the image store") from None
        if sha256_digest(data) != digest:
            raise ImageError(f"blob {digest} in the image store is corrupt (its content has another digest)")
        return data

    def put_blob(self, data: bytes, expected: str | None = None) -> str:
        digest = sha256_digest(data)
        if expected is not None and digest != check_digest(expected):
            raise ImageError(f"blob digest mismatch: expected {expected}, got {digest}")
        if not self.has_blob(digest):
            write_durably(self.blob_path(digest), data)
        return digest

    def ingest(self, tmp_path: str, digest: str, size: int | None = None) -> None:
        """Move a downloaded file into the blob store after checking its size and sha256."""
        import hashlib

        h = hashlib.sha256()
        total = 0
        with open(tmp_path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                total += len(chunk)
        if size is not None and total != size:
            raise ImageError(f"blob {digest}: {total} bytes where {size} were announced")
        if "sha256:" + h.hexdigest() != check_digest(digest):
            raise ImageError(f"blob {digest} failed verification: its content has the digest sha256:{h.hexdigest()}")
        os.chmod(tmp_path, 0o600)
        os.replace(tmp_path, self.blob_path(digest))

    # -- layers --------------------------------------------------------------------------------------
    def layer_root(self, diff_id: str) -> str:
        return self.path("layers", digest_hex(diff_id))

    def has_layer(self, diff_id: str) -> bool:
        return os.path.isfile(os.path.join(self.layer_root(diff_id), "link"))

    def layer_link(self, diff_id: str) -> str:
        with open(os.path.join(self.layer_root(diff_id), "link")) as f:
            short = f.read().strip()
        if not (len(short) == 26 and short.isalnum()):
            raise ImageError(f"layer {diff_id} has a broken short link in the image store")
        return short

    def unpack_layer(self, stream: BinaryIO, diff_id: str | None, what: str) -> tuple[str, int]:
        """Unpack a (compressed) layer tar once; -> (diff_id, uncompressed size).

        With ``diff_id`` given (from the image's config) the stream's digest must match it; the layer
        then is looked for (and locked) first so concurrent pulls unpack it once. Without it (an
        import), the layer is unpacked, then kept unless the store has it already.
        """
        if diff_id is not None:
            with self.lock("layer-" + digest_hex(diff_id)):
                if self.has_layer(diff_id):
                    return diff_id, self._layer_size(diff_id)
                return self._unpack(stream, diff_id, what)
        return self._unpack(stream, None, what)

    def _layer_size(self, diff_id: str) -> int:
        try:
            with open(os.path.join(self.layer_root(diff_id), "size")) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    def _unpack(self, stream: BinaryIO, diff_id: str | None, what: str) -> tuple[str, int]:
        from rustainer.backend.images.extract import extract

        work = self.tmpdir("layer-")
        try:
            diff = os.path.join(work, "diff")
            os.mkdir(diff, 0o755)
            result = extract(stream, diff, what=what)
            if diff_id is not None and result.diff_id != diff_id:
                raise LayerError(f"{what}: its uncompressed content has the digest {result.diff_id}, but the "
                                 f"image's config says {diff_id}")
            found = result.diff_id
            if diff_id is None:
                with self.lock("layer-" + digest_hex(found)):
                    if not self.has_layer(found):
                        self._install(work, found, result.size)
            else:
                self._install(work, found, result.size)
            return found, result.size
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _install(self, work: str, diff_id: str, size: int) -> None:
        import base64

        final = self.layer_root(diff_id)
        if os.path.lexists(final):  # a crashed unpack's leftovers: no link file, so not a layer
            shutil.rmtree(final)
        while True:
            short = base64.b32encode(os.urandom(16)).decode()[:26]
            link = self.path(LAYER_LINK_DIR, short)
            try:
                os.symlink(f"../layers/{digest_hex(diff_id)}/diff", link)
                break
            except FileExistsError:
                continue
        with open(os.path.join(work, "size"), "w") as f:
            f.write(str(size))
        with open(os.path.join(work, "link"), "w") as f:
            f.write(short)
        os.chmod(work, 0o700)
        os.rename(work, final)

    def lower_dirs(self, image: ImageRecord) -> list[str]:
        """The image's layers as overlay lower dirs, top first, relative to the store (``l/ID``)."""
        out: list[str] = []
        for layer in reversed(image.layers):
            if not self.has_layer(layer.diff_id):
                raise ImageError(f"layer {layer.diff_id} of image {image.short_id} is missing from the store: "
                                 "pull or import the image again")
            out.append(f"{LAYER_LINK_DIR}/{self.layer_link(layer.diff_id)}")
        return out

    # -- images --------------------------------------------------------------------------------------
    def _names(self) -> dict[str, str]:
        try:
            with open(self.path("names.json")) as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        return {str(k): check_digest(v) for k, v in data.items()}

    def _write_names(self, names: dict[str, str]) -> None:
        write_durably(self.path("names.json"), json.dumps(names, indent=1, sort_keys=True).encode())
        write_durably(self.path("names.idx"), "".join(f"{n} {i}\n" for n, i in sorted(names.items())).encode())

    def _write_run(self, record: ImageRecord) -> None:
        """The run file (``runfile.py``) of a recorded image: layers and config without json."""
        from rustainer.backend.images.runfile import encode

        conf = self.config(record).get("config")
        data = encode(record.id, self.lower_dirs(record), conf if isinstance(conf, dict) else {})
        write_durably(self.path("records", digest_hex(record.id) + ".run"), data)

    def _unlink_record(self, image_id: str) -> None:
        os.unlink(self.path("records", digest_hex(image_id) + ".json"))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path("records", digest_hex(image_id) + ".run"))

    def add_image(self, record: ImageRecord, names: list[str]) -> ImageRecord:
        """Record an image whose blobs and layers are all in the store, and point ``names`` at it."""
        for layer in record.layers:
            if not self.has_layer(layer.diff_id):
                raise ImageError(f"layer {layer.diff_id} is not in the store")
        with self.lock("meta"):
            self._write_run(record)
            write_durably(self.path("records", digest_hex(record.id) + ".json"),
                         json.dumps(record.to_json(), indent=1).encode())
            all_names = self._names()
            for name in names:
                all_names[name] = record.id
            self._write_names(all_names)
        return self.get(record.id)

    def tag(self, image: ImageRecord, name: str) -> None:
        name = parse_reference(name).name
        with self.lock("meta"):
            all_names = self._names()
            all_names[name] = image.id
            self._write_names(all_names)

    def _record(self, image_id: str, names: dict[str, str]) -> ImageRecord:
        try:
            with open(self.path("records", digest_hex(image_id) + ".json")) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ImageNotFoundError(f"no such image: {image_id}") from None
        own = tuple(sorted(n for n, i in names.items() if i == image_id))
        return ImageRecord.from_json(data, own)

    def get(self, image_id: str) -> ImageRecord:
        return self._record(check_digest(image_id), self._names())

    def images(self) -> list[ImageRecord]:
        if not self.exists():
            return []
        names = self._names()
        out = []
        for entry in sorted(os.listdir(self.path("records"))):
            if entry.endswith(".json") and len(entry) == 69:
                try:
                    out.append(self._record("sha256:" + entry[:-5], names))
                except (ImageError, ValueError, KeyError):
                    continue
        return out

    def resolve(self, text: str) -> ImageRecord:
        """An image by name (``alpine``, ``alpine:3.20``, ``host:5000/x@sha256:...``) or id (prefix)."""
        if not self.exists():
            raise ImageNotFoundError(f"no such image: {text}")
        names = self._names()
        image_id = self._lookup_name(text, names)
        if image_id is not None:
            return self._record(image_id, names)
        if looks_like_id(text):
            prefix = text.removeprefix("sha256:")
            matches = [e[:-5] for e in os.listdir(self.path("records"))
                       if e.endswith(".json") and e.startswith(prefix)]
            if len(matches) == 1:
                return self._record("sha256:" + matches[0], names)
            if len(matches) > 1:
                raise ImageError(f"image id prefix {text!r} is ambiguous: give more digits")
        raise ImageNotFoundError(f"no such image: {text} (see 'rustainer images'; 'rustainer pull' fetches one)")

    @staticmethod
    def _lookup_name(text: str, names: dict[str, str]) -> str | None:
        if text in names:
            return names[text]
        try:
            ref = parse_reference(text)
        except ImageError:
            return None
        if ref.digest is not None:
            # name@digest: a pulled-by-digest name, or any image of that repository with that manifest
            return names.get(ref.name) or names.get(f"{ref.repository}@{ref.digest}")
        return names.get(ref.name)

    def remove(self, text: str, in_use: Callable[[], dict[str, str]]) -> list[str]:
        """docker's rmi: a name that is one of several is only untagged; otherwise the image goes,
        unless a container uses it (``in_use``: image id -> a container's name). -> what was done."""
        with self.lock("gc"):
            image = self.resolve(text)
            done: list[str] = []
            names = self._names()
            own = [n for n, i in names.items() if i == image.id]
            by_name = self._lookup_name(text, names) is not None
            if by_name and len(own) > 1:
                name = next(n for n in own if self._lookup_name(text, {n: image.id}))
                with self.lock("meta"):
                    names = self._names()
                    names.pop(name, None)
                    self._write_names(names)
                return [f"Untagged: {name}"]
            users = in_use()
            if image.id in users:
                raise ImageInUseError(f"image {text} is used by container {users[image.id]}: remove the "
                                      "container first ('rustainer rm')")
            with self.lock("meta"):
                names = self._names()
                for name in [n for n, i in names.items() if i == image.id]:
                    names.pop(name)
                    done.append(f"Untagged: {name}")
                self._write_names(names)
                self._unlink_record(image.id)
            done.append(f"Deleted: {image.id}")
            self._gc()
            return done

    def prune(self, in_use: Callable[[], dict[str, str]], *, all: bool = False) -> list[str]:
        """Remove images without a name (``all``: every image no container uses), then unused layers."""
        with self.lock("gc"):
            if not self.exists():
                return []
            users = in_use()
            names = self._names()
            named = set(names.values())
            removed = []
            with self.lock("meta"):
                for image in self.images():
                    if image.id in users or (image.id in named and not all):
                        continue
                    for name in [n for n, i in names.items() if i == image.id]:
                        names.pop(name)
                    self._unlink_record(image.id)
                    removed.append(f"Deleted: {image.id}")
                self._write_names(names)
            self._gc()
            return removed

    def _gc(self) -> None:
        """Remove layers, blobs and short links no image references (``gc`` held exclusively)."""
        keep_layers: set[str] = set()
        keep_blobs: set[str] = set()
        for image in self.images():
            keep_blobs.update((image.id, image.manifest))
            for layer in image.layers:
                keep_layers.add(digest_hex(layer.diff_id))
                keep_blobs.add(layer.digest)
        keep_hex = {digest_hex(b) for b in keep_blobs}
        for entry in os.listdir(self.path("blobs", "sha256")):
            if entry not in keep_hex:
                os.unlink(self.path("blobs", "sha256", entry))
        for entry in os.listdir(self.path("layers")):
            if entry not in keep_layers:
                shutil.rmtree(self.path("layers", entry), ignore_errors=True)
        for entry in os.listdir(self.path(LAYER_LINK_DIR)):
            link = self.path(LAYER_LINK_DIR, entry)
            if not os.path.exists(link):
                os.unlink(link)
        for entry in os.listdir(self.path("tmp")):
            tmp = self.path("tmp", entry)
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        for entry in os.listdir(self.path("locks")):
            if entry.startswith(("layer-", "blob-")):
                with contextlib.suppress(OSError):
                    os.unlink(self.path("locks", entry))

    def disk_usage(self, image: ImageRecord) -> int:
        return sum(self._layer_size(layer.diff_id) for layer in image.layers)

    def config(self, image: ImageRecord) -> dict[str, Any]:
        data = json.loads(self.read_blob(image.id))
        if not isinstance(data, dict):
            raise ImageError(f"image {image.short_id} has a malformed config")
        return data
