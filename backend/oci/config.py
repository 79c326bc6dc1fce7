"""A bundle's ``config.json`` (OCI runtime-spec 1.x) as plain records, parsed without side effects.

Everything the runtime acts on is decided here, from the JSON alone, so the rules (which mount
options are flags and which are data, which namespaces are made or joined, what a capability name
means) are unit-tested without root. Anything malformed is an ``InvalidSpecError`` with one line
naming the field; fields the runtime does not act on (AppArmor, SELinux labels) are kept as
warnings for the caller to log.
"""

from __future__ import annotations

import os

from rustainer.backend.errors import InvalidSpecError
from rustainer.backend.linux.capabilities import CAPS
from rustainer.backend.linux.seccomp_oci import Seccomp, SeccompArg, SeccompRule
from rustainer.backend.util.record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# mount(8) option -> (flags to set, flags to clear); everything else is file system data.
MS = {"ro": (1, 0), "rw": (0, 1), "nosuid": (2, 0), "suid": (0, 2), "nodev": (4, 0), "dev": (0, 4),
      "noexec": (8, 0), "exec": (0, 8), "sync": (16, 0), "async": (0, 16), "remount": (32, 0),
      "mand": (64, 0), "nomand": (0, 64), "dirsync": (128, 0), "noatime": (1024, 0), "atime": (0, 1024),
      "nodiratime": (2048, 0), "diratime": (0, 2048), "bind": (4096, 0), "rbind": (4096 | 16384, 0),
      "silent": (32768, 0), "loud": (0, 32768), "relatime": (1 << 21, 0), "norelatime": (0, 1 << 21),
      "strictatime": (1 << 24, 0), "nostrictatime": (0, 1 << 24)}
