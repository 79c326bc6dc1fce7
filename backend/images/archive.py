"""``image import`` and ``image export``: OCI archives and layouts, docker save archives, plain rootfs tarballs.

Import reads an archive's members only by name through ``tarfile`` (never extracting the archive
itself): each blob is copied into the store and verified (sha256 against the digest that names it;
layers also against the config's diff_ids while they are unpacked, by the same extractor as pulls).
Export writes an OCI archive (``oci-layout``, ``index.json``, ``blobs/sha256/...``) that skopeo and
``docker load`` read; the manifest is written with OCI media types (the layer blobs are the same bytes).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time

from rustainer.backend.errors import ImageError
from rustainer.backend.images.reference import check_digest, digest_hex, parse_reference, sha256_digest
from rustainer.backend.images.store import ImageRecord, LayerInfo, Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_TO_OCI = {
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar": "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
}
_MEDIA_BY_COMPRESSION = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
                         "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
                         "none": "application/vnd.oci.image.layer.v1.tar"}
_CHUNK = 1 << 20


class _Source:
    """Files of an OCI layout folder or an archive, by name (names are lookup keys, never paths)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tar: tarfile.TarFile | None = None
        self.members: dict[str, tarfile.TarInfo] = {}
        self.tmp: str | None = None

    def open(self, store: Store) -> _Source:
        if os.path.isdir(self.path):
            return self
        from rustainer.backend.images.extract import ZSTD_MAGIC

        try:
            with open(self.path, "rb") as f:
                head = f.read(8)
            tar_path = self.path
            if head.startswith(ZSTD_MAGIC):  # tarfile has no zstd: decompress to a file of the store's
                import zstandard

                self.tmp = store.tmpdir("import-")
                tar_path = os.path.join(self.tmp, "archive.tar")
                with open(self.path, "rb") as src, open(tar_path, "wb") as dst:
                    zstandard.ZstdDecompressor().copy_stream(src, dst)
            self.tar = tarfile.open(tar_path, "r:*")
            for m in self.tar.getmembers():
                self.members[m.name.lstrip("./") if m.name != "." else "."] = m
        except tarfile.TarError as err:
            self.close()
            raise ImageError(f"cannot read {self.path}: not a tar archive (plain, gzip, xz, bzip2 or zstd), "
                             "an OCI archive or layout, or a docker save archive") from err
        except (OSError, EOFError) as err:
            self.close()
            detail = getattr(err, "strerror", None) or str(err).splitlines()[0]
            raise ImageError(f"cannot read {self.path}: {detail}") from err
        except Exception as err:  # zstandard's own errors
            self.close()
            raise ImageError(f"cannot read {self.path}: {err}") from err
        return self

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()
        if self.tmp is not None:
            import shutil

            shutil.rmtree(self.tmp, ignore_errors=True)

    def has(self, name: str) -> bool:
        if self.tar is None:
            return os.path.isfile(os.path.join(self.path, name))
        m = self.members.get(name)
        return m is not None and m.isreg()

    def stream(self, name: str) -> IO[bytes]:
        if self.tar is None:
            if ".." in name.split("/"):
                raise ImageError(f"{self.path}: refusing the name {name!r}")
            return open(os.path.join(self.path, name), "rb")  # noqa: SIM115
        m = self.members.get(name)
        f = self.tar.extractfile(m) if m is not None and m.isreg() else None
        if f is None:
            raise ImageError(f"{self.path}: {name} is missing from the archive")
        return f

    def read(self, name: str, limit: int = 8 << 20) -> bytes:
        with self.stream(name) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ImageError(f"{self.path}: {name} is too large")
        return data

    def kind(self) -> str:
        if self.has("oci-layout") and self.has("index.json"):
            return "oci"
        if self.has("manifest.json"):
            return "docker"
        return "rootfs"


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise ImageError(f"{what} is not valid JSON") from None


def _copy_blob(store: Store, src: IO[bytes], expected: str | None) -> tuple[str, int, str]:
    """Copy a stream into the blob store; -> (digest, size, compression). With ``expected`` the
    content must have that digest."""
    import hashlib

    from rustainer.backend.images.extract import compression_of

    work = store.tmpdir("blob-")
    try:
        tmp = os.path.join(work, "blob")
        h = hashlib.sha256()
        size = 0
        head = b""
        with open(tmp, "wb") as out:
            while chunk := src.read(_CHUNK):
                if len(head) < 8:
                    head += chunk[:8]
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        digest = "sha256:" + h.hexdigest()
        if expected is not None and digest != expected:
            raise ImageError(f"blob {expected} failed verification: its content has the digest {digest}")
        if not store.has_blob(digest):
            store.ingest(tmp, digest, size)
        return digest, size, compression_of(head)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


