"""Dashboard switch time, run by hand as root (not collected by pytest):

    .venv/bin/python tests/bench/bench_switch.py [ROUNDS]

Two detached busybox containers with full screens (`top` in each), the real app headless at
120x40 with frozen stats; the time from the switch (the action Ctrl+PgDn runs) until the newly shown
pane draws its lines, median and p90 over ROUNDS switches.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "rustainer.app.cli"]


def rootfs(base: Path) -> Path:
    busybox = shutil.which("busybox")
    if busybox is None:
        sys.exit("busybox-static is needed")
    root = base / "bb"
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in ("sh", "top"):
        (root / "bin" / applet).symlink_to("busybox")
    return root


async def measure(root: str, rounds: int) -> list[float]:
    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_stats import FrozenStats
    from rustainer.widgets.terminal import TerminalPane

    painted: dict[int, float] = {}
    original = TerminalPane.render_line

    def render_line(self: TerminalPane, y: int):  # type: ignore[no-untyped-def]
        painted[id(self)] = time.perf_counter()
        return original(self, y)

    TerminalPane.render_line = render_line  # type: ignore[method-assign]
    app = create_app(root, stats=FrozenStats(), poll=False)
    times: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 60
        while len(app.attached) < 2 or not all(
                "Mem:" in "".join(p.terminal.display) for p in (app.pane_of(c) for c in app.attached) if p):
            if time.monotonic() > deadline:
                raise SystemExit("the containers' screens never showed")
            await pilot.pause(0.05)
        for _ in range(rounds):
            await pilot.pause(0.2)
            start = time.perf_counter()
            await app.action_select_next()  # what Ctrl+PgDn runs
            pane = app.pane_of(app.selected or "")
            assert pane is not None
            while painted.get(id(pane), 0.0) < start:  # until the shown pane's lines are drawn
                await asyncio.sleep(0.0005)
            times.append(painted[id(pane)] - start)
        await app.action_quit()
    return times


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.environ["RUSTAINER_ROOT"] = root
        bb = rootfs(Path(tmp))
        try:
            for name in ("one", "two"):
                subprocess.run([*CLI, "run", "--detach", "--name", name, "--rootfs", str(bb), "--", "top"],
                               check=True, capture_output=True)
            times = asyncio.run(measure(root, rounds))
        finally:
            subprocess.run([*CLI, "rm", "-f", "one", "two"], capture_output=True)
            from rustainer.backend.supervisor import zygote

            zygote.stop(root)
    times.sort()
    print(f"switch between two full screens (top), {rounds} switches: median "
          f"{statistics.median(times) * 1000:.1f} ms, p90 {times[int(len(times) * 0.9) - 1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
