"""What ``run --image`` needs of an image, precomputed when the image is recorded, read without
``json`` or ``re`` (together a third of a container's start on a slow machine).

- ``images/records/<hex>.run``: NUL-separated fields (no value an argv, environment or path can
  hold contains NUL): ``id``, then for each of ``layers`` (overlay lower dirs ``l/<short>``, top
  first), ``entrypoint``, ``cmd``, ``env``, ``workdir``, ``user``: the key, the count of values,
  the values.
- ``images/names.idx``: one ``NAME ID`` a line, rewritten with ``names.json`` (the source of truth).

Either missing or unreadable (a store written before these files existed): the caller takes the
slow path (``Store.resolve`` and the config blob), which also gives the proper error messages.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FIELDS = ("layers", "entrypoint", "cmd", "env", "workdir", "user")
_HEX = frozenset("0123456789abcdef")


def images_root(state_root: str) -> str:
    return os.path.join(state_root, "images")


def encode(image_id: str, layers: list[str], conf: dict[str, Any]) -> bytes:
    """The run file of an image: its id, lower dirs (top first) and its config's ``config`` part."""
    def strings(value: object) -> list[str]:
        if isinstance(value, list):
            return [str(x) for x in value]
        return [str(value)] if value else []

    values = {"layers": layers, "entrypoint": strings(conf.get("Entrypoint")), "cmd": strings(conf.get("Cmd")),
              "env": strings(conf.get("Env")), "workdir": strings(conf.get("WorkingDir")),
              "user": strings(conf.get("User"))}
    parts = ["id", image_id]
    for key in FIELDS:
        parts += [key, str(len(values[key])), *values[key]]
    if any("\0" in p for p in parts):
        raise ValueError("a NUL in an image's config")
    return "\0".join(parts).encode("utf-8", "surrogateescape")


def decode(data: bytes) -> dict[str, list[str]] | None:
    parts = data.decode("utf-8", "surrogateescape").split("\0")
    if len(parts) < 2 or parts[0] != "id":
        return None
    out: dict[str, list[str]] = {"id": [parts[1]]}
    i = 2
    for key in FIELDS:
        if i + 1 >= len(parts) or parts[i] != key or not parts[i + 1].isdigit():
            return None
        n = int(parts[i + 1])
        out[key] = parts[i + 2:i + 2 + n]
        if len(out[key]) != n:
            return None
        i += 2 + n
    return out if i == len(parts) else None


def _candidates(text: str) -> list[str]:
    """``text`` and docker's normalisation of it (``alpine`` -> ``docker.io/library/alpine:latest``),
    loosely: a candidate only counts if the names index has it, and that index was written from
    names ``parse_reference`` accepted."""
    out = [text]
    if "@" in text or not text:
        return out
    first, slash, rest = text.partition("/")
    if not slash:
        name = f"docker.io/library/{text}"
    elif "." in first or ":" in first or first == "localhost":
        name = text
    else:
        name = f"docker.io/{text}"
    if ":" not in name.rpartition("/")[2]:
        name += ":latest"
    out.append(name)
    return out


def lookup(state_root: str, text: str) -> tuple[dict[str, list[str]], tuple[str, ...]] | None:
    """-> (the run file's fields, the image's names sorted) for the image named ``text``, or None
    (not found by name this way, or no run file: take the slow path)."""
    root = images_root(state_root)
    try:
        with open(os.path.join(root, "names.idx"), "rb") as f:
            index = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return None
    names: dict[str, str] = {}
    for line in index.splitlines():
        name, _, target = line.partition(" ")
        names[name] = target
    image_id = next((names[c] for c in _candidates(text) if c in names), None)
    if image_id is None or not image_id.startswith("sha256:") or len(image_id) != 71 \
            or not set(image_id[7:]) <= _HEX:
        return None
    try:
        with open(os.path.join(root, "records", image_id[7:] + ".run"), "rb") as f:
            fields = decode(f.read())
    except OSError:
        return None
    if fields is None or fields["id"] != [image_id]:
        return None
    return fields, tuple(sorted(n for n, i in names.items() if i == image_id))


def config_of(fields: dict[str, list[str]]) -> dict[str, Any]:
    """The parts of an image's config ``run_settings`` reads, from a run file."""
    conf: dict[str, Any] = {"Entrypoint": fields["entrypoint"], "Cmd": fields["cmd"], "Env": fields["env"]}
    if fields["workdir"]:
        conf["WorkingDir"] = fields["workdir"][0]
    if fields["user"]:
        conf["User"] = fields["user"][0]
    return {"config": conf}


def still_there(state_root: str, image_id: str, layers: tuple[str, ...]) -> bool:
    """Whether the image and its layers are still in the store, checked under the store's ``gc``
    lock (shared). A start calls it once its state (naming the image) is on disk: an ``rmi`` (which
    holds ``gc`` exclusively from its in-use check to its removal) either saw that state and
    refused, or finished before this check, which then fails the start - never a container on
    layers being deleted."""
    import fcntl

    root = images_root(state_root)
    try:
        fd = os.open(os.path.join(root, "locks", "gc.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        hex_id = image_id.removeprefix("sha256:")
        return os.path.isfile(os.path.join(root, "records", hex_id + ".json")) and all(
            os.path.isdir(os.path.join(root, layer)) for layer in layers)
    finally:
        os.close(fd)
