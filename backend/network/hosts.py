"""The /etc/hosts of the containers on a bridge network, kept current as members come and go.

Each container has its own file (``containers/<id>/hosts``) bound read-only onto its /etc/hosts. A
bind mount pins the file's inode, so updates rewrite the file in place (write, then truncate) and
never replace it by rename.
"""

from __future__ import annotations

import os

HEADER = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def render(own_id: str, members: dict[str, dict[str, str]]) -> str:
    """``members``: address -> {"id", "name", "hostname"}; the container's own entry comes first."""
    lines = [HEADER]
    ordered = sorted(members.items(), key=lambda item: (item[1]["id"] != own_id, item[1]["name"]))
    for address, member in ordered:
        names = [member["name"]]
        hostname = member.get("hostname")
        if hostname and hostname != member["name"]:
            names.append(hostname)
        lines.append(f"{address}\t{' '.join(names)}\n")
    return "".join(lines)


def create(path: str) -> None:
    """The (empty) file to bind, before the child is forked; filled in once the address is known."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    os.close(fd)


def rewrite(path: str, text: str) -> None:
    """Replace the contents in place; a container whose folder is gone is skipped."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        data = text.encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
