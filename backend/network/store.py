"""Networks and their address leases under RUSTAINER_ROOT/networks/: ``<name>.json`` (what the
network is: its name, subnet and gateway) and ``<name>.leases`` (who is on it now: the leases, the
allocation cursor, whether its bridge is up, since when it is idle).

Every change happens under one exclusive flock (``networks/lock``) held for the whole read-modify-
write, and for the kernel work that goes with it (bringing a bridge up or down, adding a veth), so a
container leaving cannot take the bridge down under one that is joining, and an address is never
handed out twice. The default network ``bridge`` exists without being created: its record is
written the first time anything asks for it.

The two files differ in what they must survive. A network made by ``network create`` must outlive
a crash or power loss: its record is written durably (fsync'ed, as container state is). Its leases
need not: after a reboot none of its members runs and its bridge is gone, and the next command
reconciles whatever the file says; so they are replaced atomically but without the two fsyncs
(1-3 ms on every bridged container's start and end). A leases file lost or cut short by a crash
reads as no leases.
"""

from __future__ import annotations

import fcntl
import os
import time

from rustainer.backend.errors import NetworkError
from rustainer.backend.network import DEFAULT_NETWORK

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from rustainer.backend.network.ipam import Subnet


# What changes as members come and go (the leases file), as opposed to what the network is.
RUNTIME_KEYS = frozenset({"leases", "cursor", "active", "masquerade", "idle_since", "linger"})


class NetworkStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, "networks")
        self._written: dict[str, dict[str, Any]] = {}  # each record as last read or written here

    def ensure(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.json")

    def leases_path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.leases")

    def lock(self) -> _Lock:
        self.ensure()
        return _Lock(os.path.join(self.dir, "lock"))

    def names(self) -> list[str]:
        try:
            found = {n[:-5] for n in os.listdir(self.dir) if n.endswith(".json")}
        except FileNotFoundError:
            found = set()
        return sorted(found | {DEFAULT_NETWORK})

    def exists(self, name: str) -> bool:
        return name == DEFAULT_NETWORK or os.path.exists(self.path(name))

    def load(self, name: str) -> dict[str, Any] | None:
        """The network's record and leases as one dict; None if there is no such network."""
        from rustainer.backend.util.jsonfile import loads

        try:
            with open(self.path(name)) as f:
                data = loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError as err:
            raise NetworkError(f"the record of network {name} is damaged ({err}); remove {self.path(name)}") from err
        if not isinstance(data, dict):
            raise NetworkError(f"the record of network {name} is damaged (not an object); remove {self.path(name)}")
        self._written[name] = {k: v for k, v in data.items() if k not in RUNTIME_KEYS}
        try:
            with open(self.leases_path(name)) as f:
                runtime = loads(f.read())
        except FileNotFoundError:
            runtime = None  # none yet, or a record from before the split: its own keys stand
        except ValueError:
            runtime = {}  # cut short by a crash: no member survived it
        if runtime is not None:
            kept = {k: v for k, v in data.items() if k not in RUNTIME_KEYS}
            data = {**kept, **runtime} if isinstance(runtime, dict) else kept
        data.setdefault("leases", {})
        data.setdefault("cursor", 1)
        return data

    def save(self, data: dict[str, Any]) -> None:
        """The leases every time (atomically, not durably); the record only when it changed since
        this store read or wrote it (durably)."""
        from rustainer.backend.util.jsonfile import write

        name = data["name"]
        config = {k: v for k, v in data.items() if k not in RUNTIME_KEYS}
        if self._written.get(name) != config:
            write(self.path(name), config)
            self._written[name] = config
        write(self.leases_path(name), {k: v for k, v in data.items() if k in RUNTIME_KEYS}, durable=False)

    def delete(self, name: str) -> None:
        for path in (self.leases_path(name), self.path(name)):  # the record last: it names the network
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self._written.pop(name, None)

    def subnets(self, *, but: str | None = None) -> list[tuple[str, Subnet]]:
        """Every stored network's subnet (labelled for error messages), except ``but``'s."""
        from rustainer.backend.network.ipam import Subnet

        out = []
        for name in self.names():
            if name == but:
                continue
            data = self.load(name)
            if data is not None:
                out.append((f"network {name}", Subnet(data["subnet"])))
        return out


def new_record(name: str, subnet: Subnet) -> dict[str, Any]:
    from rustainer.backend.network.ipam import gateway_of

    return {"name": name, "subnet": str(subnet), "gateway": gateway_of(subnet), "created_at": time.time(),
            "cursor": 1, "leases": {}}


class _Lock:
    """``with store.lock():`` an exclusive flock on the networks folder's lock file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Lock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *_exc: object) -> None:
        os.close(self.fd)
        self.fd = -1
