"""Image features beyond pull and run: push, login (basic auth, the credentials file, docker's
config.json), bearer-token auth through a token server, the progress line on a terminal, and a
``run --image`` that loses its image to ``rmi`` while it starts."""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from imagetools import Layout, RegistryServer, free_port, need, skopeo_push, tar_of

pytestmark = pytest.mark.root


def small_image(tmp_path: Path, busybox_rootfs: Path, reg: RegistryServer, ref: str = "test/bb:1",
                creds: str | None = None) -> str:
    layout = Layout(tmp_path / f"layout-{ref.replace('/', '-').replace(':', '-')}")
    layout.tag("t", layout.image([tar_of(tree=busybox_rootfs), tar_of([("hello", b"hello\n")])],
                                 cmd=["/bin/cat", "/hello"]))
    full = f"{reg.host}/{ref}"
    skopeo_push(layout.folder, "t", full, creds=creds)
    return full


def test_push_to_a_registry_then_skopeo_and_pull_read_it(cli, tmp_path: Path, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                         registry: RegistryServer) -> None:
    need("skopeo")
    src = small_image(tmp_path, busybox_rootfs, registry)
    image_id = cli("pull", "--insecure", src, check_rc=0).stdout.strip()
    dest = f"{registry.host}/pushed/again:2"
    digest = cli("push", "--insecure", src, dest, check_rc=0).stdout.strip()
    assert digest.startswith("sha256:")
    info = json.loads(subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"],
                                     capture_output=True, text=True, check=True, stdin=subprocess.DEVNULL).stdout)
    assert info["Digest"] == digest and len(info["Layers"]) == 2
    cli("rmi", src, check_rc=0)
    assert cli("pull", "--insecure", dest, check_rc=0).stdout.strip() == image_id  # the same config
    assert cli("run", "--rm", "--image", dest, check_rc=0).stdout == "hello\n"
    # an unreachable registry: one line, 125
    proc = cli("push", "--insecure", dest, f"127.0.0.1:{free_port()}/x/y:1")
    assert proc.returncode == 125 and proc.stderr.count("\n") == 1


