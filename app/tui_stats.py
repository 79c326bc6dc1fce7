"""Where the dashboard's numbers come from: the containers' own cgroup counters, or a fixed source.

The live source reads each container's counters through the engine (``Engine.counters``) and
computes CPU % from the deltas between two polls (the same formula as ``rustainer stats``: 100 % =
one CPU busy); the limits are read back from the cgroup, so the list shows what the kernel enforces. Snapshot tests and screenshots use :class:`FrozenStats` so the picture
does not change from run to run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from rustainer.app.tui_engine import DashboardEngine
from rustainer.backend.container.state import ContainerState


@dataclass(frozen=True)
class Sample:
    cpu_percent: float | None = None
    memory_usage: int | None = None
    memory_limit: int | None = None
    cpuset: tuple[int, ...] | None = None
    pids: int | None = None


class StatsSource(Protocol):
    def sample(self, states: list[ContainerState]) -> dict[str, Sample]:
        """One sample per running container id; called about once a second from a worker thread."""
        ...


class CgroupStats:
    """Live numbers from each running container's cgroup, read through the engine."""

    def __init__(self, engine: DashboardEngine) -> None:
        self.engine = engine
        self._last: dict[str, tuple[float, int]] = {}  # id -> (monotonic ns, cpu usage ns)

    def sample(self, states: list[ContainerState]) -> dict[str, Sample]:
        out: dict[str, Sample] = {}
        seen: dict[str, tuple[float, int]] = {}
        for state in states:
            counters = self.engine.counters(state)
            if counters is None:
                continue  # no cgroup, or it ended while we looked
            now = time.monotonic_ns()
            cpu = None
            if counters.cpu_usage_ns is not None:
                before = self._last.get(state.id)
                if before is not None and now > before[0]:
                    cpu = max(0.0, (counters.cpu_usage_ns - before[1]) / (now - before[0]) * 100)
                seen[state.id] = (now, counters.cpu_usage_ns)
            out[state.id] = Sample(cpu_percent=cpu, memory_usage=counters.memory_usage,
                                   memory_limit=counters.memory_limit, cpuset=counters.cpus, pids=counters.pids)
        self._last = seen
        return out


class FrozenStats:
    """The same plausible numbers every time, with limits taken from each container's spec."""

    def __init__(self, cpu_percent: float = 1.5, memory_usage: int = 3 << 20) -> None:
        self.cpu_percent = cpu_percent
        self.memory_usage = memory_usage

    def sample(self, states: list[ContainerState]) -> dict[str, Sample]:
        return {s.id: Sample(cpu_percent=self.cpu_percent, memory_usage=self.memory_usage,
                             memory_limit=s.spec.resources.memory, cpuset=s.spec.resources.cpus, pids=1)
                for s in states}
