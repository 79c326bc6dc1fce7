"""Container specs as plain immutable data, and the pure parsers that build them from user input.

Everything here is side-effect free (no file system, no kernel) so it can be unit-tested without
root and reused by the CLI and the dashboard's dialogs to validate input the same way.
"""

from __future__ import annotations

from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.util.record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Iterable

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")
MAX_NAME = 64
CGROUP_DRIVERS = ("v1", "v2", "systemd")
NETWORK_MODES = ("none", "host")


@record
class Resources:
    """Limits for one container. ``None`` means "no limit" for that resource."""

    cpus: tuple[int, ...] | None = None  # CPU ids (cpuset)
    memory: int | None = None  # bytes; swap is limited to the same total
    cpu_quota: float | None = None  # share of CPUs, like docker's --cpus 1.5
    pids_limit: int | None = None


@record
class ContainerSpec:
    """What to run and how; built from CLI options or the dashboard's dialog, never mutated."""

    name: str
    command: tuple[str, ...] = ()  # empty: the image's shell
    rootfs: str | None = None  # None: the read-only host view
    directory: str | None = None  # host folder bound read-write at the same path, the working dir
    hostname: str | None = None  # None: the container's name
    env: tuple[tuple[str, str], ...] = ()
    resources: Resources = Resources()
    cgroup_driver: str | None = None  # None: detect
    cgroup_parent: str | None = None  # None: the caller's own cgroup, per hierarchy
    network: str = "none"
    remove: bool = False  # --rm
    tty: bool = False  # give the command a fresh pty
    init: bool = True  # a small PID 1 that reaps orphans and forwards signals (--no-init: the command is PID 1)
    publish: tuple[tuple[str, int, int, str], ...] = ()  # -p: (host ip, host port, container port, tcp|udp)
    nat: bool = True  # masquerade outbound traffic from a bridge network (--no-nat: off)
    # run --image: the image's id, the name it was asked by, its layers as overlay lower folders
    # (``l/<short id>``, top first, relative to the image store), and what its config asks for
    image: str | None = None
    image_name: str | None = None
    layers: tuple[str, ...] = ()
    workdir: str | None = None  # the working directory inside (created if missing); None: -d or /
    user: tuple[int, int, tuple[int, ...]] | None = None  # uid, gid, supplementary gids; None: root

    @property
    def effective_hostname(self) -> str:
        return self.hostname or self.name


def _is_digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts other scripts' digits (and ``int`` reads them)."""
    return text.isascii() and text.isdigit()


def parse_size(text: str) -> int:
    """``512M``, ``1g``, ``300K``, ``1048576``, ``64MiB`` -> bytes (binary units, case-insensitive)."""
    raw = text.strip().lower()
    if raw.endswith("ib"):
        raw = raw[:-2]
    elif raw.endswith("b") and len(raw) > 1 and raw[-2] in "kmgt":
        raw = raw[:-1]
    unit = raw[-1:] if raw[-1:] in _UNITS and not raw[-1:].isdigit() else ""
    number = raw[: len(raw) - len(unit)]
    if not number or not _is_digits(number):
        raise InvalidSpecError(
            f"invalid memory size {text!r}: use a positive whole number with an optional unit K, M, G or T (e.g. 512M)"
        )
    value = int(number) * _UNITS[unit]
    if value <= 0:
        raise InvalidSpecError(f"invalid memory size {text!r}: it must be greater than zero")
    return value


MIN_MEMORY = 6 << 20  # docker's minimum: below it a start fails as an OOM kill instead of as bad input


def parse_memory_limit(text: str) -> int:
    """A container's memory limit (``-m``, ``update --memory``): a size of at least 6M."""
    value = parse_size(text)
    if value < MIN_MEMORY:
        raise InvalidSpecError(f"memory limit {text!r} is too small: give at least 6M (as docker asks)")
    return value


