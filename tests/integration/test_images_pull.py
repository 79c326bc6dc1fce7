"""Pulling from a real registry (Debian's docker-registry on 127.0.0.1), images pushed with skopeo.

Root: layers hold files of other owners and whiteout devices, and the merged view is checked through
a real overlayfs mount in a private mount namespace.
"""

from __future__ import annotations

import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from imagetools import DroppingProxy, Layout, RegistryServer, sha, skopeo_push, tar_of
from rustainer.backend.errors import ImageError, LayerError, RegistryError
from rustainer.backend.images.pull import pull
from rustainer.backend.images.reference import parse_reference
from rustainer.backend.images.store import Store

pytestmark = pytest.mark.root

BASE = [("etc", None), ("etc/motd", b"hello\n"), ("etc/keep", b"k"), ("var", None), ("var/cache", None),
        ("var/cache/old1", b"1"), ("var/cache/old2", b"2"), ("bin", None), ("bin/tool", b"v1")]
TOP = [("etc/.wh.motd", b""), ("var/cache/.wh..wh..opq", b""), ("var/cache/new", b"n"), ("bin/tool", b"v2"),
       ("bin/sh@tool", None)]


def push_two_layer(tmp_path: Path, reg: RegistryServer, name: str = "test/app:1", how: str = "gzip") -> dict:  # type: ignore[type-arg]
    layout = Layout(tmp_path / f"layout-{how}")
    desc = layout.image([tar_of(BASE), tar_of(TOP)], how=how, env=["A=1"], cmd=["/bin/sh"])
    layout.tag("t", desc)
    skopeo_push(layout.folder, "t", f"{reg.host}/{name}")
    return desc


def merged_view(store: Store, image_name: str, tmp_path: Path) -> dict[str, str]:
    """Mount the image's layers as overlayfs lowers (short links, relative to the store) in a private
    mount namespace and list what a container would see."""
    image = store.resolve(image_name)
    lowers = ":".join(store.lower_dirs(image))
    mnt = tmp_path / "merged"
    mnt.mkdir(exist_ok=True)
    script = (f"mount -t overlay overlay -o lowerdir={lowers} {mnt} && cd {mnt} && "
              "find . -mindepth 1 | sort | while read f; do if [ -L \"$f\" ]; then echo \"$f -> $(readlink \"$f\")\"; "
              "elif [ -f \"$f\" ]; then echo \"$f = $(cat \"$f\")\"; else echo \"$f/\"; fi; done")
    out = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         cwd=store.root, capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) if " " in line else (line, "") for line in out.splitlines())


def test_pull_by_tag_applies_whiteouts_and_opaque_folders_across_layers(tmp_path: Path, rroot: Path,
                                                                       registry: RegistryServer) -> None:
    push_two_layer(tmp_path, registry)
    store = Store(str(rroot))
    image = pull(store, parse_reference(f"{registry.host}/test/app:1"), insecure=True)
    assert image.names == (f"{registry.host}/test/app:1",)
    assert len(image.layers) == 2 and image.platform == "linux/amd64"
    assert store.config(image)["config"]["Env"] == ["A=1"]
    top = Path(store.layer_root(image.layers[1].diff_id)) / "diff"
    assert stat.S_ISCHR(os.lstat(top / "etc/motd").st_mode)
    view = merged_view(store, f"{registry.host}/test/app:1", tmp_path)
    assert "./etc/motd" not in view and view["./etc/keep"] == "= k"
    assert view["./bin/tool"] == "= v2" and view["./bin/sh"] == "-> tool"
    assert sorted(k for k in view if k.startswith("./var/cache/")) == ["./var/cache/", "./var/cache/new"]
    # a second pull finds everything in place
    again = pull(store, parse_reference(f"{registry.host}/test/app:1"), insecure=True)
    assert again.id == image.id


@pytest.mark.parametrize("how", ["zstd", "none"])
def test_pull_zstd_and_uncompressed_layers(how: str, tmp_path: Path, rroot: Path, registry: RegistryServer) -> None:
    push_two_layer(tmp_path, registry, "test/c:1", how=how)
    store = Store(str(rroot))
    pull(store, parse_reference(f"{registry.host}/test/c:1"), insecure=True)
    assert merged_view(store, f"{registry.host}/test/c:1", tmp_path)["./bin/tool"] == "= v2"