def _unpack(store: Store, digest: str, diff_id: str | None, what: str) -> tuple[str, int]:
    with open(store.blob_path(digest), "rb") as f:
        return store.unpack_layer(f, diff_id, what)


def _install(store: Store, manifest: dict[str, Any], manifest_bytes: bytes, media_type: str,
             config: dict[str, Any], layers: list[LayerInfo], names: list[str]) -> ImageRecord:
    config_digest = manifest["config"]["digest"]
    store.put_blob(manifest_bytes)
    platform = "/".join(p for p in (config.get("os"), config.get("architecture"), config.get("variant"))
                        if isinstance(p, str) and p)
    record = ImageRecord(config_digest, sha256_digest(manifest_bytes), media_type, layers,
                         str(config.get("created", "")), platform)
    return store.add_image(record, names)


def _from_manifest(store: Store, src: _Source, manifest_bytes: bytes, names: list[str], what: str) -> ImageRecord:
    from rustainer.backend.images.pull import _descriptor

    manifest = _json(manifest_bytes, f"{what}: the manifest")
    if not isinstance(manifest, dict):
        raise ImageError(f"{what}: malformed manifest")
    media_type = manifest.get("mediaType") or OCI_MANIFEST
    config_digest, _size, _ = _descriptor(manifest.get("config"), "config")
    config_bytes = src.read(f"blobs/sha256/{digest_hex(config_digest)}")
    if sha256_digest(config_bytes) != config_digest:
        raise ImageError(f"{what}: the config failed verification")
    store.put_blob(config_bytes)
    config = _json(config_bytes, f"{what}: the config")
    diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
    descs = [_descriptor(x, "layer") for x in manifest.get("layers") or []]
    if len(diff_ids) != len(descs):
        raise ImageError(f"{what}: the config's diff_ids do not match the manifest's layers")
    layers = []
    for (digest, size, mt), diff_id in zip(descs, diff_ids, strict=True):
        check_digest(diff_id, "diff_id")
        if not store.has_blob(digest):
            with src.stream(f"blobs/sha256/{digest_hex(digest)}") as f:
                _copy_blob(store, f, digest)
        _unpack(store, digest, diff_id, f"layer {digest[:19]}")
        layers.append(LayerInfo(digest, mt, size, diff_id))
    return _install(store, manifest, manifest_bytes, media_type, config, layers, names)


def _import_oci(store: Store, src: _Source, name: str | None, platform: str) -> list[ImageRecord]:
    from rustainer.backend.images.pull import choose_platform

    index = _json(src.read("index.json"), f"{src.path}: index.json")
    entries = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ImageError(f"{src.path}: the OCI index lists no image")
    out = []
    for entry in entries:
        digest = check_digest(entry.get("digest"), "manifest digest")
        data = src.read(f"blobs/sha256/{digest_hex(digest)}")
        if sha256_digest(data) != digest:
            raise ImageError(f"{src.path}: manifest {digest} failed verification")
        media_type = entry.get("mediaType") or _json(data, "manifest").get("mediaType")
        if media_type in (OCI_INDEX, "application/vnd.docker.distribution.manifest.list.v2+json"):
            chosen = choose_platform(_json(data, "index"), platform)
            data = src.read(f"blobs/sha256/{digest_hex(chosen)}")
            if sha256_digest(data) != chosen:
                raise ImageError(f"{src.path}: manifest {chosen} failed verification")
        annotations = entry.get("annotations") or {}
        names = []
        if name is not None:
            names = [name]
        elif isinstance(annotations.get(CONTAINERD_NAME), str):
            names = [parse_reference(annotations[CONTAINERD_NAME]).name]
        elif isinstance(annotations.get(REF_NAME), str) and ("/" in annotations[REF_NAME]
                                                             or ":" in annotations[REF_NAME]):
            names = [parse_reference(annotations[REF_NAME]).name]
        out.append(_from_manifest(store, src, data, names, src.path))
        if name is not None:
            break
    return out


