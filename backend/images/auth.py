"""Registry credentials: ``$RUSTAINER_ROOT/auth.json`` (mode 0600, written by ``rustainer login``), and
docker's ``~/.docker/config.json`` when present (its ``auths`` entries; credential helpers are not used).

Both files hold ``{"auths": {"HOST": {"auth": base64("user:password")}}}``.
"""

from __future__ import annotations

import base64
import json
import os

from rustainer.backend.errors import ImageError
from rustainer.backend.images.reference import DEFAULT_DOMAIN
from rustainer.backend.util.jsonfile import write_durably

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "registry-1.docker.io", "docker.io")


def auth_file(state_root: str) -> str:
    return os.path.join(state_root, "auth.json")


def _keys(host: str) -> tuple[str, ...]:
    if host in (DEFAULT_DOMAIN, "registry-1.docker.io", "index.docker.io"):
        return DOCKER_HUB_KEYS
    return (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/")


def _read(path: str) -> dict[str, object]:
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        raise ImageError(f"cannot read the credentials in {path}: {err}") from err
    auths = data.get("auths") if isinstance(data, dict) else None
    return auths if isinstance(auths, dict) else {}


def _decode(entry: object) -> tuple[str, str] | None:
    if not isinstance(entry, dict):
        return None
    if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
        return entry["username"], entry["password"]
    raw = entry.get("auth")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        user, sep, password = base64.b64decode(raw).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def credentials_for(host: str, state_root: str) -> tuple[str, str] | None:
    docker = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    for path in (auth_file(state_root), docker):
        auths = _read(path)
        for key in _keys(host):
            found = _decode(auths.get(key))
            if found is not None:
                return found
    return None


def save(host: str, user: str, password: str, state_root: str) -> str:
    """Store the credentials for ``host`` in the root-only file; -> its path."""
    path = auth_file(state_root)
    os.makedirs(state_root, mode=0o711, exist_ok=True)
    data = {"auths": _read(path)}
    data["auths"][host] = {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}  # type: ignore[index]
    write_durably(path, json.dumps(data, indent=1).encode(), 0o600)
    return path