def parse_cpus(text: str) -> tuple[int, ...]:
    """The seed's CPU-thread lists: ``1,2,3,4``, ``1 5 7 10``, ``0-3``, or mixed -> sorted ids."""
    items = text.replace(",", " ").split()
    if not items:
        raise InvalidSpecError(f"invalid CPU list {text!r}: give CPU ids like 0,1 or 0-3")
    cpus: set[int] = set()
    for item in items:
        lo, sep, hi = item.partition("-")
        if not _is_digits(lo) or (sep and not _is_digits(hi)):
            raise InvalidSpecError(f"invalid CPU list {text!r}: {item!r} is not a CPU id or a range like 0-3")
        start, end = int(lo), int(hi) if sep else int(lo)
        if end < start:
            raise InvalidSpecError(f"invalid CPU list {text!r}: the range {item!r} runs backwards")
        cpus.update(range(start, end + 1))
    return tuple(sorted(cpus))


def format_cpus(cpus: tuple[int, ...]) -> str:
    """Sorted ids -> the kernel's list format (``0-3,5``)."""
    parts: list[str] = []
    run: list[int] = []
    for cpu in sorted(cpus):
        if run and cpu == run[-1] + 1:
            run.append(cpu)
            continue
        if run:
            parts.append(_span(run))
        run = [cpu]
    if run:
        parts.append(_span(run))
    return ",".join(parts)


