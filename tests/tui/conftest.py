"""Fixtures for the dashboard's headless tests: containers that are always removed, and waiting
helpers that poll with a deadline instead of sleeping."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot


async def until(pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 60.0) -> None:
    """Poll ``predicate`` until it holds. A widget it queries that is not there yet (NoMatches: a
    container's card is mounted before its children, and a CI run looked in between) counts as
    not yet."""
    from textual.css.query import NoMatches

    def holds() -> object:
        try:
            return predicate()
        except NoMatches:
            return False

    end = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


async def type_text(pilot: Pilot[None], text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(c, c) for c in text])


@pytest.fixture
def containers(cli, rroot: Path) -> Iterator[Callable[..., None]]:  # type: ignore[no-untyped-def]
    """``start(name, *run_args)`` starts a detached container from the CLI; every container of the
    test's root (also those the dashboard made) is removed at the end."""

    def start(name: str, *args: str) -> None:
        cli("run", "--detach", "--name", name, *args, check_rc=0)

    try:
        yield start
    finally:
        listed = cli("ps", "-a", "--format", "json").stdout or "[]"
        names = [s["name"] for s in json.loads(listed)]
        if names:
            cli("rm", "-f", *names)
