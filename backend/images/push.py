"""``rustainer push``: a local image's blobs (skipped where the registry has them) and its manifest."""

from __future__ import annotations

from rustainer.backend.errors import ImageError
from rustainer.backend.images.reference import Reference
from rustainer.backend.images.registry import Registry
from rustainer.backend.images.store import ImageRecord, Store


def push(store: Store, image: ImageRecord, ref: Reference, *, insecure: bool = False,
         credentials: tuple[str, str] | None = None) -> str:
    """-> the manifest digest now at ``ref``."""
    if ref.digest is not None:
        raise ImageError(f"push to a tag, not a digest: {ref}")
    reg = Registry(ref.api_host, insecure=insecure, credentials=credentials)
    for digest in [layer.digest for layer in image.layers] + [image.id]:
        if not store.has_blob(digest):
            raise ImageError(f"blob {digest} of image {image.short_id} is missing from the store")
        if not reg.blob_exists(ref.path, digest):
            reg.upload_blob(ref.path, digest, store.blob_path(digest))
    manifest = store.read_blob(image.manifest)
    reg.put_manifest(ref.path, ref.tag or "latest", manifest, image.manifest_media_type)
    return image.manifest
