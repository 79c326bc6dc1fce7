"""Image references and digests: pure parsing, docker's rules.

``alpine`` is ``docker.io/library/alpine:latest``; ``alpine:3.20``, ``user/app``, ``host:5000/ns/name:tag``
and ``name@sha256:<64 hex>`` follow docker's grammar (distribution/reference). A digest is checked
against ``sha256:[0-9a-f]{64}`` before it is ever used in a path or a URL (containers/image
CVE-2024-3727 came from digests that were not).
"""

from __future__ import annotations

import re

from rustainer.backend.errors import InvalidReferenceError
from rustainer.backend.util.record import record

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
# docker's API endpoint for docker.io
DOCKER_HUB_API = "registry-1.docker.io"

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_ID = re.compile(r"(?:sha256:)?[0-9a-f]{6,64}")
MAX_NAME = 255


def is_digest(text: str) -> bool:
    return _DIGEST.fullmatch(text) is not None


def check_digest(text: object, what: str = "digest") -> str:
    """``text`` if it is a well-formed sha256 digest, else InvalidReferenceError (never a path)."""
    if not isinstance(text, str) or not is_digest(text):
        raise InvalidReferenceError(f"invalid {what} {str(text)[:100]!r}: expected sha256: and 64 lowercase hex digits")
    return text


def digest_hex(digest: str) -> str:
    return check_digest(digest)[len("sha256:"):]


def sha256_digest(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


@record
class Reference:
    """A parsed reference: ``domain/path`` plus a tag, a digest, or both."""

    domain: str
    path: str  # e.g. library/alpine
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """``docker.io/library/alpine``: the name without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def name(self) -> str:
        """The name under which the image is kept locally: repository:tag or repository@digest."""
        if self.tag is not None:
            return f"{self.repository}:{self.tag}"
        return f"{self.repository}@{self.digest}"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def selector(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = self.repository
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str) -> Reference:
    """Parse and normalise like docker: the domain defaults to docker.io, single names get library/,
    the tag defaults to latest unless a digest is given."""
    if not text or len(text) > 512 or any(c.isspace() for c in text):
        raise InvalidReferenceError(f"invalid reference format {text!r}")
    rest, at, digest = text.partition("@")
    if at:
        check_digest(digest, "digest in reference")
    # a tag is the part after the last ':' if that part holds no '/': host:port/name keeps its port
    tag: str | None = None
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        rest, tag = rest[:colon], rest[colon + 1:]
        if _TAG.fullmatch(tag) is None:
            raise InvalidReferenceError(f"invalid reference format {text!r}: bad tag {tag!r}")
    first, slash, remainder = rest.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, remainder
        if _DOMAIN.fullmatch(domain) is None:
            raise InvalidReferenceError(f"invalid reference format {text!r}: bad registry host {domain!r}")
    else:
        domain, path = DEFAULT_DOMAIN, rest
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if not path or len(domain) + 1 + len(path) > MAX_NAME:
        raise InvalidReferenceError(f"invalid reference format {text!r}")
    for component in path.split("/"):
        if _COMPONENT.fullmatch(component) is None:
            hint = ": repository names must be lowercase" if component.lower() != component else ""
            raise InvalidReferenceError(f"invalid reference format {text!r}{hint}")
    if tag is None and not at:
        tag = "latest"
    return Reference(domain=domain, path=path, tag=tag, digest=digest if at else None)


def looks_like_id(text: str) -> bool:
    """An image id or a prefix of one (at least 6 hex digits, optionally with ``sha256:``)."""
    return _ID.fullmatch(text) is not None


def short_name(name: str) -> tuple[str, str]:
    """``docker.io/library/alpine:3.20`` -> (``alpine``, ``3.20``) as docker shows it."""
    repo, tag = name, "<none>"
    if "@" in name:
        repo, _, tag = name.partition("@")
    else:
        colon = name.rfind(":")
        if colon > name.rfind("/"):
            repo, tag = name[:colon], name[colon + 1:]
    for prefix in (f"{DEFAULT_DOMAIN}/library/", f"{DEFAULT_DOMAIN}/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix):]
            break
    return repo, tag
