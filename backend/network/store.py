"""Networks and their address leases under RUSTAINER_ROOT/networks/<name>.json.

Every change happens under one exclusive flock (``networks/lock``) held for the whole read-modify-
write, and for the kernel work that goes with it (bringing a bridge up or down, adding a veth), so a
container leaving cannot take the bridge down under one that is joining, and an address is never
handed out twice. The default network ``bridge`` exists without being created: its record is
written the first time anything asks for it.
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


class NetworkStore:
    def __init__(self, root: str) -> None:
        self.root = root
        self.dir = os.path.join(root, "networks")

    def ensure(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.json")

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
        return data

    def save(self, data: dict[str, Any]) -> None:
        from rustainer.backend.util.jsonfile import write

        write(self.path(data["name"]), data)

    def delete(self, name: str) -> None:
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            pass

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
