"""Write plain data as JSON without importing ``json`` (which pulls in ``re``) on the start path,
and write files so that they survive a crash or a power loss whole.

State is written several times while a container starts; reading it (``ps``, ``inspect``) uses the
standard ``json`` module, which parses what this writes. What a start must read (a bridge
network's record) goes through ``loads``: the same C scanner, without ``json``'s import (5 ms).
"""

from __future__ import annotations

_ESCAPES = {i: f"\\u{i:04x}" for i in range(0x20)}
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\", ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})


def dumps(value: object, indent: str = "") -> str:
    """JSON text for None, bools, ints, finite floats, strs, lists/tuples and str-keyed dicts."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("JSON has no NaN or infinity")
        return repr(value)
    if isinstance(value, str):
        return '"' + value.translate(_ESCAPES) + '"'
    inner = indent + " "
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(inner + dumps(v, inner) for v in value) + "\n" + indent + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = []
        for key, v in value.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            items.append(f"{inner}{dumps(key)}: {dumps(v, inner)}")
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


class _Decoding:
    """What ``_json.make_scanner`` reads from ``json.JSONDecoder``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # NaN, Infinity, -Infinity, as json reads them


_WHITESPACE = " \t\n\r"


def loads(text: str) -> object:
    """Parse JSON text as ``json.loads`` does (ValueError if malformed), with the C scanner ``json``
    uses, but without importing ``json``: its regular expressions pull in ``re`` and are compiled
    at import."""
    try:
        from _json import make_scanner
    except ImportError:  # an interpreter without the C accelerator
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = make_scanner(_Decoding())(text, start)  # type: ignore[arg-type]  # duck-typed
    except StopIteration as stop:
        raise ValueError(f"Expecting value: char {stop.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


def write(path: str, value: object, *, durable: bool = True) -> None:
    """``value`` as JSON into ``path``, atomically, and durably unless told (see ``write_durably``)."""
    write_durably(path, dumps(value).encode(), durable=durable)


def write_durably(path: str, data: bytes, mode: int = 0o600, *, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` so that after a crash or power loss it holds either its old
    content or all of ``data``, never an empty or partial file: a temporary file beside it, fsync'ed,
    renamed over it; then its folder fsync'ed, so that the rename itself is on disk.

    ``durable=False`` keeps the atomic rename (readers never see a partial file) but skips both
    fsyncs, for records that need not outlive the host's next boot: each costs 0.2 ms on a quiet
    disk and several ms on a busy one, on the start path of every container.

    The temporary file's name is new each time (pid and random suffix, created exclusively, never
    through a symlink): threads of one process may write the same file at once (the image store's
    pulls), and a leftover of a killed writer is never reused. It is removed if anything fails."""
    import os  # here: ``loads`` is on paths that import nothing else of os (rustainer-oci's start)

    tmp = f"{path}.{os.getpid()}-{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if durable:
        sync_folder(os.path.dirname(path))


def sync_folder(path: str) -> None:
    """fsync a folder: what was created, renamed or removed in it is on disk."""
    import os

    fd = os.open(path or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