def test_pull_by_digest_and_a_wrong_digest(tmp_path: Path, rroot: Path, registry: RegistryServer) -> None:
    push_two_layer(tmp_path, registry)
    from imagetools import registry_get

    manifest = registry_get(f"http://{registry.host}/v2/test/app/manifests/1")
    digest = sha(manifest)  # skopeo may rewrite the manifest: ask the registry for what it serves
    store = Store(str(rroot))
    image = pull(store, parse_reference(f"{registry.host}/test/app@{digest}"), insecure=True)
    assert image.names == (f"{registry.host}/test/app@{digest}",) and image.manifest == digest
    assert store.resolve(f"{registry.host}/test/app@{digest}").id == image.id
    with pytest.raises(RegistryError):
        pull(store, parse_reference(f"{registry.host}/test/app@sha256:{'0' * 64}"), insecure=True)


def test_an_index_with_several_platforms(tmp_path: Path, rroot: Path, registry: RegistryServer) -> None:
    layout = Layout(tmp_path / "multi")
    amd = layout.image([tar_of([("arch", b"amd64")])], arch="amd64")
    arm = layout.image([tar_of([("arch", b"arm64")])], arch="arm64")
    layout.tag_index("multi", [amd, arm])
    skopeo_push(layout.folder, "multi", f"{registry.host}/test/multi:1", all_platforms=True)
    store = Store(str(rroot))
    ref = parse_reference(f"{registry.host}/test/multi:1")
    native = pull(store, ref, insecure=True)
    assert native.platform == "linux/amd64"
    arm_image = pull(store, ref, insecure=True, platform="linux/arm64")
    assert arm_image.platform == "linux/arm64"
    assert (Path(store.layer_root(arm_image.layers[0].diff_id)) / "diff/arch").read_bytes() == b"arm64"
    with pytest.raises(ImageError, match="offers: linux/amd64, linux/arm64"):
        pull(store, ref, insecure=True, platform="linux/s390x")


def _registry_blob(reg_dir: Path, digest: str) -> Path:
    h = digest[7:]
    return reg_dir / "data/docker/registry/v2/blobs/sha256" / h[:2] / h / "data"


def test_a_tampered_blob_fails_and_leaves_nothing_installed(tmp_path: Path, rroot: Path,
                                                           registry: RegistryServer) -> None:
    desc = push_two_layer(tmp_path, registry)
    import json

    manifest = json.loads((tmp_path / "layout-gzip/blobs/sha256" / desc["digest"][7:]).read_bytes())
    layer = manifest["layers"][1]["digest"]
    blob = _registry_blob(tmp_path / "registry", layer)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    store = Store(str(rroot))
    with pytest.raises(RegistryError, match="verification"):
        pull(store, parse_reference(f"{registry.host}/test/app:1"), insecure=True)
    assert store.images() == []
    assert not store.has_blob(layer)
    assert os.listdir(store.path("tmp")) == []
    assert all(os.path.isfile(os.path.join(store.path("layers", d), "link")) for d in os.listdir(store.path("layers")))


def test_a_config_whose_diff_ids_lie_is_refused(tmp_path: Path, rroot: Path, registry: RegistryServer) -> None:
    layout = Layout(tmp_path / "liar")
    desc = layout.image([tar_of([("a", b"a")])], diff_ids=[sha(b"something else")])
    layout.tag("t", desc)
    skopeo_push(layout.folder, "t", f"{registry.host}/test/liar:1")
    store = Store(str(rroot))
    with pytest.raises(LayerError, match="config says"):
        pull(store, parse_reference(f"{registry.host}/test/liar:1"), insecure=True)
    assert store.images() == [] and os.listdir(store.path("layers")) == []


def test_a_dropped_connection_mid_layer_resumes(tmp_path: Path, rroot: Path, registry: RegistryServer) -> None:
    layout = Layout(tmp_path / "big")
    desc = layout.image([tar_of([("big", os.urandom(3 << 20))])])
    layout.tag("t", desc)
    skopeo_push(layout.folder, "t", f"{registry.host}/test/big:1")
    store = Store(str(rroot))
    proxy = DroppingProxy(registry.port, after=1 << 20, drops=1)
    try:
        image = pull(store, parse_reference(f"{proxy.host}/test/big:1"), insecure=True)
    finally:
        proxy.stop()
    assert proxy.cut == 1 and len(image.layers) == 1


def test_an_interrupted_pull_fails_cleanly_and_the_next_one_resumes(tmp_path: Path, rroot: Path,
                                                                   registry: RegistryServer) -> None:
    layout = Layout(tmp_path / "big")
    desc = layout.image([tar_of([("small", b"s")]), tar_of([("big", os.urandom(3 << 20))])])
    layout.tag("t", desc)
    skopeo_push(layout.folder, "t", f"{registry.host}/test/big:1")
    store = Store(str(rroot))
    proxy = DroppingProxy(registry.port, after=64 << 10, drops=100)
    try:
        with pytest.raises(RegistryError, match="connection"):
            pull(store, parse_reference(f"{proxy.host}/test/big:1"), insecure=True)
    finally:
        proxy.stop()
    assert store.images() == []
    partials = [p for p in os.listdir(store.path("tmp")) if p.endswith(".partial")]
    assert partials  # kept to resume from, never installed
    image = pull(store, parse_reference(f"{registry.host}/test/big:1"), insecure=True)
    assert len(image.layers) == 2 and os.listdir(store.path("tmp")) == []


