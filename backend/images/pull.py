"""``rustainer pull``: fetch an image from a registry into the store, every byte verified.

The manifest (by digest: verified; an index or manifest list: the entry for the wanted platform,
verified), then the config (verified), then the layers in parallel: each blob's size and sha256
are checked before it enters the store, and each layer's uncompressed digest is checked against the
config's ``diff_ids`` while it is unpacked. Only when all of that holds is the image recorded; a bad
blob raises and leaves nothing installed. Blobs and layers already verified stay in the store, so
an interrupted pull resumes there (and a partly downloaded blob resumes with an HTTP Range).
"""

from __future__ import annotations

import json
import os
import threading
import time

from rustainer.backend.errors import ImageError, RegistryError
from rustainer.backend.images.reference import Reference, check_digest, digest_hex
from rustainer.backend.images.registry import (
    DOCKER_MANIFEST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_MANIFEST,
    Registry,
)
from rustainer.backend.images.store import ImageRecord, LayerInfo, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

LAYER_TYPES = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    # non-distributable ("foreign") layers: fetched from the registry itself, never from their urls
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
PARALLEL = 3
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386",
         "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> str:
    machine = os.uname().machine
    arch = _ARCH.get(machine, machine)
    if machine == "armv7l":
        return "linux/arm/v7"
    if machine == "armv6l":
        return "linux/arm/v6"
    return f"linux/{arch}"


def parse_platform(text: str) -> tuple[str, str, str | None]:
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageError(f"invalid platform {text!r}: use OS/ARCH or OS/ARCH/VARIANT (e.g. linux/arm64)")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _descriptor(data: object, what: str) -> tuple[str, int, str]:
    """(digest, size, media type) of a descriptor, every field checked."""
    if not isinstance(data, dict):
        raise RegistryError(f"malformed {what} descriptor")
    digest = check_digest(data.get("digest"), f"{what} digest")
    size = data.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RegistryError(f"malformed size in the {what} descriptor")
    media_type = data.get("mediaType", "")
    return digest, size, media_type if isinstance(media_type, str) else ""


def choose_platform(index: dict[str, Any], platform: str) -> str:
    """The manifest digest for ``platform`` in an index / manifest list."""
    want_os, want_arch, want_variant = parse_platform(platform)
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise RegistryError("malformed image index: no manifests")
    offered = []
    fallback = None
    for entry in entries:
        p = entry.get("platform") if isinstance(entry, dict) else None
        if not isinstance(p, dict):
            continue
        os_, arch, variant = p.get("os"), p.get("architecture"), p.get("variant")
        offered.append("/".join(x for x in (os_, arch, variant) if isinstance(x, str) and x))
        if os_ == want_os and arch == want_arch:
            if want_variant is None or variant == want_variant:
                return _descriptor(entry, "manifest")[0]
            if fallback is None and variant is None:
                fallback = _descriptor(entry, "manifest")[0]
    if fallback is not None:
        return fallback
    raise ImageError(f"no image for platform {platform} (the image offers: {', '.join(offered) or 'none'})")


class Progress:
    """Bytes and rate on one line of a terminal, refreshed at most 10 times a second; quiet otherwise."""

    def __init__(self, out: TextIO | None, what: str) -> None:
        self.out, self.what = out, what
        self.total = 0
        self.done = 0
        self.layers = 0
        self.layers_done = 0
        self.start = time.monotonic()
        self.shown = 0.0
        self.lock = threading.Lock()

    def add(self, n: int) -> None:
        with self.lock:
            self.done += n
            now = time.monotonic()
            if self.out is not None and now - self.shown >= 0.1:
                self.shown = now
                self._show(now)

    def layer_done(self) -> None:
        with self.lock:
            self.layers_done += 1

    def _show(self, now: float) -> None:
        assert self.out is not None
        rate = self.done / max(now - self.start, 1e-3)
        self.out.write(f"\r\x1b[K{self.what}: layers {self.layers_done}/{self.layers}, "
                       f"{_mb(self.done)}/{_mb(self.total)} MB, {_mb(int(rate))} MB/s")
        self.out.flush()

    def finish(self) -> None:
        if self.out is not None:
            self.out.write("\r\x1b[K")
            self.out.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}"


