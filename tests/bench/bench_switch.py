"""Dashboard switch time, run by hand as root (not collected by pytest):

    .venv/bin/python tests/bench/bench_switch.py [ROUNDS]

Two detached busybox containers with full screens (`top` in each), the real app headless at
120x40 with frozen stats. Each round presses Ctrl+PgDn (a key event posted to the app, so the
binding's dispatch is part of it) and times:

- to the first paint: until the screen's compositor hands an update (``App._display``) that holds
  lines of the newly selected container's screen;
- the worst event-loop stall from the key until 300 ms after that paint (the switch's own work
  and what it leaves behind, such as a footer rebuilt: what the next key press would wait for).

Median and p90 over ROUNDS switches.
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


async def measure(root: str, rounds: int) -> tuple[list[float], list[float]]:
    from textual import events

    from rustainer.app.tui_app import create_app
    from rustainer.app.tui_stats import FrozenStats
    from rustainer.widgets.terminal_pane import TerminalPane

    drawn: dict[int, float] = {}  # id(session) -> when the pane last drew one of its lines
    painted: list[tuple[float, set[int]]] = []  # (when, sessions whose lines the update holds)
    original = TerminalPane.render_line

    def render_line(self: TerminalPane, y: int):  # type: ignore[no-untyped-def]
        drawn[id(getattr(self, "session", self))] = time.perf_counter()  # (older code: a pane each)
        return original(self, y)

    TerminalPane.render_line = render_line  # type: ignore[method-assign]
    app = create_app(root, stats=FrozenStats(), poll=False)
    session_of = getattr(app, "session_of", None) or app.pane_of  # type: ignore[attr-defined]
    display = app._display

    def _display(screen, renderable):  # type: ignore[no-untyped-def]
        if renderable is not None:
            now = time.perf_counter()
            painted.append((now, {sid for sid, when in drawn.items() if when > now - 0.5}))
            drawn.clear()
        return display(screen, renderable)

    app._display = _display  # type: ignore[method-assign]
    to_paint: list[float] = []
    stalls: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 60
        while len(app.attached) < 2 or not all(
                "Mem:" in "".join(s.terminal.display) for s in map(session_of, app.attached) if s):
            if time.monotonic() > deadline:
                raise SystemExit("the containers' screens never showed")
            await pilot.pause(0.05)
        for _ in range(rounds):
            await pilot.pause(0.3)
            target = app.order[(app.order.index(app.selected or "") + 1) % len(app.order)]
            session = session_of(target)
            assert session is not None
            painted.clear()
            drawn.clear()
            worst = 0.0
            first = None
            start = time.perf_counter()
            app.post_message(events.Key("ctrl+pagedown", None))
            while True:  # the loop's stalls until 300 ms after the paint
                t = time.perf_counter()
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                worst = max(worst, now - t - 0.001)
                if first is None:
                    first = next((when for when, sessions in painted if id(session) in sessions and when > start),
                                 None)
                if first is not None and now - first > 0.3:
                    break
                if now - start > 5:
                    raise SystemExit("the switch was not painted within 5 s")
            if app.selected != target:
                raise SystemExit("the switch went elsewhere")
            to_paint.append(first - start)
            stalls.append(worst)
        await app.action_quit()
    return to_paint, stalls


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
            times, stalls = asyncio.run(measure(root, rounds))
        finally:
            subprocess.run([*CLI, "rm", "-f", "one", "two"], capture_output=True)
            from rustainer.backend.supervisor import zygote

            zygote.stop(root)
    for label, values in (("to the first paint", times), ("worst loop stall after it", stalls)):
        values.sort()
        print(f"switch between two full screens (top), {rounds} switches, {label}: median "
              f"{statistics.median(values) * 1000:.1f} ms, p90 {values[int(len(values) * 0.9) - 1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
