"""``rustainer-tui``: the full-screen dashboard (the app itself is in tui_app.py).

Kept apart from the CLI so that ``rustainer --help`` and container starts never import Textual.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rustainer-tui", description="Dashboard of rustainer's containers: a live list and each one's shell. "
        "Keys: ctrl+] leaves the terminal for the dashboard's own keys, ctrl+pgdn/pgup or alt+1..9 switch, "
        "ctrl+q quits (containers keep running).")
    parser.add_argument("--root", help="state folder (default: $RUSTAINER_ROOT or /var/lib/rustainer)")
    parser.add_argument("--frozen-stats", action="store_true", help=argparse.SUPPRESS)  # screenshots
    args = parser.parse_args(argv)

    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_stats import FrozenStats

    create_app(args.root, stats=FrozenStats() if args.frozen_stats else None).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
