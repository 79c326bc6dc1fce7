"""The frozen-record decorator: init, defaults, frozen, eq, hash, replace, asdict."""

from __future__ import annotations

import pytest

from rustainer.backend.util.record import asdict, fields_of, record, replace


@record
class Point:
    x: int
    y: int = 0
    tags: tuple[str, ...] = ()


@record
class Box:
    name: str
    corner: Point = Point(1, 2)
    points: tuple[Point, ...] = ()
    extra: dict[str, object] | None = None


@record
class Point3(Point):
    z: int = 9


def test_init_positional_keyword_and_defaults() -> None:
    assert (Point(1).x, Point(1).y, Point(1).tags) == (1, 0, ())
    assert Point(1, 2) == Point(x=1, y=2) == Point(1, y=2)
    assert fields_of(Point(1)) == ("x", "y", "tags")
    assert Point3(1).z == 9 and fields_of(Point3(1)) == ("x", "y", "tags", "z")
    with pytest.raises(TypeError, match="missing required argument 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword"):
        Point(1, w=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values"):
        Point(1, x=2)  # type: ignore[misc]
    with pytest.raises(TypeError, match="at most 3 positional"):
        Point(1, 2, (), 4)  # type: ignore[call-arg]


def test_frozen() -> None:
    p = Point(1)
    with pytest.raises(AttributeError, match="immutable"):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        p.new = 1  # type: ignore[attr-defined]
    assert p.x == 1


def test_eq_and_hash() -> None:
    assert Point(1, 2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert hash(Point(1, 2, ("a",))) == hash(Point(1, 2, ("a",)))
    assert len({Point(1), Point(1), Point(2)}) == 2
    assert Point(1) != Point3(1)  # a different class is never equal
    assert Point(1) != (1, 0, ())
    assert {Point(1): "a"}[Point(1)] == "a"


def test_repr() -> None:
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=())"


def test_replace_makes_a_copy() -> None:
    p = Point(1, 2, ("a",))
    q = replace(p, y=5)
    assert q == Point(1, 5, ("a",)) and p == Point(1, 2, ("a",)) and q is not p
    assert replace(p) == p
    with pytest.raises(TypeError):
        replace(p, nope=1)
    assert replace(Point3(1), z=3) == Point3(1, 0, (), 3)


def test_asdict_nested() -> None:
    box = Box("b", points=(Point(3), Point(4, 5, ("t",))), extra={"k": Point(7), "l": [Point(8)]})
    assert asdict(box) == {
        "name": "b",
        "corner": {"x": 1, "y": 2, "tags": []},
        "points": [{"x": 3, "y": 0, "tags": []}, {"x": 4, "y": 5, "tags": ["t"]}],
        "extra": {"k": {"x": 7, "y": 0, "tags": []}, "l": [{"x": 8, "y": 0, "tags": []}]},
    }
    import json

    json.dumps(asdict(box))  # JSON-ready


def test_record_module_does_not_import_dataclasses() -> None:
    import subprocess
    import sys

    code = ("import sys; before = set(sys.modules); import rustainer.backend.util.record; "
            "print(sorted(m for m in ('dataclasses', 'inspect') if m in set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
