"""A network's nftables rules: one table ``inet rustainer_<tag>`` per network, removed with it.

The table holds a set of the addresses to masquerade (containers started without ``--no-nat``), a
postrouting chain that masquerades them when they leave through anything but the network's own
bridge (only when the host has a default route), and a forward chain that drops traffic between
this bridge and any other rustainer bridge, so two networks cannot reach each other even on a host
that forwards. Nothing outside our own table is ever read or changed.
"""

from __future__ import annotations

from rustainer.backend.errors import NetworkError
from rustainer.backend.network import nft

TYPE_CHECKING = False
if TYPE_CHECKING:
    from rustainer.backend.network.nft import Result


def _nft(script: str, *, check: bool = True) -> Result:
    result = nft.run(script)
    if check and result.returncode != 0:
        raise NetworkError(f"nftables refused the network's rules: {nft_error(result.error)}")
    return result


def nft_error(stderr: str) -> str:
    """nft's first complaint as one line: its error text and the statement it refused.

    nft writes ``/dev/stdin:1:18-39: Error: No such file or directory``, then the statement, then a
    line of carets under the faulty part: that becomes ``No such file or directory (add element
    ...)``."""
    lines = [line.strip() for line in stderr.splitlines()]
    for i, line in enumerate(lines):
        _, found, text = line.partition("Error: ")
        if found:
            text = text.strip() or "error"
            statement = lines[i + 1] if i + 1 < len(lines) else ""
            if statement and statement.strip("^~ "):
                return f"{text} ({statement})"
            return text
    meaningful = [line for line in lines if line.strip("^~ ")]
    return meaningful[-1] if meaningful else "no reason given"


def table_script(table: str, bridge: str, subnet: str, masquerade: bool, natted: tuple[str, ...] = ()) -> str:
    """The whole table, created atomically in one ``nft -f`` transaction; a leftover of ours (from a
    crash) is replaced in the same transaction (``add`` then ``delete`` never fails on absence)."""
    elements = f" elements = {{ {', '.join(natted)} }};" if natted else ""
    lines = [
        f"add table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
        f"  set natted {{ type ipv4_addr;{elements} }}",
        "  chain forward {",
        "    type filter hook forward priority filter; policy accept;",
        f'    iifname "{bridge}" oifname "rtn-*" oifname != "{bridge}" drop',
        f'    oifname "{bridge}" iifname "rtn-*" iifname != "{bridge}" drop',
        "  }",
    ]
    if masquerade:
        lines += [
            "  chain postrouting {",
            "    type nat hook postrouting priority srcnat; policy accept;",
            f'    ip saddr @natted ip saddr {subnet} oifname != "{bridge}" masquerade',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def create_table(table: str, bridge: str, subnet: str, masquerade: bool, natted: tuple[str, ...] = ()) -> None:
    _nft(table_script(table, bridge, subnet, masquerade, natted))


def delete_table(table: str) -> None:
    """Remove our table; absent is fine (``destroy`` would say so, but needs nft >= 1.0.8)."""
    _nft(f"delete table inet {table}\n", check=False)


def add_masquerade(table: str, address: str) -> None:
    """One member's address into the set (over nfnetlink, not libnftables: see ``nfnl``)."""
    from rustainer.backend.network import nfnl

    nfnl.add_address(table, "natted", address)


def remove_masquerade(table: str, address: str) -> None:
    """Out of the set; absent (or the table) is fine. A process that exits right after this waits
    at its exit for nftables' deferred clean-up (an RCU grace period, ~13 ms here), so a container's
    normal end leaves its address in the set instead (see ``manager._leave_locked``)."""
    from rustainer.backend.network import nfnl

    nfnl.remove_address(table, "natted", address)


def list_table(table: str) -> str | None:
    result = nft.run(f"list table inet {table}\n")
    return result.output if result.returncode == 0 else None
