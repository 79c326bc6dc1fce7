"""What an image's config asks of ``run --image``, as docker applies it.

- argv: the Entrypoint followed by the COMMAND given on the command line, or by the image's Cmd
  when none is given; neither: refused.
- environment: the image's Env, then each ``-e`` (a later one wins), over rustainer's defaults (so
  an image's PATH replaces the default one).
- working directory: ``-w``, else the image's WorkingDir, else ``/`` (created in the container's
  writable layer if the image lacks it).
- user: ``--user``, else the image's User: ``uid``, ``uid:gid``, ``name`` or ``name:group``, names
  looked up in the image's own /etc/passwd and /etc/group (read through its layers, whiteouts
  honoured, never through a symlink); the groups are the user's supplementary groups in the image.
"""

from __future__ import annotations

import os
import stat

from rustainer.backend.errors import ImageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_FILE = 4 << 20


def read_in_layers(layer_dirs: list[str], path: str) -> bytes | None:
    """A regular file of the image (layers top first) as the merged view would show it, or None."""
    parts = [p for p in path.split("/") if p and p != "."]
    if not parts or ".." in parts:
        return None
    for layer in layer_dirs:
        fd = os.open(layer, _DIR)
        try:
            hidden = False
            for i, part in enumerate(parts):
                try:
                    st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    st = None
                if st is not None and stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    return None  # a whiteout: deleted in this layer
                if i == len(parts) - 1:
                    if st is not None and stat.S_ISREG(st.st_mode):
                        ffd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                        with os.fdopen(ffd, "rb") as f:
                            return f.read(MAX_FILE)
                    if st is not None:
                        return None  # a symlink or something else: not followed
                    break
                if st is None or not stat.S_ISDIR(st.st_mode):
                    if st is not None:
                        return None
                    break
                nxt = os.open(part, _DIR, dir_fd=fd)
                os.close(fd)
                fd = nxt
                try:
                    if os.getxattr(fd, "trusted.overlay.opaque") == b"y":
                        hidden = True
                except OSError:
                    pass
            if hidden:
                return None  # an opaque folder on the way: nothing below this layer shows
        finally:
            os.close(fd)
    return None


def _table(data: bytes | None) -> list[list[str]]:
    if data is None:
        return []
    return [line.split(":") for line in data.decode(errors="replace").splitlines() if line and not line.startswith("#")]


def resolve_user(user: str, layer_dirs: list[str]) -> tuple[int, int, tuple[int, ...], str]:
    """``user`` -> (uid, gid, supplementary gids, home)."""
    name, _, group = user.partition(":")
    passwd = _table(read_in_layers(layer_dirs, "/etc/passwd"))
    groups = _table(read_in_layers(layer_dirs, "/etc/group"))
    entry = next((e for e in passwd if len(e) >= 6 and (e[0] == name or e[2] == name)), None)
    if name.isdigit():
        uid = int(name)
    elif entry is not None and entry[2].isdigit():
        uid = int(entry[2])
    else:
        raise ImageError(f"unable to find user {name}: no matching entries in the image's /etc/passwd")
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None and entry[5] else "/"
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            found = next((g for g in groups if len(g) >= 3 and g[0] == group and g[2].isdigit()), None)
            if found is None:
                raise ImageError(f"unable to find group {group}: no matching entries in the image's /etc/group")
            gid = int(found[2])
    member_of = [int(g[2]) for g in groups
                 if len(g) >= 4 and g[2].isdigit() and entry is not None and entry[0] in g[3].split(",")]
    extra = tuple(sorted({gid, *member_of}))
    if uid > 0xFFFFFFFE or gid > 0xFFFFFFFE:
        raise ImageError(f"user {user!r} is out of range")
    return uid, gid, extra, home


def run_settings(config: dict[str, Any], *, command: tuple[str, ...], env: tuple[tuple[str, str], ...],
                 workdir: str | None, user: str | None, layer_dirs: list[str]) -> dict[str, Any]:
    """-> {command, env, workdir, user, home} for the container's spec."""
    conf = config.get("config") or {}
    if not isinstance(conf, dict):
        conf = {}
    entrypoint = [str(x) for x in conf.get("Entrypoint") or []]
    cmd = [str(x) for x in conf.get("Cmd") or []]
    argv = tuple(entrypoint + (list(command) if command else cmd))
    image_env: list[tuple[str, str]] = []
    for item in conf.get("Env") or []:
        key, sep, value = str(item).partition("=")
        if sep and key:
            image_env.append((key, value))
    merged = dict(image_env)
    merged.update(dict(env))
    wd = workdir or conf.get("WorkingDir") or None
    if wd is not None and not str(wd).startswith("/"):
        wd = "/" + str(wd)
    who = user if user is not None else (conf.get("User") or None)
    resolved = None
    home = None
    if who:
        uid, gid, groups, home = resolve_user(str(who), layer_dirs)
        if (uid, gid) != (0, 0) or groups != (0,):
            resolved = (uid, gid, groups)
    if home is not None and "HOME" not in merged:
        merged["HOME"] = home
    return {"command": argv, "env": tuple(merged.items()), "workdir": wd, "user": resolved}
