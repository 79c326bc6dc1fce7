"""The pure parsers of backend/spec.py: every accepted form and every bad one."""

from __future__ import annotations

import pytest

from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.spec import (
    MAX_NAME,
    check_cpus_available,
    format_cpus,
    format_size,
    parse_cgroup_driver,
    parse_cpu_quota,
    parse_cpus,
    parse_env,
    parse_memory_limit,
    parse_pids_limit,
    parse_size,
    validate_hostname,
    validate_name,
)

K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize(("text", "expected"), [
    ("512M", 512 * M), ("512m", 512 * M), ("1g", G), ("1G", G), ("300K", 300 * K), ("300k", 300 * K),
    ("1048576", 1048576), ("64MiB", 64 * M), ("64mib", 64 * M), ("64MB", 64 * M), ("64mb", 64 * M),
    ("2T", 2 * T), ("100b", 100), ("100B", 100), (" 8M ", 8 * M), ("1KiB", K),
])
def test_parse_size_accepts(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", [
    "12X", "-5M", "0", "0M", "", " ", "M", "1.5G", "5 M", "abc", "1e6", "+5M", "0x10", "1MM", "iB", "b", "--1",
    "١٢M",  # non-ASCII digits are digits to str.isdigit but not a size
])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid memory size"):
        parse_size(text)


def test_a_memory_limit_is_at_least_6M_as_docker_asks() -> None:
    assert parse_memory_limit("6M") == parse_memory_limit("6144K") == 6 * M
    for text in ("1", "4M", "6143K", "100b"):
        with pytest.raises(InvalidSpecError, match=f"memory limit '{text}' is too small: give at least 6M"):
            parse_memory_limit(text)
    with pytest.raises(InvalidSpecError, match="invalid memory size"):
        parse_memory_limit("12X")


@pytest.mark.parametrize(("text", "expected"), [
    ("1,2,3,4", (1, 2, 3, 4)), ("1 5 7 10", (1, 5, 7, 10)), ("0-3", (0, 1, 2, 3)), ("0", (0,)),
    ("0-2,5 7-8", (0, 1, 2, 5, 7, 8)), ("3,1,2", (1, 2, 3)), ("1,1,1-2", (1, 2)), ("2-2", (2,)),
    (" 0 , 1 ", (0, 1)),
])
def test_parse_cpus_accepts(text: str, expected: tuple[int, ...]) -> None:
    assert parse_cpus(text) == expected


@pytest.mark.parametrize("text", ["", " ", ",", "1-", "-1", "a", "3-1", "1-a", "1.5", "0x1", "1--2", "1-2-3", "١"])
def test_parse_cpus_refuses(text: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid CPU list"):
        parse_cpus(text)


@pytest.mark.parametrize(("cpus", "text"), [
    ((0,), "0"), ((0, 1, 2, 3), "0-3"), ((0, 1, 2, 3, 5), "0-3,5"), ((1, 5, 7, 10), "1,5,7,10"),
    ((0, 2, 3, 4, 9, 10), "0,2-4,9-10"), ((), ""),
])
def test_format_cpus_and_round_trip(cpus: tuple[int, ...], text: str) -> None:
    assert format_cpus(cpus) == text
    if cpus:
        assert parse_cpus(text) == cpus
        assert parse_cpus(format_cpus(tuple(reversed(cpus)))) == cpus


def test_check_cpus_available() -> None:
    check_cpus_available((0, 1), (0, 1, 2))
    with pytest.raises(InvalidSpecError, match="CPU 999 not available.*available: 0-1"):
        check_cpus_available((0, 999), (0, 1))


@pytest.mark.parametrize("name", ["a", "web-1", "db.local", "x_y", "A9", "a" * MAX_NAME, "a.b-c_d"])
def test_validate_name_accepts(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "a/b", "/a", "..", "a..b", "a b", " a", "a" * (MAX_NAME + 1), ".a", "-a",
                                  "_a", "a\0", "é", "a:b", "a\n"])
def test_validate_name_refuses(name: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid container name"):
        validate_name(name)


@pytest.mark.parametrize("name", ["web", "db.local", "a-b.c-d", "x" * 64, "A1"])
def test_validate_hostname_accepts(name: str) -> None:
    assert validate_hostname(name) == name


@pytest.mark.parametrize("name", ["", "x" * 65, "-a", "a-", "a..b", ".a", "a.", "a_b", "a b", "a/b", "é"])
def test_validate_hostname_refuses(name: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid hostname"):
        validate_hostname(name)


@pytest.mark.parametrize(("item", "expected"), [
    ("FOO=bar", ("FOO", "bar")), ("FOO=", ("FOO", "")), ("FOO=a=b", ("FOO", "a=b")), ("_X1=y z", ("_X1", "y z")),
    ("lower=1", ("lower", "1")),
])
def test_parse_env_accepts(item: str, expected: tuple[str, str]) -> None:
    assert parse_env(item) == expected


@pytest.mark.parametrize("item", ["FOO", "", "=bar", "1A=x", "A-B=x", "A B=x", "A=\0", "A\0=x"])
def test_parse_env_refuses(item: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid environment variable"):
        parse_env(item)


@pytest.mark.parametrize(("text", "expected"), [("0.5", 0.5), ("1", 1.0), ("1.5", 1.5), ("0.01", 0.01)])
def test_parse_cpu_quota_accepts(text: str, expected: float) -> None:
    assert parse_cpu_quota(text, 2) == expected


@pytest.mark.parametrize("text", ["0", "-1", "abc", "", "nan", "inf", "-inf", "0.001", "3"])
def test_parse_cpu_quota_refuses(text: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid CPU quota"):
        parse_cpu_quota(text, 2)


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("100", 100), (" 7 ", 7)])
def test_parse_pids_limit_accepts(text: str, expected: int) -> None:
    assert parse_pids_limit(text) == expected


@pytest.mark.parametrize("text", ["0", "-1", "abc", "", "1.5", "00", "٣"])
def test_parse_pids_limit_refuses(text: str) -> None:
    with pytest.raises(InvalidSpecError, match="invalid pids limit"):
        parse_pids_limit(text)


def test_parse_cgroup_driver() -> None:
    for driver in ("v1", "v2", "systemd"):
        assert parse_cgroup_driver(driver) == driver
    for bad in ("", "V1", "cgroupfs", "v3"):
        with pytest.raises(InvalidSpecError, match="invalid cgroup driver"):
            parse_cgroup_driver(bad)


@pytest.mark.parametrize(("value", "text"), [(512 * M, "512M"), (G, "1G"), (300 * K, "300K"), (100, "100B"),
                                             (3 * G, "3G")])
def test_format_size(value: int, text: str) -> None:
    assert format_size(value) == text
    assert parse_size(text) == value


def test_spec_module_imports_stay_lean() -> None:
    import subprocess
    import sys

    # Compared with the interpreter's own start-up (the editable install's finder imports some of them).
    code = ("import sys; before = set(sys.modules); import rustainer.backend.spec; "
            "print(sorted(m for m in ('dataclasses','re','json','pathlib','inspect') if m in set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