def _span(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def check_cpus_available(cpus: tuple[int, ...], available: tuple[int, ...]) -> None:
    missing = [c for c in cpus if c not in set(available)]
    if missing:
        raise InvalidSpecError(
            f"CPU {format_cpus(tuple(missing))} not available on this host (available: {format_cpus(available)})"
        )


def parse_cpu_quota(text: str, ncpus: int | None = None) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InvalidSpecError(f"invalid CPU quota {text!r}: give a share of CPUs such as 0.5 or 1.5") from None
    if not value > 0 or value != value or value == float("inf"):
        raise InvalidSpecError(f"invalid CPU quota {text!r}: it must be greater than zero")
    if value < 0.01:
        raise InvalidSpecError(f"invalid CPU quota {text!r}: the smallest quota is 0.01 CPUs")
    if ncpus is not None and value > ncpus:
        raise InvalidSpecError(f"invalid CPU quota {text!r}: this host has only {ncpus} CPUs")
    return value


def parse_pids_limit(text: str) -> int:
    raw = text.strip()
    if not _is_digits(raw) or int(raw) < 1:
        raise InvalidSpecError(f"invalid pids limit {text!r}: give a whole number of at least 1")
    return int(raw)


def validate_name(name: str) -> str:
    if not name:
        raise InvalidSpecError("invalid container name '': a name cannot be empty")
    if len(name) > MAX_NAME:
        raise InvalidSpecError(f"invalid container name {name!r}: at most {MAX_NAME} characters")
    if name[0] in "._-" or not set(name) <= _NAME_CHARS or ".." in name:
        raise InvalidSpecError(
            f"invalid container name {name!r}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        )
    return name


def validate_hostname(name: str) -> str:
    labels = name.split(".")
    if not name or len(name) > 64 or not set(name) <= _HOST_CHARS or any(
        not label or label[0] == "-" or label[-1] == "-" for label in labels
    ):
        raise InvalidSpecError(f"invalid hostname {name!r}: use letters, digits, '-' and '.', at most 64 characters")
    return name


def parse_env(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key or "\0" in item or not (key[0].isalpha() or key[0] == "_") or not all(
        c.isalnum() or c == "_" for c in key
    ):
        raise InvalidSpecError(f"invalid environment variable {item!r}: use KEY=VALUE")
    return key, value


def parse_cgroup_driver(text: str) -> str:
    if text not in CGROUP_DRIVERS:
        raise InvalidSpecError(f"invalid cgroup driver {text!r}: choose one of {', '.join(CGROUP_DRIVERS)}")
    return text


def format_size(value: int) -> str:
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}B" if value < 1024 else f"{value / (1 << 20):.1f}M"


def _parse_port(text: str, what: str, item: str) -> int:
    if not _is_digits(text) or not 1 <= int(text) <= 65535:
        raise InvalidSpecError(f"invalid published port {item!r}: the {what} port must be a number from 1 to 65535")
    return int(text)


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 4 and all(_is_digits(p) and len(p) <= 3 and int(p) <= 255 for p in parts)


def parse_publish(item: str) -> tuple[str, int, int, str]:
    """``[HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]`` -> (host ip, host port, container port, protocol).

    The host address defaults to 127.0.0.1: publishing on every interface must be asked for.
    """
    body, slash, proto = item.partition("/")
    proto = proto.lower() if slash else "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidSpecError(f"invalid published port {item!r}: the protocol must be tcp or udp")
    parts = body.split(":")
    if len(parts) == 2:
        host_ip, host_port, container_port = "127.0.0.1", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host_port, container_port = parts
        if not _is_ipv4(host_ip):
            raise InvalidSpecError(f"invalid published port {item!r}: {host_ip!r} is not an IPv4 host address")
        host_ip = ".".join(str(int(p)) for p in host_ip.split("."))
    else:
        raise InvalidSpecError(f"invalid published port {item!r}: use [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp]")
    return host_ip, _parse_port(host_port, "host", item), _parse_port(container_port, "container", item), proto


def format_publish(mapping: tuple[str, int, int, str]) -> str:
    host_ip, host_port, container_port, proto = mapping
    return f"{host_ip}:{host_port}->{container_port}/{proto}"


def check_publish(publish: tuple[tuple[str, int, int, str], ...], network: str) -> None:
    """Publishing needs a bridge network, and one host port (per address and protocol) is used once."""
    if not publish:
        return
    if network in NETWORK_MODES:
        raise InvalidSpecError(f"cannot publish ports with --network {network}: use --network bridge or a named network")
    seen: set[tuple[str, int, str]] = set()
    for host_ip, host_port, _cport, proto in publish:
        key = (host_ip, host_port, proto)
        wildcard = ("0.0.0.0", host_port, proto)
        clash = key in seen or wildcard in seen or (host_ip == "0.0.0.0" and any(
            k[1:] == (host_port, proto) for k in seen))
        if clash:
            raise InvalidSpecError(f"host port {host_port}/{proto} is published twice")
        seen.add(key)


def check_one_root(image: str | None, rootfs: str | None) -> None:
    """A container's root is an image or a rootfs folder (or neither: the host view), never both."""
    if image and rootfs:
        raise InvalidSpecError("an image and a rootfs folder both name the root: give one")


def spec_from_options(*, name: str | None = None, command: tuple[str, ...] = (), rootfs: str | None = None,
                      directory: str | None = None, cpus: str | None = None, memory: str | None = None,
                      cpu_quota: str | None = None, pids_limit: str | None = None, hostname: str | None = None,
                      env: Iterable[str] = (), network: str | None = None, publish: Iterable[str] = (),
                      nat: bool = True, cgroup_driver: str | None = None, cgroup_parent: str | None = None,
                      remove: bool = False, tty: bool = False, init: bool = True,
                      ncpus: int | None = None) -> ContainerSpec:
    """A spec from ``run``'s options as a person typed them (the CLI's flags, the dashboard's dialog):
    ``None`` is "not given"; every value is checked by the parsers above, the first bad one raises
    InvalidSpecError. Relative folders are made absolute (against the current directory). A CPU
    quota is checked against ``ncpus`` (default: the CPUs this process may use)."""
    import os

    cpu_set = parse_cpus(cpus) if cpus is not None else None
    memory_bytes = parse_memory_limit(memory) if memory is not None else None
    quota = None
    if cpu_quota is not None:
        quota = parse_cpu_quota(cpu_quota, len(os.sched_getaffinity(0)) if ncpus is None else ncpus)
    pids = parse_pids_limit(pids_limit) if pids_limit is not None else None
    host = validate_hostname(hostname) if hostname is not None else None
    variables = tuple(parse_env(e) for e in env)
    driver = parse_cgroup_driver(cgroup_driver) if cgroup_driver is not None else None
    if name is not None:
        validate_name(name)
    return ContainerSpec(
        name=name or "",
        command=command,
        rootfs=os.path.abspath(rootfs) if rootfs else None,
        directory=os.path.abspath(directory) if directory else None,
        hostname=host,
        env=variables,
        resources=Resources(cpus=cpu_set, memory=memory_bytes, cpu_quota=quota, pids_limit=pids),
        cgroup_driver=driver,
        cgroup_parent=cgroup_parent,
        network=network or "none",
        publish=tuple(parse_publish(p) for p in publish),
        nat=nat,
        remove=remove,
        tty=tty,
        init=init,
    )