MS_REC = 16384
PROPAGATION = {"private": 1 << 18, "slave": 1 << 19, "shared": 1 << 20, "unbindable": 1 << 17}
MOUNT_TYPES = ("bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "none", "")
NAMESPACE_TYPES = {"pid": 0x20000000, "network": 0x40000000, "mount": 0x00020000, "ipc": 0x08000000,
                   "uts": 0x04000000, "user": 0x10000000, "cgroup": 0x02000000, "time": 0x00000080}
RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
           "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
           "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
           "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


@record
class Mount:
    destination: str
    type: str
    source: str
    flags: int = 0  # MS_* to mount with (bind/rbind included)
    data: str = ""
    propagation: int = 0  # MS_PRIVATE/SLAVE/SHARED/UNBINDABLE (| MS_REC), applied after the mount
    options: tuple[str, ...] = ()

    @property
    def bind(self) -> bool:
        return self.type == "bind" or bool(self.flags & 4096)


@record
class Capabilities:
    bounding: int = 0
    effective: int = 0
    permitted: int = 0
    inheritable: int = 0
    ambient: int = 0


@record
class Process:
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()
    umask: int | None = None
    capabilities: Capabilities | None = None  # None: the section is absent (no capabilities at all)
    rlimits: tuple[tuple[int, int, int], ...] = ()  # (resource, soft, hard)
    no_new_privileges: bool = False
    terminal: bool = False
    console_size: tuple[int, int] | None = None  # (height, width)
    oom_score_adj: int | None = None

    def environ(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for item in self.env:
            key, _, value = item.partition("=")
            env[key] = value
        return env


@record
class Namespace:
    type: str
    path: str | None = None

    @property
    def flag(self) -> int:
        return NAMESPACE_TYPES[self.type]


@record
class Device:
    """A ``linux.resources.devices`` rule (for the devices cgroup)."""

    allow: bool
    type: str = "a"
    major: int | None = None
    minor: int | None = None
    access: str = "rwm"


@record
class DeviceNode:
    """A ``linux.devices`` entry: a node to make in the container's /dev."""

    path: str
    type: str
    major: int
    minor: int
    mode: int = 0o666
    uid: int = 0
    gid: int = 0


@record
class Resources:
    memory: int | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpus: str | None = None
    mems: str | None = None
    pids: int | None = None
    devices: tuple[Device, ...] = ()


@record
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@record
class OciConfig:
    oci_version: str
    root: str  # absolute host path of the root filesystem
    readonly_root: bool
    process: Process | None
    mounts: tuple[Mount, ...] = ()
    hostname: str | None = None
    namespaces: tuple[Namespace, ...] = ()
    resources: Resources = Resources()
    cgroups_path: str | None = None
    seccomp: Seccomp | None = None
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    sysctl: tuple[tuple[str, str], ...] = ()
    devices: tuple[DeviceNode, ...] = ()
    hooks: tuple[tuple[str, tuple[Hook, ...]], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    rootfs_propagation: int = 0
    warnings: tuple[str, ...] = ()

    def namespace(self, kind: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == kind:
                return ns
        return None

    def hooks_of(self, kind: str) -> tuple[Hook, ...]:
        return dict(self.hooks).get(kind, ())


# ---- parsing ------------------------------------------------------------------------------------


def load(bundle: str) -> OciConfig:
    """``bundle``/config.json, parsed; a missing or unreadable file is one line too."""
    from rustainer.backend.util.jsonfile import loads

    path = os.path.join(bundle, "config.json")
    try:
        with open(path) as fh:
            raw = loads(fh.read())
    except FileNotFoundError:
        raise InvalidSpecError(f"{path}: no such file (is {bundle} a bundle?)") from None
    except (OSError, ValueError) as err:
        raise InvalidSpecError(f"cannot read {path}: {err}") from err
    return parse(raw, bundle)


def _obj(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidSpecError(f"config.json: {what} must be an object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidSpecError(f"config.json: {what} must be a list")
    return value


def _int(value: Any, what: str, default: int | None = None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpecError(f"config.json: {what} must be an integer")
    return value


def _str(value: Any, what: str, default: str | None = None) -> str | None:
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidSpecError(f"config.json: {what} must be a string")
    return value


def _strings(value: Any, what: str) -> tuple[str, ...]:
    items = _list(value, what)
    if not all(isinstance(x, str) for x in items):
        raise InvalidSpecError(f"config.json: {what} must be a list of strings")
    return tuple(items)


def parse(raw: Any, bundle: str) -> OciConfig:
    raw = _obj(raw, "the document")
    version = _str(raw.get("ociVersion"), "ociVersion") or ""
    if not version.startswith("1."):
        raise InvalidSpecError(f"config.json: unsupported ociVersion {version!r} (1.x expected)")
    root = _obj(raw.get("root"), "root")
    root_path = _str(root.get("path"), "root.path")
    if not root_path:
        raise InvalidSpecError("config.json: root.path is required")
    warnings: list[str] = []
    linux = _obj(raw.get("linux"), "linux")
    process = parse_process(raw["process"], warnings) if raw.get("process") is not None else None
    hooks = _obj(raw.get("hooks"), "hooks")
    parsed_hooks = []
    for kind in HOOK_KINDS:
        items = tuple(parse_hook(h, f"hooks.{kind}") for h in _list(hooks.get(kind), f"hooks.{kind}"))
        if items:
            parsed_hooks.append((kind, items))
    for key in ("mountLabel",):
        if linux.get(key):
            warnings.append(f"linux.{key} (SELinux) is ignored")
    if linux.get("uidMappings") or linux.get("gidMappings"):
        raise InvalidSpecError("config.json: user namespaces (uidMappings) are not supported by rustainer-oci")
    annotations = _obj(raw.get("annotations"), "annotations")
    return OciConfig(
        oci_version=version,
        root=os.path.normpath(os.path.join(bundle, root_path)),
        readonly_root=bool(root.get("readonly", False)),
        process=process,
        mounts=tuple(parse_mount(m, i) for i, m in enumerate(_list(raw.get("mounts"), "mounts"))),
        hostname=_str(raw.get("hostname"), "hostname"),
        namespaces=parse_namespaces(_list(linux.get("namespaces"), "linux.namespaces")),
        resources=parse_resources(_obj(linux.get("resources"), "linux.resources")),
        cgroups_path=_str(linux.get("cgroupsPath"), "linux.cgroupsPath"),
        seccomp=parse_seccomp(linux["seccomp"]) if linux.get("seccomp") is not None else None,
        masked_paths=_strings(linux.get("maskedPaths"), "linux.maskedPaths"),
        readonly_paths=_strings(linux.get("readonlyPaths"), "linux.readonlyPaths"),
        sysctl=tuple(sorted((str(k), str(v)) for k, v in _obj(linux.get("sysctl"), "linux.sysctl").items())),
        devices=tuple(parse_device_node(d) for d in _list(linux.get("devices"), "linux.devices")),
        hooks=tuple(parsed_hooks),
        annotations=tuple(sorted((str(k), str(v)) for k, v in annotations.items())),
        rootfs_propagation=parse_propagation(_str(linux.get("rootfsPropagation"), "linux.rootfsPropagation") or ""),
        warnings=tuple(warnings),
    )


def parse_propagation(option: str) -> int:
    if not option:
        return 0
    rec = option.startswith("r")
    base = option[1:] if rec else option
    if base not in PROPAGATION:
        raise InvalidSpecError(f"config.json: unknown mount propagation {option!r}")
    return PROPAGATION[base] | (MS_REC if rec else 0)


def parse_mount(raw: Any, i: int) -> Mount:
    m = _obj(raw, f"mounts[{i}]")
    dest = _str(m.get("destination"), f"mounts[{i}].destination")
    if not dest or not dest.startswith("/"):
        raise InvalidSpecError(f"config.json: mounts[{i}].destination must be an absolute path")
    kind = _str(m.get("type"), f"mounts[{i}].type", "") or ""
    options = _strings(m.get("options"), f"mounts[{i}].options")
    flags, data, propagation = 0, [], 0
    for opt in options:
        if opt in MS:
            set_, clear = MS[opt]
            flags = (flags | set_) & ~clear
        elif opt in PROPAGATION or (opt.startswith("r") and opt[1:] in PROPAGATION):
            propagation = parse_propagation(opt)
        elif opt in ("nosymfollow", "idmap", "ridmap", "tmpcopyup"):
            continue  # not acted upon
        else:
            data.append(opt)
    if kind not in MOUNT_TYPES and not flags & 4096:
        raise InvalidSpecError(f"config.json: mounts[{i}] has unsupported type {kind!r}")
    source = _str(m.get("source"), f"mounts[{i}].source", kind) or kind
    if (kind == "bind" or flags & 4096) and not flags & 4096:
        flags |= 4096  # type bind without a bind option: a plain bind, as runc does
    return Mount(os.path.normpath(dest), kind, source, flags, ",".join(data), propagation, options)


def parse_capabilities(raw: Any, warnings: list[str]) -> Capabilities:
    c = _obj(raw, "process.capabilities")
    sets = {}
    for key in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        value = 0
        for name in _strings(c.get(key), f"process.capabilities.{key}"):
            short = name.lower().removeprefix("cap_")
            if short not in CAPS:
                warnings.append(f"unknown capability {name} ignored")
                continue
            value |= 1 << CAPS[short]
        sets[key] = value
    return Capabilities(**sets)


def parse_process(raw: Any, warnings: list[str]) -> Process:
    p = _obj(raw, "process")
    args = _strings(p.get("args"), "process.args")
    if not args:
        raise InvalidSpecError("config.json: process.args must name a command")
    cwd = _str(p.get("cwd"), "process.cwd", "/") or "/"
    if not cwd.startswith("/"):
        raise InvalidSpecError(f"config.json: process.cwd {cwd!r} must be an absolute path")
    user = _obj(p.get("user"), "process.user")
    gids = tuple(int(g) for g in _list(user.get("additionalGids"), "process.user.additionalGids"))
    rlimits = []
    for i, r in enumerate(_list(p.get("rlimits"), "process.rlimits")):
        r = _obj(r, f"process.rlimits[{i}]")
        kind = _str(r.get("type"), f"process.rlimits[{i}].type") or ""
        if kind not in RLIMITS:
            raise InvalidSpecError(f"config.json: unknown rlimit {kind!r}")
        rlimits.append((RLIMITS[kind], _int(r.get("soft"), "rlimit soft", 0) or 0, _int(r.get("hard"), "rlimit hard", 0) or 0))
    size = p.get("consoleSize")
    console_size = None
    if size is not None:
        size = _obj(size, "process.consoleSize")
        console_size = (_int(size.get("height"), "consoleSize.height", 0) or 0,
                        _int(size.get("width"), "consoleSize.width", 0) or 0)
    for key, what in (("apparmorProfile", "AppArmor profile"), ("selinuxLabel", "SELinux label")):
        if p.get(key):
            warnings.append(f"process.{key} ({what}) is ignored")
    caps = parse_capabilities(p["capabilities"], warnings) if p.get("capabilities") is not None else None
    return Process(
        args=args, env=_strings(p.get("env"), "process.env"), cwd=cwd,
        uid=_int(user.get("uid"), "process.user.uid", 0) or 0, gid=_int(user.get("gid"), "process.user.gid", 0) or 0,
        additional_gids=gids, umask=_int(user.get("umask"), "process.user.umask"),
        capabilities=caps, rlimits=tuple(rlimits), no_new_privileges=bool(p.get("noNewPrivileges", False)),
        terminal=bool(p.get("terminal", False)), console_size=console_size,
        oom_score_adj=_int(p.get("oomScoreAdj"), "process.oomScoreAdj"),
    )


def parse_namespaces(items: list[Any]) -> tuple[Namespace, ...]:
    seen: set[str] = set()
    result = []
    for i, raw in enumerate(items):
        n = _obj(raw, f"linux.namespaces[{i}]")
        kind = _str(n.get("type"), f"linux.namespaces[{i}].type") or ""
        if kind not in NAMESPACE_TYPES:
            raise InvalidSpecError(f"config.json: unknown namespace type {kind!r}")
        if kind in ("user", "time"):
            raise InvalidSpecError(f"config.json: {kind} namespaces are not supported by rustainer-oci")
        if kind in seen:
            raise InvalidSpecError(f"config.json: namespace {kind!r} is listed twice")
        seen.add(kind)
        path = _str(n.get("path"), f"linux.namespaces[{i}].path") or None
        result.append(Namespace(kind, path))
    return tuple(result)


def parse_resources(r: dict[str, Any]) -> Resources:
    mem = _obj(r.get("memory"), "linux.resources.memory")
    cpu = _obj(r.get("cpu"), "linux.resources.cpu")
    pids = _obj(r.get("pids"), "linux.resources.pids")
    devices = []
    for i, raw in enumerate(_list(r.get("devices"), "linux.resources.devices")):
        d = _obj(raw, f"linux.resources.devices[{i}]")
        devices.append(Device(bool(d.get("allow", False)), _str(d.get("type"), "device type", "a") or "a",
                              _int(d.get("major"), "device major"), _int(d.get("minor"), "device minor"),
                              _str(d.get("access"), "device access", "rwm") or "rwm"))

    def positive(value: int | None) -> int | None:
        return value if value is not None and value > 0 else None

    return Resources(
        memory=positive(_int(mem.get("limit"), "memory.limit")),
        memory_swap=_int(mem.get("swap"), "memory.swap"),
        memory_reservation=positive(_int(mem.get("reservation"), "memory.reservation")),
        cpu_shares=positive(_int(cpu.get("shares"), "cpu.shares")),
        cpu_quota=_int(cpu.get("quota"), "cpu.quota"),
        cpu_period=positive(_int(cpu.get("period"), "cpu.period")),
        cpus=_str(cpu.get("cpus"), "cpu.cpus") or None,
        mems=_str(cpu.get("mems"), "cpu.mems") or None,
        pids=positive(_int(pids.get("limit"), "pids.limit")),
        devices=tuple(devices),
    )


SECCOMP_ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                   "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")
SECCOMP_OPS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
               "SCMP_CMP_MASKED_EQ")


def parse_seccomp(raw: Any) -> Seccomp:
    s = _obj(raw, "linux.seccomp")
    default = _str(s.get("defaultAction"), "linux.seccomp.defaultAction") or ""
    if default not in SECCOMP_ACTIONS:
        raise InvalidSpecError(f"config.json: unknown seccomp action {default!r}")
    rules = []
    for i, r in enumerate(_list(s.get("syscalls"), "linux.seccomp.syscalls")):
        r = _obj(r, f"linux.seccomp.syscalls[{i}]")
        action = _str(r.get("action"), "seccomp action") or ""
        if action not in SECCOMP_ACTIONS:
            raise InvalidSpecError(f"config.json: unknown seccomp action {action!r}")
        args = []
        for a in _list(r.get("args"), "seccomp args"):
            a = _obj(a, "seccomp arg")
            op = _str(a.get("op"), "seccomp op") or ""
            if op not in SECCOMP_OPS:
                raise InvalidSpecError(f"config.json: unknown seccomp operator {op!r}")
            index = _int(a.get("index"), "seccomp arg index", 0) or 0
            if not 0 <= index < 6:
                raise InvalidSpecError(f"config.json: seccomp arg index {index} out of range")
            args.append(SeccompArg(index, _int(a.get("value"), "seccomp value", 0) or 0,
                                   _int(a.get("valueTwo"), "seccomp valueTwo", 0) or 0, op))
        rules.append(SeccompRule(_strings(r.get("names"), "seccomp names"), action,
                                 _int(r.get("errnoRet"), "seccomp errnoRet"), tuple(args)))
    return Seccomp(default, _int(s.get("defaultErrnoRet"), "defaultErrnoRet"),
                   _strings(s.get("architectures"), "seccomp architectures"), tuple(rules))


def parse_hook(raw: Any, what: str) -> Hook:
    h = _obj(raw, what)
    path = _str(h.get("path"), f"{what}.path") or ""
    if not path.startswith("/"):
        raise InvalidSpecError(f"config.json: {what}.path must be an absolute path")
    return Hook(path, _strings(h.get("args"), f"{what}.args"), _strings(h.get("env"), f"{what}.env"),
                _int(h.get("timeout"), f"{what}.timeout"))


def parse_device_node(raw: Any) -> DeviceNode:
    d = _obj(raw, "linux.devices[]")
    path = _str(d.get("path"), "linux.devices[].path") or ""
    kind = _str(d.get("type"), "linux.devices[].type") or ""
    if not path.startswith("/dev/") or kind not in ("c", "b", "u", "p"):
        raise InvalidSpecError(f"config.json: bad device {path!r} of type {kind!r}")
    return DeviceNode(path, kind, _int(d.get("major"), "major", 0) or 0, _int(d.get("minor"), "minor", 0) or 0,
                      _int(d.get("fileMode"), "fileMode", 0o666) or 0o666, _int(d.get("uid"), "uid", 0) or 0,
                      _int(d.get("gid"), "gid", 0) or 0)


def parse_process_file(path: str) -> tuple[Process, list[str]]:
    """``exec --process FILE``: one process object."""
    from rustainer.backend.util.jsonfile import loads

    try:
        with open(path) as fh:
            raw = loads(fh.read())
    except (OSError, ValueError) as err:
        raise InvalidSpecError(f"cannot read process file {path}: {err}") from err
    warnings: list[str] = []
    return parse_process(raw, warnings), warnings


def parse_resources_file(path: str) -> Resources:
    from rustainer.backend.util.jsonfile import loads

    try:
        with open(path) as fh:
            raw = loads(fh.read())
    except (OSError, ValueError) as err:
        raise InvalidSpecError(f"cannot read resources file {path}: {err}") from err
    return parse_resources(_obj(raw, "resources"))