def pull(store: Store, ref: Reference, *, platform: str | None = None, insecure: bool = False,
         credentials: tuple[str, str] | None = None, progress_out: TextIO | None = None) -> ImageRecord:
    """Pull ``ref`` into ``store``; -> the image record (named ``ref.name``)."""
    store.ensure()
    platform = platform or host_platform()
    parse_platform(platform)
    reg = Registry(ref.api_host, insecure=insecure, credentials=credentials)
    repo = ref.path
    data, media_type, digest = reg.manifest(repo, ref.selector)
    if media_type in INDEX_TYPES:
        chosen = choose_platform(_json(data, "image index"), platform)
        data, media_type, digest = reg.manifest(repo, chosen)
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(f"{ref}: unsupported manifest type {media_type!r}")
    manifest = _json(data, "manifest")
    config_digest, config_size, _ = _descriptor(manifest.get("config"), "config")
    layers_raw = manifest.get("layers")
    if not isinstance(layers_raw, list):
        raise RegistryError(f"{ref}: malformed manifest (no layers)")
    layers = [_descriptor(x, "layer") for x in layers_raw]
    for _d, _s, mt in layers:
        if mt not in LAYER_TYPES:
            raise RegistryError(f"{ref}: unsupported layer type {mt!r}")

    progress = Progress(progress_out, ref.name)
    progress.layers = len(layers)
    progress.total = sum(size for _d, size, _m in layers)
    with store.pulling():
        config = _fetch_small(store, reg, repo, config_digest, config_size)
        config_json = _json(config, "image config")
        diff_ids = (config_json.get("rootfs") or {}).get("diff_ids")
        if not isinstance(diff_ids, list) or len(diff_ids) != len(layers):
            raise RegistryError(f"{ref}: the config's diff_ids do not match the manifest's {len(layers)} layers")
        diff_ids = [check_digest(d, "diff_id") for d in diff_ids]
        _check_platform(config_json, platform, ref)

        infos = [LayerInfo(d, mt, size, diff_id) for (d, size, mt), diff_id in zip(layers, diff_ids, strict=True)]
        errors: list[BaseException] = []
        queue = list(infos)
        qlock = threading.Lock()

        def worker() -> None:
            while True:
                with qlock:
                    if errors or not queue:
                        return
                    info = queue.pop(0)
                try:
                    _fetch_layer(store, reg, repo, info, progress)
                    progress.layer_done()
                except BaseException as err:  # noqa: B036 - handed to the main thread
                    with qlock:
                        errors.append(err)
                    return

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(PARALLEL, len(infos)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        progress.finish()
        if errors:
            raise errors[0]
        store.put_blob(data, digest)
        record = ImageRecord(config_digest, digest, media_type, infos, str(config_json.get("created", "")),
                             _platform_of(config_json))
        return store.add_image(record, [ref.name])


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError:
        raise RegistryError(f"the {what} is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise RegistryError(f"the {what} is not a JSON object")
    return parsed


def _platform_of(config: dict[str, Any]) -> str:
    parts = [config.get("os"), config.get("architecture"), config.get("variant")]
    return "/".join(p for p in parts if isinstance(p, str) and p)


def _check_platform(config: dict[str, Any], platform: str, ref: Reference) -> None:
    want_os, want_arch, _ = parse_platform(platform)
    got_os, got_arch = config.get("os"), config.get("architecture")
    if got_os and got_arch and (got_os, got_arch) != (want_os, want_arch):
        raise ImageError(f"{ref} is for {got_os}/{got_arch}, not {platform} (give --platform {got_os}/{got_arch} "
                         "to pull it anyway)")


def _fetch_small(store: Store, reg: Registry, repo: str, digest: str, size: int) -> bytes:
    if size > (8 << 20):
        raise RegistryError(f"blob {digest} is too large for a config ({size} bytes)")
    if not store.has_blob(digest):
        _download(store, reg, repo, digest, size, None)
    return store.read_blob(digest)


def _download(store: Store, reg: Registry, repo: str, digest: str, size: int, progress: Progress | None) -> None:
    with store.lock("blob-" + digest_hex(digest)):
        if store.has_blob(digest):
            if progress is not None:
                progress.add(size)
            return
        partial = store.path("tmp", digest_hex(digest) + ".partial")
        reg.fetch_blob(repo, digest, partial, size, progress.add if progress is not None else None)
        try:
            store.ingest(partial, digest, size)
        except ImageError as err:
            if os.path.exists(partial):
                os.unlink(partial)  # failed verification: never resumed
            raise RegistryError(f"registry {reg.host}: {err}") from None


def _fetch_layer(store: Store, reg: Registry, repo: str, info: LayerInfo, progress: Progress) -> None:
    if store.has_layer(info.diff_id) and store.has_blob(info.digest):
        progress.add(info.size)
        return
    _download(store, reg, repo, info.digest, info.size, progress)
    with open(store.blob_path(info.digest), "rb") as f:
        store.unpack_layer(f, info.diff_id, f"layer {info.digest[:19]}")


def manifest_for_export(store: Store, image: ImageRecord) -> tuple[bytes, str]:
    """The image's manifest as stored (OCI or docker schema 2)."""
    data = store.read_blob(image.manifest)
    if image.manifest_media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise ImageError(f"image {image.short_id} has an unsupported manifest type")
    return data, image.manifest_media_type