def test_concurrent_pulls_of_images_sharing_layers(tmp_path: Path, rroot: Path, registry: RegistryServer) -> None:
    layout = Layout(tmp_path / "shared")
    base = tar_of([("base", os.urandom(1 << 20))])
    one = layout.image([base, tar_of([("one", b"1")])])
    two = layout.image([base, tar_of([("two", b"2")])])
    layout.tag("one", one)
    layout.tag("two", two)
    skopeo_push(layout.folder, "one", f"{registry.host}/test/one:1")
    skopeo_push(layout.folder, "two", f"{registry.host}/test/two:1")
    errors: list[BaseException] = []

    def go(name: str) -> None:
        try:
            pull(Store(str(rroot)), parse_reference(f"{registry.host}/test/{name}:1"), insecure=True)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=go, args=(n,)) for n in ("one", "two", "one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = Store(str(rroot))
    assert len(store.images()) == 2 and len(os.listdir(store.path("layers"))) == 3
    assert len(os.listdir(store.path("l"))) == 3


def test_rmi_and_prune_keep_shared_layers_and_images_in_use(tmp_path: Path, rroot: Path,
                                                            registry: RegistryServer) -> None:
    layout = Layout(tmp_path / "shared")
    base = tar_of([("base", b"b")])
    layout.tag("one", layout.image([base, tar_of([("one", b"1")])]))
    layout.tag("two", layout.image([base, tar_of([("two", b"2")])]))
    skopeo_push(layout.folder, "one", f"{registry.host}/test/one:1")
    skopeo_push(layout.folder, "two", f"{registry.host}/test/two:1")
    store = Store(str(rroot))
    one = pull(store, parse_reference(f"{registry.host}/test/one:1"), insecure=True)
    two = pull(store, parse_reference(f"{registry.host}/test/two:1"), insecure=True)
    store.tag(two, "extra/name:latest")
    from rustainer.backend.errors import ImageInUseError

    with pytest.raises(ImageInUseError, match="web"):
        store.remove(f"{registry.host}/test/one:1", lambda: {one.id: "web"})
    assert store.remove("extra/name", dict) == ["Untagged: docker.io/extra/name:latest"]
    done = store.remove(f"{registry.host}/test/one:1", dict)
    assert done[-1] == f"Deleted: {one.id}"
    assert store.has_layer(one.layers[0].diff_id) and not store.has_layer(one.layers[1].diff_id)
    assert len(os.listdir(store.path("l"))) == 2
    assert merged_view(store, two.id[7:19], tmp_path)["./two"] == "= 2"
    assert store.prune(dict) == []  # two is named
    assert store.prune(lambda: {two.id: "c"}, all=True) == []
    assert store.prune(dict, all=True) == [f"Deleted: {two.id}"]
    assert os.listdir(store.path("layers")) == [] and os.listdir(store.path("blobs/sha256")) == []


def test_basic_auth(tmp_path: Path, rroot: Path) -> None:
    import bcrypt

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=5)).decode() + "\n")
    server = RegistryServer(tmp_path / "authreg", htpasswd=htpasswd)
    try:
        layout = Layout(tmp_path / "priv")
        layout.tag("t", layout.image([tar_of([("secret", b"x")])]))
        skopeo_push(layout.folder, "t", f"{server.host}/test/priv:1", creds="alice:s3cret")
        store = Store(str(rroot))
        ref = parse_reference(f"{server.host}/test/priv:1")
        with pytest.raises(RegistryError, match="needs a login"):
            pull(store, ref, insecure=True)
        with pytest.raises(RegistryError, match="refused"):
            pull(store, ref, insecure=True, credentials=("alice", "wrong"))
        image = pull(store, ref, insecure=True, credentials=("alice", "s3cret"))
        assert len(image.layers) == 1
    finally:
        server.stop()


def test_plain_http_needs_insecure(tmp_path: Path, rroot: Path, registry: RegistryServer) -> None:
    push_two_layer(tmp_path, registry)
    with pytest.raises(RegistryError):
        pull(Store(str(rroot)), parse_reference(f"{registry.host}/test/app:1"))
