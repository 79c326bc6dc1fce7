"""A tiny frozen-record decorator for plain data (specs and state).

Why not ``dataclasses``: importing it pulls in ``inspect`` (ast, dis, tokenize, re, enum...), which
costs about 40 ms on the machines we measured - as much as the whole start-latency budget of
``rustainer run``. This gives the part we use (keyword/positional ``__init__`` with defaults,
``__repr__``, ``__eq__``, ``__hash__``, immutability, ``replace``) in a few lines, and
``dataclass_transform`` tells type checkers to treat decorated classes like frozen dataclasses.
"""

from __future__ import annotations

TYPE_CHECKING = False  # like typing.TYPE_CHECKING, without importing typing (~5 ms) at run time
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:

    def dataclass_transform(**_kw: object):  # type: ignore[no-untyped-def]
        return lambda f: f


@dataclass_transform(frozen_default=True, kw_only_default=False)
def record(cls: type[T]) -> type[T]:
    """Turn a class with annotated fields (and optional defaults) into a frozen record."""
    names: list[str] = []
    defaults: dict[str, object] = {}
    for klass in reversed(cls.__mro__):
        for name in klass.__dict__.get("__annotations__", {}):
            if name.startswith("_") or name in names:
                continue
            names.append(name)
            if name in klass.__dict__:
                defaults[name] = klass.__dict__[name]
    fields = tuple(names)

    def __init__(self: Any, *args: object, **kwargs: object) -> None:
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__}() takes at most {len(fields)} positional arguments")
        values = dict(zip(fields, args, strict=False))
        for key, value in kwargs.items():
            if key not in fields:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {key!r}")
            if key in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {key!r}")
            values[key] = value
        for name in fields:
            if name not in values:
                if name not in defaults:
                    raise TypeError(f"{cls.__name__}() missing required argument {name!r}")
                values[name] = defaults[name]
            object.__setattr__(self, name, values[name])
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in fields)
        return f"{cls.__name__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in fields)

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in fields))

    def __setattr__(self: Any, name: str, value: object) -> None:
        raise AttributeError(f"{cls.__name__} is immutable; use replace()")

    for name, fn in (("__init__", __init__), ("__repr__", __repr__), ("__eq__", __eq__),
                     ("__hash__", __hash__), ("__setattr__", __setattr__)):
        fn.__qualname__ = f"{cls.__name__}.{name}"
        setattr(cls, name, fn)
    cls.__record_fields__ = fields  # type: ignore[attr-defined]
    return cls


def fields_of(obj: object) -> tuple[str, ...]:
    return obj.__class__.__record_fields__  # type: ignore[attr-defined, no-any-return]


def replace(obj: T, **changes: object) -> T:
    """A copy of ``obj`` with some fields changed (like ``dataclasses.replace``)."""
    values = {n: getattr(obj, n) for n in fields_of(obj)}
    values.update(changes)
    return obj.__class__(**values)


def asdict(obj: object) -> dict[str, Any]:
    """Nested records, tuples and lists as plain JSON-ready values."""
    return {n: _plain(getattr(obj, n)) for n in fields_of(obj)}


def _plain(value: object) -> Any:
    if hasattr(value.__class__, "__record_fields__"):
        return asdict(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
