"""``rustainer-tui``: the full-screen dashboard (the app itself is in tui_app.py).

Kept apart from the CLI so that ``rustainer --help`` and container starts never import Textual.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="rustainer-tui", description="Dashboard of rustainer's containers: a live list and each one's shell. "
        "Keys: ctrl+] leaves the terminal for the dashboard's own keys (among them o: every container at once, "
        "| and -: split the view, m and B: broadcast input), ctrl+pgdn/pgup or alt+1..9 switch, "
        "ctrl+q quits (containers keep running).")
    parser.add_argument("--root", help="state folder (default: $RUSTAINER_ROOT or /var/lib/rustainer)")
    parser.add_argument("--frozen-stats", action="store_true", help=argparse.SUPPRESS)  # screenshots
    parser.add_argument("--serve", action="store_true",
                        help="serve the dashboard to web browsers (textual-serve) instead of this terminal; "
                        "the URL to open, with its access token, is printed at start")
    parser.add_argument("--host", default=None, help="--serve: address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="--serve: port (default: 8000; 0: a free one)")
    args = parser.parse_args(argv)
    if args.serve:
        from rustainer.app.tui_serve import DEFAULT_HOST, DEFAULT_PORT, serve

        return serve(args.root, args.host or DEFAULT_HOST, DEFAULT_PORT if args.port is None else args.port)
    if args.host is not None or args.port is not None:
        parser.error("--host and --port go with --serve")

    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_stats import FrozenStats

    create_app(args.root, stats=FrozenStats() if args.frozen_stats else None).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
