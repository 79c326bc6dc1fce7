"""Bridge networks: address pools, host bridges and veth pairs, /etc/hosts, published ports, NAT.

Only ``run --network bridge|NAME`` and the ``network`` verb import anything below this package's
``__init__``, so ``none`` and ``host`` never pay for netlink, nftables or the address pool.
"""

from __future__ import annotations

DEFAULT_NETWORK = "bridge"
BUILTIN_MODES = ("none", "host")


def is_bridge(network: str) -> bool:
    """Whether a container on ``network`` gets a veth pair to a host bridge (not none, not host)."""
    return network not in BUILTIN_MODES
