"""The zygote's pool filling (supervisor/zygote.py ``_fill_pools``): after it, no size class it
fills has free blocks left in more than one pool (the fresh one the filling itself opened), so a
supervisor's new objects never land in a gap of a page it shares with the zygote."""

from __future__ import annotations

import subprocess
import sys

CODE = """
from rustainer.backend.supervisor import zygote
before = zygote.free_blocks()
ballast = zygote._fill_pools()
after = zygote.free_blocks()
print(sum(n for size, n in before.items() if size == 32 or size >= 48), len(ballast))
# CPython 3.11: 16 KB pools with a 48-byte header. A class it filled has next to nothing free, or
# the blocks of the one fresh pool the filling opened (less what the filling's last objects took)
print(sorted((size, n) for size, n in after.items()
             if (size == 32 or size >= 48) and n > 4 and abs(n - (16384 - 48) // size) > 6))
"""


def test_the_pools_are_filled() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True).stdout.splitlines()
    free, made = map(int, out[0].split())
    assert free > 0 and made > free // 2  # it filled (about) what was free
    assert out[1] == "[]", out[1]  # no class left with gaps in its old pools