def test_login_with_basic_auth_keeps_root_only_credentials(cli, tmp_path: Path, rroot: Path,  # type: ignore[no-untyped-def]
                                                          busybox_rootfs: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import bcrypt

    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text("alice:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=5)).decode() + "\n")
    server = RegistryServer(tmp_path / "authreg", htpasswd=htpasswd)
    try:
        ref = small_image(tmp_path, busybox_rootfs, server, creds="alice:s3cret")
        refused = cli("pull", "--insecure", ref)
        assert refused.returncode == 125 and "login" in refused.stderr and refused.stderr.count("\n") == 1
        bad = cli("login", "--insecure", "-u", "alice", "--password-stdin", server.host, input="wrong\n")
        assert bad.returncode == 125 and bad.stderr.count("\n") == 1
        assert not (rroot / "auth.json").exists()  # nothing kept for refused credentials
        cli("login", "--insecure", "-u", "alice", "--password-stdin", server.host, input="s3cret\n", check_rc=0)
        st = os.stat(rroot / "auth.json")
        assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
        assert server.host in json.loads((rroot / "auth.json").read_text())["auths"]
        assert cli("pull", "--insecure", ref, check_rc=0).stdout.startswith("sha256:")
        # docker's config.json is read when rustainer has no credentials of its own
        cli("rmi", ref, check_rc=0)
        (rroot / "auth.json").unlink()
        docker = tmp_path / "docker"
        docker.mkdir()
        (docker / "config.json").write_text(json.dumps(
            {"auths": {server.host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(docker))
        assert cli("pull", "--insecure", ref, check_rc=0).stdout.startswith("sha256:")
    finally:
        server.stop()


class TokenProxy:
    """A registry behind bearer-token auth: ``/token`` hands out tokens (to alice:s3cret, or to
    anyone for pulls when ``anonymous``), ``/v2/...`` asks for one with the ``WWW-Authenticate``
    challenge and forwards requests that carry a valid token to the real registry."""

    def __init__(self, registry: RegistryServer, *, anonymous: bool) -> None:
        self.registry, self.anonymous = registry, anonymous
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.tokens: set[str] = set()
        self.token_requests: list[tuple[str, str | None]] = []  # (scope, Authorization)
        self.forwarded = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                if self.path.startswith("/token"):
                    return self._token()
                auth = self.headers.get("Authorization", "")
                if not (auth.startswith("Bearer ") and auth[7:] in proxy.tokens):
                    self.send_response(401)
                    repo = self.path.split("/")[2:4]
                    scope = f'scope="repository:{"/".join(repo)}:pull",' if len(repo) == 2 else ""
                    self.send_header("WWW-Authenticate",
                                     f'Bearer realm="http://{proxy.host}/token",{scope}service="test-registry"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                conn = http.client.HTTPConnection("127.0.0.1", proxy.registry.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("authorization", "host")}
                conn.request(self.command, self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                proxy.forwarded += 1
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
                conn.close()
                return None

            def _token(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(self.path).query)
                auth = self.headers.get("Authorization")
                proxy.token_requests.append((query.get("scope", [""])[0], auth))
                good = auth == "Basic " + base64.b64encode(b"alice:s3cret").decode()
                if not good and not (proxy.anonymous and auth is None):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = os.urandom(8).hex()
                proxy.tokens.add(token)
                body = json.dumps({"token": token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.mark.parametrize("anonymous", [True, False])
def test_bearer_token_auth(anonymous: bool, cli, tmp_path: Path, rroot: Path, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                           registry: RegistryServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker"))
    small_image(tmp_path, busybox_rootfs, registry)
    proxy = TokenProxy(registry, anonymous=anonymous)
    try:
        ref = f"{proxy.host}/test/bb:1"
        if not anonymous:
            refused = cli("pull", "--insecure", ref)
            assert refused.returncode == 125 and refused.stderr.count("\n") == 1
            assert proxy.forwarded == 0
            cli("login", "--insecure", "-u", "alice", "--password-stdin", proxy.host, input="s3cret\n", check_rc=0)
        assert cli("pull", "--insecure", ref, check_rc=0).stdout.startswith("sha256:")
        assert cli("run", "--rm", "--image", ref, check_rc=0).stdout == "hello\n"
        assert proxy.forwarded >= 4  # manifest, config, two layers: all with a token
        scopes = {scope for scope, _auth in proxy.token_requests}
        assert "repository:test/bb:pull" in scopes
        sent = {auth for _scope, auth in proxy.token_requests}
        basic = "Basic " + base64.b64encode(b"alice:s3cret").decode()
        assert sent == {None} if anonymous else basic in sent  # credentials only once the user logged in
    finally:
        proxy.stop()


def test_progress_on_a_terminal_and_quiet_on_a_pipe(cli, tmp_path: Path, rroot: Path, busybox_rootfs: Path,  # type: ignore[no-untyped-def]
                                                    registry: RegistryServer) -> None:
    from helpers import CLI

    ref = small_image(tmp_path, busybox_rootfs, registry)
    master, slave = os.openpty()
    proc = subprocess.Popen([*CLI, "pull", "--insecure", ref], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's last writer went away
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.startswith(b"sha256:")
    text = seen.decode(errors="replace")
    assert "layers" in text and " MB, " in text and "MB/s" in text, text
    assert seen.endswith(b"\r\x1b[K")  # the line is cleared at the end
    # a pipe: nothing but the id
    cli("rmi", ref, check_rc=0)
    piped = cli("pull", "--insecure", ref, check_rc=0)
    assert piped.stderr == "" and piped.stdout.count("\n") == 1


def test_an_image_removed_while_a_container_starts_fails_that_start(tmp_path: Path, rroot: Path,
                                                                      busybox_rootfs: Path) -> None:
    """The window the README noted: the image is resolved (its layers stay, another image shares
    them), rmi removes it before the container's state is written: the start fails in one clear
    error and leaves nothing; once the state is written, rmi refuses."""
    from rustainer.backend.engine import Engine
    from rustainer.backend.errors import ImageInUseError, ImageNotFoundError
    from rustainer.backend.spec import ContainerSpec

    engine = Engine(str(rroot))
    base = tar_of(tree=busybox_rootfs)
    for tag, cmd in (("a", ["/bin/true"]), ("b", ["/bin/echo", "b"])):
        layout = Layout(tmp_path / tag)
        layout.tag("t", layout.image([base], cmd=cmd))
        engine.import_image(str(layout.folder), f"race/{tag}:1")
    names = ["docker.io/race/a:1", "docker.io/race/b:1"]
    assert sorted(n for i in engine.images() for n in i.names) == names
    spec = engine.image_spec(ContainerSpec(name="racer", command=()), names[0])
    engine.remove_images([names[0]])  # no container names it yet: removed; its layer stays for the other
    with pytest.raises(ImageNotFoundError, match="removed while the container was starting"):
        engine.run(spec)
    assert engine.containers() == []
    # the other order: the state is written first, then rmi refuses
    spec = engine.image_spec(ContainerSpec(name="racer2", command=()), names[1])
    code, _state = engine.run(spec)
    assert code == 0
    with pytest.raises(ImageInUseError):
        engine.remove_images([names[1]])
    engine.remove("racer2")
    engine.remove_images([names[1]])
