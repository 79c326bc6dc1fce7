"""Dashboard switch time, run by hand as root (not collected by pytest):

    .venv/bin/python tests/bench/bench_switch.py [ROUNDS]

Two detached busybox containers with full screens (`top` in each), the real app headless at
120x40 with frozen stats; the time from pressing Ctrl+PgDn to the other container's screen being
drawn (the selected pane is the shown one and has painted a frame since the key), median and p90
over ROUNDS switches.
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
            before = app.selected
            start = time.perf_counter()
            await pilot.press("ctrl+pagedown")
            while True:
                pane = app.pane_of(app.selected or "")
                if app.selected != before and pane is not None and pane.display and pane.region.area:
                    break
                await asyncio.sleep(0)
            await pilot.pause()  # the frame that shows it
            times.append(time.perf_counter() - start)
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
