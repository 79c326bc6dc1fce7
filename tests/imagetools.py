"""Test tools for images: a real registry (Debian's docker-registry) on 127.0.0.1, OCI layouts written
here layer by layer, pushes with skopeo, and a proxy that drops a connection mid-blob.

Nothing here touches the system's registry service or its port 5000: each registry gets a free port,
its own config file and its own storage folder under the test's tmp_path, and is stopped after it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import urllib.request
from pathlib import Path

import pytest

from helpers import wait_for

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (the test set-up command installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RegistryServer:
    def __init__(self, folder: Path, htpasswd: Path | None = None) -> None:
        need("docker-registry")
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        auth = ""
        if htpasswd is not None:
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
        config = folder / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {folder / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: test-secret\n" + auth)
        self.log = open(folder / "registry.log", "wb")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL)
        wait_for(self._up, timeout=20, what="the test registry to listen")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"docker-registry exited: {Path(self.log.name).read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(entries: list[tuple[str, bytes | None]] | None = None, *, tree: Path | None = None) -> bytes:
    """An uncompressed tar: ``entries`` (name, data; None = folder; names starting '@' = symlink
    'name@target'), or a whole folder ``tree``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        if tree is not None:
            for top, dirs, files in os.walk(tree):
                dirs.sort()
                for name in sorted(dirs) + sorted(files):
                    path = os.path.join(top, name)
                    tf.add(path, arcname=os.path.relpath(path, tree), recursive=False)
        for name, data in entries or []:
            if "@" in name:
                link, target = name.split("@", 1)
                info = tarfile.TarInfo(link)
                info.type, info.linkname = tarfile.SYMTYPE, target
                tf.addfile(info)
            elif data is None:
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(info)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def compress(data: bytes, how: str) -> tuple[bytes, str]:
    if how == "gzip":
        return gzip.compress(data, mtime=0), LAYER_GZIP
    if how == "zstd":
        import zstandard

        return zstandard.ZstdCompressor().compress(data), LAYER_ZSTD
    return data, LAYER_TAR


class Layout:
    """An OCI image layout folder written blob by blob (what skopeo copies from ``oci:DIR:TAG``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (folder / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.index: list[dict] = []  # type: ignore[type-arg]

    def blob(self, data: bytes) -> str:
        digest = sha(data)
        (self.folder / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    def image(self, layers: list[bytes], *, how: str = "gzip", arch: str = "amd64", env: list[str] | None = None,
              cmd: list[str] | None = None, entrypoint: list[str] | None = None, workdir: str = "",
              user: str = "", diff_ids: list[str] | None = None) -> dict:  # type: ignore[type-arg]
        """Writes layers, config and manifest; -> the manifest's descriptor."""
        descs = []
        for raw in layers:
            packed, media_type = compress(raw, how)
            descs.append({"mediaType": media_type, "digest": self.blob(packed), "size": len(packed)})
        config: dict = {"architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",  # type: ignore[type-arg]
                        "rootfs": {"type": "layers", "diff_ids": diff_ids or [sha(raw) for raw in layers]},
                        "config": {}}
        for key, value in (("Env", env), ("Cmd", cmd), ("Entrypoint", entrypoint), ("WorkingDir", workdir),
                           ("User", user)):
            if value:
                config["config"][key] = value
        config_bytes = json.dumps(config).encode()
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "digest": self.blob(config_bytes), "size": len(config_bytes)},
                    "layers": descs}
        data = json.dumps(manifest).encode()
        return {"mediaType": OCI_MANIFEST, "digest": self.blob(data), "size": len(data),
                "platform": {"os": "linux", "architecture": arch}}

    def tag(self, tag: str, desc: dict) -> None:  # type: ignore[type-arg]
        entry = dict(desc, annotations={"org.opencontainers.image.ref.name": tag})
        entry.pop("platform", None)
        self.index.append(entry)
        self.write_index()

    def tag_index(self, tag: str, descs: list[dict]) -> str:  # type: ignore[type-arg]
        """An image index over several platforms' manifests, tagged ``tag``; -> its digest."""
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}).encode()
        digest = self.blob(data)
        self.index.append({"mediaType": OCI_INDEX, "digest": digest, "size": len(data),
                           "annotations": {"org.opencontainers.image.ref.name": tag}})
        self.write_index()
        return digest

    def write_index(self) -> None:
        (self.folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.index}))


def skopeo_push(layout: Path, tag: str, dest: str, *, all_platforms: bool = False,
                creds: str | None = None) -> None:
    need("skopeo")
    args = ["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false"]
    if all_platforms:
        args.append("--all")
    if creds:
        args += ["--dest-creds", creds]
    proc = subprocess.run([*args, f"oci:{layout}:{tag}", f"docker://{dest}"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr


def registry_get(url: str) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - 127.0.0.1 only
        return resp.read()  # type: ignore[no-any-return]


class DroppingProxy:
    """A TCP proxy to the registry that cuts the first ``drops`` blob responses after ``after`` bytes."""

    def __init__(self, target_port: int, *, after: int, drops: int = 1) -> None:
        self.target_port, self.after, self.drops = target_port, after, drops
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.host = f"127.0.0.1:{self.port}"
        self.cut = 0
        self.lock = threading.Lock()
        self.stopping = False
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(65536)
                if not chunk or not (request + chunk)[:1].isalpha():
                    return  # not HTTP (a TLS hello): close, as a plain HTTP server would
                request += chunk
            head, _, rest = request.partition(b"\r\n\r\n")
            lines = [h for h in head.split(b"\r\n") if not h.lower().startswith(b"connection:")]
            upstream.sendall(b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest)
            first_line = request.split(b"\r\n", 1)[0]
            is_blob = b" /v2/" in first_line and b"/blobs/sha256:" in first_line and first_line.startswith(b"GET")
            with self.lock:
                cut = is_blob and self.cut < self.drops
                if cut:
                    self.cut += 1
            sent = 0
            upstream.settimeout(10)
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                if cut and sent + len(data) > self.after:
                    client.sendall(data[: max(self.after - sent, 0)])
                    return  # drop the connection mid-body
                client.sendall(data)
                sent += len(data)
        except OSError:
            return
        finally:
            upstream.close()
            client.close()

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.accepter.join(5)
        for t in self.threads:
            t.join(5)