def _import_docker(store: Store, src: _Source, name: str | None) -> list[ImageRecord]:
    entries = _json(src.read("manifest.json"), f"{src.path}: manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageError(f"{src.path}: manifest.json lists no image")
    out = []
    for entry in entries:
        config_bytes = src.read(str(entry.get("Config")))
        config_digest = store.put_blob(config_bytes)
        config = _json(config_bytes, f"{src.path}: the config")
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        paths = entry.get("Layers") or []
        if len(paths) != len(diff_ids):
            raise ImageError(f"{src.path}: the config's diff_ids do not match the archive's layers")
        layers = []
        for path, diff_id in zip(paths, diff_ids, strict=True):
            check_digest(diff_id, "diff_id")
            with src.stream(str(path)) as f:
                digest, size, compression = _copy_blob(store, f, None)
            _unpack(store, digest, diff_id, f"layer {path}")
            layers.append(LayerInfo(digest, _MEDIA_BY_COMPRESSION.get(compression, _MEDIA_BY_COMPRESSION["none"]),
                                    size, diff_id))
        manifest = _manifest(config_digest, len(config_bytes), layers)
        names = [name] if name else [parse_reference(t).name for t in entry.get("RepoTags") or []]
        out.append(_install(store, json.loads(manifest), manifest, OCI_MANIFEST, config, layers, names))
        if name is not None:
            break
    return out


def _manifest(config_digest: str, config_size: int, layers: list[LayerInfo]) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": _TO_OCI.get(x.media_type, x.media_type), "digest": x.digest, "size": x.size}
                   for x in layers],
    }, separators=(",", ":")).encode()


def _import_rootfs(store: Store, src: _Source, name: str | None) -> list[ImageRecord]:
    from rustainer.backend.images.extract import compression_of
    from rustainer.backend.images.pull import host_platform

    with open(src.path, "rb") as f:
        kind = compression_of(f.read(8))
    if kind == "xz":  # not an OCI layer compression: keep the plain tar
        from rustainer.backend.images.extract import decompressed

        with open(src.path, "rb") as raw:
            digest, size, _ = _copy_blob(store, decompressed(raw), None)
        kind = "none"
    else:
        with open(src.path, "rb") as raw:
            digest, size, _ = _copy_blob(store, raw, None)
    diff_id, _usize = _unpack(store, digest, None, f"rootfs tarball {os.path.basename(src.path)}")
    _os, arch = host_platform().split("/")[:2]
    config = {"architecture": arch, "os": "linux",
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                         "Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created_by": f"rustainer image import {os.path.basename(src.path)}"}]}
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = store.put_blob(config_bytes)
    layers = [LayerInfo(digest, _MEDIA_BY_COMPRESSION[kind], size, diff_id)]
    manifest = _manifest(config_digest, len(config_bytes), layers)
    return [_install(store, json.loads(manifest), manifest, OCI_MANIFEST, config, layers, [name] if name else [])]


def import_image(store: Store, path: str, name: str | None, platform: str) -> list[ImageRecord]:
    """Import ``path`` (an OCI layout folder, an OCI or docker archive, a rootfs tarball)."""
    if name is not None:
        name = parse_reference(name).name
    if not os.path.exists(path):
        raise ImageError(f"cannot import {path}: no such file or folder")
    store.ensure()
    src = _Source(path).open(store)
    try:
        with store.pulling():
            kind = src.kind()
            if kind == "oci":
                return _import_oci(store, src, name, platform)
            if kind == "docker":
                return _import_docker(store, src, name)
            if src.tar is None:
                raise ImageError(f"cannot import {path}: a folder must be an OCI image layout (oci-layout, index.json)")
            return _import_rootfs(store, src, name)
    finally:
        src.close()


def export_image(store: Store, image: ImageRecord, path: str, name: str | None) -> None:
    """Write ``image`` as an OCI archive to ``path`` (atomically: a partial file never stays)."""
    config_bytes = store.read_blob(image.id)
    manifest = _manifest(image.id, len(config_bytes), image.layers)
    annotations: dict[str, str] = {}
    if name:
        ref = parse_reference(name)
        annotations = {CONTAINERD_NAME: ref.name, REF_NAME: ref.tag or "latest"}
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256_digest(manifest), "size": len(manifest),
                            **({"annotations": annotations} if annotations else {})}]}
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
            def add(member: str, data: bytes | None = None, blob: str | None = None) -> None:
                info = tarfile.TarInfo(member)
                info.mtime, info.mode = 0, 0o644
                if blob is not None:
                    info.size = os.path.getsize(store.blob_path(blob))
                    with open(store.blob_path(blob), "rb") as f:
                        tf.addfile(info, f)
                else:
                    assert data is not None
                    info.size = len(data)
                    tf.addfile(info, io.BytesIO(data))

            for folder in ("blobs", "blobs/sha256"):
                info = tarfile.TarInfo(folder)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                tf.addfile(info)
            add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add("index.json", json.dumps(index).encode())
            add(f"blobs/sha256/{digest_hex(sha256_digest(manifest))}", manifest)
            add(f"blobs/sha256/{digest_hex(image.id)}", config_bytes)
            for layer in image.layers:
                if not store.has_blob(layer.digest):
                    raise ImageError(f"layer blob {layer.digest} of image {image.short_id} is missing from the store")
                add(f"blobs/sha256/{digest_hex(layer.digest)}", blob=layer.digest)
        os.replace(tmp, path)
    except OSError as err:
        raise ImageError(f"cannot write {path}: {err.strerror or err}") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

