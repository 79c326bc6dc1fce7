"""A client of the OCI distribution API (docker registry v2), on the standard library's http.client.

Authentication follows the registry's ``WWW-Authenticate`` challenge: ``Bearer`` (a token from the
realm it names, asked for with the user's credentials when there are some, anonymously otherwise)
or ``Basic``. Credentials for a registry go only to that registry and to the token realm its own
challenge named; a redirect to another host (a blob store, a CDN) drops the Authorization header,
and a layer's foreign ``urls`` are never fetched (containerd CVE-2020-15157). Plain HTTP only with
``insecure`` (which also accepts an unverified certificate), as docker's insecure registries.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import urllib.parse

from rustainer.backend.errors import RegistryError
from rustainer.backend.images.reference import check_digest, sha256_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_MANIFEST = 4 << 20
USER_AGENT = "rustainer/0.1"
_CHUNK = 1 << 20


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="https://x/token",service="x",scope="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        while i < len(rest) and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().lower()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = i + 1
            value = []
            while end < len(rest) and rest[end] != '"':
                if rest[end] == "\\" and end + 1 < len(rest):
                    end += 1
                value.append(rest[end])
                end += 1
            params[key] = "".join(value)
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[key] = rest[i:end].strip()
            i = end
    return scheme.lower(), params


class Response:
    """A response whose body is read by the caller (``read``), then ``close``d."""

    def __init__(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self.conn, self.resp = conn, resp
        self.status = resp.status

    def header(self, name: str) -> str | None:
        return self.resp.getheader(name)

    def read(self, n: int | None = None) -> bytes:
        return self.resp.read(n)

    def close(self) -> None:
        self.resp.close()
        self.conn.close()


class Registry:
    """One registry host; ``credentials`` (user, password) are used only if it asks."""

    def __init__(self, host: str, *, insecure: bool = False, credentials: tuple[str, str] | None = None,
                 timeout: float = 60.0) -> None:
        self.host, self.insecure, self.credentials, self.timeout = host, insecure, credentials, timeout
        self.scheme: str | None = None
        self.tokens: dict[str, str] = {}  # scope -> bearer token
        self.basic = False  # the registry asked for Basic auth

    # -- connections ---------------------------------------------------------------------------------
    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            ctx = ssl.create_default_context()
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=ctx)
        if not self.insecure:
            raise RegistryError(f"refusing plain HTTP to {netloc}: use --insecure for a registry without TLS")
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _base_scheme(self) -> str:
        """https; with --insecure, http when the registry does not speak TLS (docker's fallback)."""
        if self.scheme is None:
            if not self.insecure:
                self.scheme = "https"
            else:
                try:
                    conn = self._connect("https", self.host)
                    conn.connect()
                    conn.close()
                    self.scheme = "https"
                except (ssl.SSLError, ConnectionResetError):
                    self.scheme = "http"
                except OSError as err:
                    raise RegistryError(f"cannot reach registry {self.host}: {err.strerror or err}") from err
        return self.scheme

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
              auth: str | None) -> tuple[Response, str]:
        """One request, following redirects (Authorization only to the registry itself)."""
        for _ in range(6):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise RegistryError(f"registry {self.host} sent an unusable address {url[:200]!r}")
            conn = self._connect(parts.scheme, parts.netloc)
            h = {"User-Agent": USER_AGENT, **headers}
            if auth is not None and parts.netloc == self.host:
                h["Authorization"] = auth
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            try:
                conn.request(method, target or "/", body=body, headers=h)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as err:
                conn.close()
                detail = getattr(err, "strerror", None) or str(err) or type(err).__name__
                raise RegistryError(f"cannot reach registry {self.host}: {detail}") from err
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                resp.read()
                conn.close()
                url = urllib.parse.urljoin(url, resp.getheader("Location", ""))
                if resp.status == 303:
                    method, body = "GET", None
                continue
            return Response(conn, resp), url
        raise RegistryError(f"registry {self.host}: too many redirects")

    def request(self, method: str, path: str, *, scope: str, headers: dict[str, str] | None = None,
                body: bytes | None = None, ok: tuple[int, ...] = (200,)) -> Response:
        """``path`` under the registry (or a full URL it gave us); answers the auth challenge once."""
        url = path if "://" in path else f"{self._base_scheme()}://{self.host}{path}"
        for attempt in range(2):
            resp, _final = self._send(method, url, headers or {}, body, self._auth_header(scope))
            if resp.status == 401 and attempt == 0:
                challenge = resp.header("WWW-Authenticate") or ""
                resp.read()
                resp.close()
                self._answer(challenge, scope)
                continue
            if resp.status not in ok:
                text = resp.read(4096)
                resp.close()
                raise RegistryError(self._describe(resp.status, text, method, path))
            return resp
        raise RegistryError(f"registry {self.host} refused the credentials")  # pragma: no cover

    def _describe(self, status: int, body: bytes, method: str, path: str) -> str:
        detail = ""
        try:
            errors = json.loads(body).get("errors") or []
            if errors:
                detail = ": " + "; ".join(str(e.get("message") or e.get("code")) for e in errors)[:300]
        except (ValueError, AttributeError):
            pass
        if status == 401:
            who = "the saved credentials" if self.credentials else "anonymous access (use 'rustainer login')"
            return f"registry {self.host} refused {who}{detail}"
        if status == 404:
            return f"registry {self.host}: not found ({path.split('?')[0]}){detail}"
        return f"registry {self.host} answered {status} to {method} {path.split('?')[0]}{detail}"

    def _auth_header(self, scope: str) -> str | None:
        if scope in self.tokens:
            return f"Bearer {self.tokens[scope]}"
        if self.basic and self.credentials is not None:
            user, password = self.credentials
            return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        return None

    def _answer(self, challenge: str, scope: str) -> None:
        scheme, params = _parse_challenge(challenge)
        if scheme == "basic":
            if self.credentials is None:
                raise RegistryError(f"registry {self.host} needs a login: 'rustainer login {self.host}'")
            self.basic = True
            return
        if scheme != "bearer" or not params.get("realm"):
            raise RegistryError(f"registry {self.host} asked for an unsupported authentication: {challenge[:100]!r}")
        realm = urllib.parse.urlsplit(params["realm"])
        if realm.scheme not in ("https", "http") or (realm.scheme == "http" and not self.insecure):
            raise RegistryError(f"registry {self.host} named a token service without TLS: {params['realm'][:100]}")
        query = {"service": params.get("service", "")} if params.get("service") else {}
        if scope:
            query["scope"] = scope
        url = params["realm"] + ("&" if realm.query else "?") + urllib.parse.urlencode(query)
        headers = {}
        if self.credentials is not None:
            user, password = self.credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        conn = self._connect(realm.scheme, realm.netloc)
        try:
            target = urllib.parse.urlsplit(url)
            conn.request("GET", target.path + "?" + target.query, headers={"User-Agent": USER_AGENT, **headers})
            resp = conn.getresponse()
            body = resp.read(1 << 20)
        except (OSError, http.client.HTTPException) as err:
            raise RegistryError(f"cannot reach the token service of {self.host}: {err}") from err
        finally:
            conn.close()
        if resp.status != 200:
            raise RegistryError(f"the token service of {self.host} refused "
                                f"{'the credentials' if self.credentials else 'anonymous access'} ({resp.status})")
        try:
            data = json.loads(body)
            token = data.get("token") or data.get("access_token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"the token service of {self.host} sent no token")
        self.tokens[scope] = token

    # -- the API -------------------------------------------------------------------------------------
    def ping(self) -> None:
        """GET /v2/, authenticating if asked: checks that the registry takes the credentials."""
        self.request("GET", "/v2/", scope="").close()

    def manifest(self, repo: str, selector: str) -> tuple[bytes, str, str]:
        """-> (bytes, media type, digest). A digest selector is verified against the bytes."""
        resp = self.request("GET", f"/v2/{repo}/manifests/{selector}", scope=f"repository:{repo}:pull",
                            headers={"Accept": ACCEPT})
        try:
            data = resp.read(MAX_MANIFEST + 1)
            media_type = (resp.header("Content-Type") or "").split(";")[0].strip()
        finally:
            resp.close()
        if len(data) > MAX_MANIFEST:
            raise RegistryError(f"registry {self.host}: the manifest of {repo} is larger than {MAX_MANIFEST} bytes")
        digest = sha256_digest(data)
        if selector.startswith("sha256:") and digest != selector:
            raise RegistryError(f"registry {self.host}: manifest {selector} of {repo} failed verification "
                                f"(its content has the digest {digest})")
        try:
            parsed = json.loads(data)
            media_type = parsed.get("mediaType") or media_type
        except (ValueError, AttributeError):
            raise RegistryError(f"registry {self.host}: the manifest of {repo} is not JSON") from None
        if media_type in DOCKER_SCHEMA1 or parsed.get("schemaVersion") == 1:
            raise RegistryError(f"{repo}: docker's schema 1 manifests are not supported (deprecated since 2017)")
        if not media_type:  # an OCI manifest may omit mediaType
            media_type = OCI_INDEX if "manifests" in parsed else OCI_MANIFEST
        return data, media_type, digest

    def fetch_blob(self, repo: str, digest: str, dest: str, size: int,
                   progress: Callable[[int], None] | None = None, retries: int = 3) -> None:
        """Download a blob to ``dest``, resuming a partial file (HTTP Range) after a dropped connection.

        The caller verifies size and digest (Store.ingest); a partial file longer than ``size`` is
        started again.
        """
        check_digest(digest)
        last: Exception | None = None
        for _ in range(retries + 1):
            have = os.path.getsize(dest) if os.path.exists(dest) else 0
            if have > size:
                os.unlink(dest)
                have = 0
            if have == size:
                return
            if progress is not None and have:
                progress(have)
            headers = {"Range": f"bytes={have}-"} if have else {}
            try:
                resp = self.request("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull",
                                    headers=headers, ok=(200, 206))
            except RegistryError as err:
                last = err
                if "cannot reach" not in str(err):
                    raise
                continue
            try:
                mode = "ab" if resp.status == 206 else "wb"
                if resp.status == 200 and have and progress is not None:
                    progress(-have)  # the server ignored the range: start again
                with open(dest, mode) as f:
                    while True:
                        chunk = resp.read(_CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        if progress is not None:
                            progress(len(chunk))
                        if f.tell() > size:
                            raise RegistryError(f"registry {self.host}: blob {digest} is larger than announced")
                got = os.path.getsize(dest)
                if got == size:
                    return
                last = RegistryError(f"registry {self.host}: the connection ended in blob {digest} "
                                     f"after {got} of {size} bytes")
            except (OSError, http.client.HTTPException) as err:
                last = RegistryError(f"registry {self.host}: the connection broke in blob {digest}: {err}")
            finally:
                resp.close()
        assert last is not None
        raise last

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repo}/blobs/{check_digest(digest)}",
                            scope=f"repository:{repo}:pull,push", ok=(200, 404))
        resp.close()
        return resp.status == 200

    def upload_blob(self, repo: str, digest: str, path: str) -> None:
        """A monolithic upload: POST for a session, then PUT the whole blob with its digest."""
        scope = f"repository:{repo}:pull,push"
        resp = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, ok=(202,))
        location = resp.header("Location")
        resp.close()
        if not location:
            raise RegistryError(f"registry {self.host} gave no upload location")
        url = urllib.parse.urljoin(f"{self._base_scheme()}://{self.host}/v2/{repo}/blobs/uploads/", location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": check_digest(digest)})
        with open(path, "rb") as f:
            body = f.read()
        self.request("PUT", url, scope=scope, body=body, ok=(201,),
                     headers={"Content-Type": "application/octet-stream",
                              "Content-Length": str(len(body))}).close()

    def put_manifest(self, repo: str, tag: str, data: bytes, media_type: str) -> None:
        self.request("PUT", f"/v2/{repo}/manifests/{tag}", scope=f"repository:{repo}:pull,push", body=data,
                     headers={"Content-Type": media_type}, ok=(201, 200)).close()
