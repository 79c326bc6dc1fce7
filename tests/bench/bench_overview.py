"""The dashboard's overview with nine containers running `top`, run by hand as root (not collected
by pytest):

    .venv/bin/python tests/bench/bench_overview.py [--containers 9] [--delay 1] [--seconds 10]

Nine detached busybox containers run ``top -d DELAY`` (one screen every DELAY seconds each; the
default 1 s is top's usual pace, 0.1 a stress), the real app runs headless at 160x48 with its real
polling and stats. Over the same window of SECONDS it measures, first with the normal single view
showing one of them (the baseline), then with the overview showing all of them:

- frames per second: screen updates the compositor hands to the terminal (``App._display``), and
  for the overview the frames that drew at least one tile and how many tiles those drew;
- the dashboard's CPU share (the whole process, every thread: CPU seconds / wall seconds; 1.0 is
  one core);
- the event loop's worst stall (what a key press would wait for);
- how far the tiles lag behind their containers: for each `top` screen fed to a session, the time
  until its tile was drawn again (median and p90).

Goal (issue #15): at least 10 frames per second, under one core.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


async def window(app: Any, seconds: float) -> dict[str, float]:
    """Frames, CPU share and loop stalls over ``seconds``."""
    shown: list[float] = []
    display = app._display

    def _display(screen, renderable):  # type: ignore[no-untyped-def]
        if renderable is not None:
            shown.append(time.perf_counter())
        return display(screen, renderable)

    app._display = _display
    worst = 0.0
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        await asyncio.sleep(0.005)
        worst = max(worst, time.perf_counter() - t - 0.005)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    app._display = display
    return {"fps": len(shown) / wall, "cpu": cpu / wall, "stall": worst * 1000}


async def measure(root: str, count: int, seconds: float) -> None:
    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_overview import OverviewScreen
    from rustainer.widgets.overview import Overview

    app = create_app(root)
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 120
        while len(app.sessions) < count or not all(
                "Mem:" in "".join(s.terminal.display) for s in app.sessions.values()):
            if time.monotonic() > deadline:
                raise SystemExit("the containers' screens never showed")
            await pilot.pause(0.1)
        await pilot.pause(2)
        single = await window(app, seconds)
        # tiles' lag: when each session was last fed, against when its tile was drawn after that
        fed_at: dict[int, float] = {}
        lags: list[float] = []
        app.action_overview()
        while not isinstance(app.screen, OverviewScreen) or not app.screen.query(Overview):
            await pilot.pause(0.05)
        overview = app.screen.query_one(Overview)
        original = overview._draw_tile

        def draw_tile(tile, region):  # type: ignore[no-untyped-def]
            when = fed_at.pop(id(tile.session), None)
            if when is not None:
                lags.append(time.perf_counter() - when)
            return original(tile, region)

        overview._draw_tile = draw_tile  # type: ignore[method-assign]
        for session in app.sessions.values():
            feed = session._feed

            def fed(session=session, feed=feed):  # type: ignore[no-untyped-def]
                feed()
                fed_at.setdefault(id(session), time.perf_counter())

            session._feed = fed
        await pilot.pause(2)
        frames, tiles = overview.frames, overview.tiles_drawn
        lags.clear()
        over = await window(app, seconds)
        over["tile_frames"] = (overview.frames - frames) / seconds
        over["tiles"] = (overview.tiles_drawn - tiles) / seconds
        await app.action_quit()
    lags.sort()
    print(f"{count} containers running top, 160x48 headless, {seconds:.0f} s each")
    print(f"{'view':<10}{'frames/s':>10}{'CPU (cores)':>13}{'worst stall ms':>16}")
    print(f"{'single':<10}{single['fps']:>10.1f}{single['cpu']:>13.2f}{single['stall']:>16.1f}")
    print(f"{'overview':<10}{over['fps']:>10.1f}{over['cpu']:>13.2f}{over['stall']:>16.1f}")
    print(f"overview: {over['tile_frames']:.1f} frames/s drew tiles, {over['tiles']:.1f} tiles drawn/s; "
          f"CPU x{over['cpu'] / max(single['cpu'], 1e-9):.2f} of the single view's")
    if lags:
        print(f"tile lag behind its container's output: median {statistics.median(lags) * 1000:.0f} ms, "
              f"p90 {lags[int(len(lags) * 0.9) - 1] * 1000:.0f} ms ({len(lags)} screens)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--containers", type=int, default=9)
    parser.add_argument("--delay", default="1", help="top's -d (seconds between its screens)")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    names = [f"top{i}" for i in range(1, args.containers + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        os.environ["RUSTAINER_ROOT"] = root
        bb = rootfs(Path(tmp))
        try:
            for name in names:
                subprocess.run([*CLI, "run", "--detach", "--name", name, "--rootfs", str(bb), "--", "top", "-d",
                                args.delay], check=True, capture_output=True)
            print(f"top -d {args.delay}")
            asyncio.run(measure(root, len(names), args.seconds))
        finally:
            subprocess.run([*CLI, "rm", "-f", *names], capture_output=True)
            from rustainer.backend.supervisor import zygote

            zygote.stop(root)


if __name__ == "__main__":
    main()
