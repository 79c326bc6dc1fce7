"""Write plain data as JSON without importing ``json`` (which pulls in ``re``) on the start path.

State is written several times while a container starts; reading it (``ps``, ``inspect``) uses the
standard ``json`` module, which parses what this writes.
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
