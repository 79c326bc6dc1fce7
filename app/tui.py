"""``rustainer-tui``: the dashboard arrives with its own issue; until then this says so."""

from __future__ import annotations

import sys


def main() -> int:
    print("rustainer-tui: the dashboard is not built yet (see the dashboard issue); "
          "use 'rustainer' or 'rustainer run' for now", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
