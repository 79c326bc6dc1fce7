"""Networks as the container layer sees them: before a network is listed, inspected or removed,
its members are reconciled, so a dead container's lease never keeps a network busy or shows in it.

(The network layer itself never imports the container layer: it is handed this pruning step.)
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def prune(root: str, name: str) -> None:
    """Reconcile the network's members: a dead container's lease goes, a removed one's too."""
    from rustainer.backend.container.cleanup import reconcile
    from rustainer.backend.container.state import StateStore
    from rustainer.backend.errors import ContainerNotFoundError
    from rustainer.backend.network import manager

    states = StateStore(root)
    for cid in manager.member_ids(root, name):
        try:
            reconcile(states, states.load_or_damaged(cid))
        except ContainerNotFoundError:
            manager.leave(root, name, cid)


def create(root: str, name: str, subnet: str | None) -> dict[str, Any]:
    from rustainer.backend.network import manager

    return manager.create(root, name, subnet)


def remove(root: str, name: str) -> None:
    from rustainer.backend.network import manager
    from rustainer.backend.network.store import NetworkStore

    if NetworkStore(root).exists(name):
        prune(root, name)
    manager.remove(root, name)


def list_networks(root: str) -> list[dict[str, Any]]:
    from rustainer.backend.network import manager

    return manager.list_networks(root, prune)


def inspect(root: str, name: str) -> dict[str, Any]:
    from rustainer.backend.network import manager

    return manager.inspect(root, name, prune)
