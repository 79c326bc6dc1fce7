"""Badges and notifications: what happened in the containers not shown (a mixin of the app).

As tmux and screen flag windows: output since you last looked (activity), a bell, silence for a
watched time (screen's ``silence``, ``S``), an end (with its code) and the OOM killer. A bell, an end
and a watched silence in a container not shown are notifications too. Showing a container clears
its badges.

Cheap by construction: nothing is added to a session's data path. Every BADGE_INTERVAL the app
compares each session's byte count (``TerminalSession.fed``) and its core's bell count with what it
saw last; ends come from the engine's records, which the app polls anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from textual.app import App, SystemCommand
from textual.css.query import NoMatches

from rustainer.widgets.badges import ACTIVITY, BELL, ENDED, OOM, SILENCE, badge_text
from rustainer.widgets.container_list import ContainerList
from rustainer.widgets.terminal_pane import TerminalPane
from rustainer.widgets.terminal_session import TerminalSession

BADGE_INTERVAL = 0.25  # seconds between two looks at the sessions
SILENCE_CHOICES = (10.0, 30.0, 60.0, 300.0)  # the palette's silence watches, in seconds
DEFAULT_SILENCE = 30.0
# Output within this many seconds after a container stops being shown is the tail of what was just
# seen (a prompt after the command's output), not activity to flag.
ACTIVITY_GRACE = 1.0


@dataclass
class Watch:
    """What was last seen of one container."""

    fed: int = -1  # its session's bytes fed (-1: not seen yet)
    bells: int = 0
    core: int = 0  # id() of the core the bells were counted on (a reattach makes a new one)
    last_output: float = 0.0
    flags: set[str] = field(default_factory=set)
    silence: float | None = None  # seconds of silence watched for (None: not watched)
    silent: bool = False  # the watched silence came (told once until output resumes)
    shown_at: float = float("-inf")  # when it was last seen shown


class BadgeTracker:
    """The badges' rules, apart from Textual (a test drives it with its own clock)."""

    def __init__(self) -> None:
        self.watches: dict[str, Watch] = {}

    def watch(self, cid: str) -> Watch:
        return self.watches.setdefault(cid, Watch())

    def observe(self, cid: str, fed: int, bells: int, core: int, now: float, shown: bool) -> list[str]:
        """A look at a session: the flags that came now (for notifications). Nothing comes while
        the container is shown: it is being looked at."""
        w = self.watch(cid)
        new: list[str] = []
        if w.fed < 0 or core != w.core:
            w.fed, w.bells, w.core, w.last_output = fed, bells, core, now  # a first look: the baseline
            return new
        if shown:
            w.shown_at = now
        if fed != w.fed:
            w.fed = fed
            w.last_output = now
            w.silent = False
            w.flags.discard(SILENCE)
            if not shown and ACTIVITY not in w.flags and now - w.shown_at >= ACTIVITY_GRACE:
                w.flags.add(ACTIVITY)
                new.append(ACTIVITY)
        if bells != w.bells:
            w.bells = bells
            if not shown:
                w.flags.add(BELL)
                new.append(BELL)
        if w.silence is not None and not w.silent and now - w.last_output >= w.silence:
            w.silent = True
            if not shown:
                w.flags.add(SILENCE)
                new.append(SILENCE)
        if shown:
            w.flags.clear()
        return new

    def ended(self, cid: str, oom: bool, shown: bool) -> bool:
        """The container ended (seen running before): flagged unless shown; True if so."""
        w = self.watch(cid)
        w.silence = None
        if shown:
            return False
        w.flags.discard(ACTIVITY)
        w.flags.discard(SILENCE)
        w.flags.add(OOM if oom else ENDED)
        return True

    def looked(self, cid: str) -> None:
        """The container is shown: its badges go."""
        w = self.watches.get(cid)
        if w is not None:
            w.flags.clear()

    def set_silence(self, cid: str, seconds: float | None, now: float) -> None:
        w = self.watch(cid)
        w.silence = seconds
        w.silent = False
        w.last_output = now
        w.flags.discard(SILENCE)

    def forget(self, keep: set[str]) -> None:
        for cid in [cid for cid in self.watches if cid not in keep]:
            del self.watches[cid]


class BadgeActions(App[None]):
    """Badges on the cards, notifications, the silence watch (``S`` and the palette)."""

    BADGE_ACTIONS = frozenset({"silence"})

    silence_seconds = DEFAULT_SILENCE  # what ``S`` watches for

    # ---- hooks the app provides ---------------------------------------------------------------------
    selected: str | None
    sessions: dict[str, TerminalSession]
    _badges: BadgeTracker
    _was_running: set[str]

    def container_name(self, cid: str) -> str:
        raise NotImplementedError

    def container_list(self) -> ContainerList | None:
        raise NotImplementedError

    # ---- the app calls these --------------------------------------------------------------------------

    def start_badges(self) -> None:
        self._badges = BadgeTracker()
        self._was_running = set()
        self.set_interval(BADGE_INTERVAL, self.look_at_sessions)

    def shown_sessions(self) -> set[int]:
        """id() of the sessions a pane of the main screen shows now (in a split, several)."""
        try:
            base = self.screen_stack[0] if self.screen_stack else None
            panes = list(base.query(TerminalPane)) if base is not None else []
        except NoMatches:
            panes = []
        return {id(pane.session) for pane in panes if pane.display and pane.region.area}

    def look_at_sessions(self) -> None:
        """Every BADGE_INTERVAL: output, bells and silences of the sessions, and the cards' badges."""
        now = time.monotonic()
        visible = self.shown_sessions()
        for cid, session in list(self.sessions.items()):
            shown = cid == self.selected or id(session) in visible
            term = session.terminal
            for flag in self._badges.observe(cid, session.fed, term.bells, id(term), now, shown):
                if flag == BELL:
                    self.notify(f"{self.container_name(cid)} rang the bell", title="Bell")
                elif flag == SILENCE:
                    seconds = self._badges.watch(cid).silence or 0
                    self.notify(f"{self.container_name(cid)}: no output for {seconds:g} s", title="Silence")
        self.show_badges()

    def containers_polled(self, states: dict[str, tuple[str, int | None, bool]]) -> None:
        """After each poll (container id -> (status, exit code, OOM-killed)): ends of containers
        seen running before are flagged and told."""
        running = {cid for cid, (status, _, _) in states.items() if status == "running"}
        for cid in self._was_running - running:
            if cid not in states:
                continue  # removed, not ended
            _, code, oom = states[cid]
            if self._badges.ended(cid, oom, shown=cid == self.selected):
                how = f"exited with code {code}" if code is not None else "ended"
                oom_note = " (killed by the OOM killer)" if oom else ""
                self.notify(f"{self.container_name(cid)} {how}{oom_note}", title="Ended",
                            severity="warning" if code or oom else "information")
        self._was_running = running
        self._badges.forget(set(states))
        self.show_badges()

    def badges_looked(self, cid: str) -> None:
        """``cid`` is shown now: its badges go at once."""
        self._badges.looked(cid)
        self.show_badges()

    def show_badges(self) -> None:
        listing = self.container_list()
        if listing is None:
            return
        for card in listing.cards():
            cid = card.row.id
            w = self._badges.watches.get(cid)
            card.set_badges(badge_text(w.flags, w.silence) if w is not None else badge_text(()))

    # ---- silence --------------------------------------------------------------------------------------

    def watch_silence(self, cid: str, seconds: float | None) -> None:
        self._badges.set_silence(cid, seconds, time.monotonic())
        name = self.container_name(cid)
        if seconds is None:
            self.notify(f"No longer watching {name} for silence", title="Silence")
        else:
            self.notify(f"Watching {name} for {seconds:g} s without output", title="Silence")
        self.show_badges()

    def action_silence(self) -> None:
        """Toggle the silence watch of the selected container (``silence_seconds``)."""
        cid = self.selected
        if cid is None or cid not in self.sessions:
            self.notify("Only a running container with a shell can be watched for silence.", severity="warning")
            return
        watched = self._badges.watch(cid).silence is not None
        self.watch_silence(cid, None if watched else self.silence_seconds)

    def silence_commands(self) -> list[SystemCommand]:
        """The palette's silence watches for the selected container."""
        cid = self.selected
        if cid is None or cid not in self.sessions:
            return []
        name = self.container_name(cid)
        commands = []
        for seconds in SILENCE_CHOICES:
            def watch(seconds: float = seconds, cid: str = cid) -> None:
                self.watch_silence(cid, seconds)
            label = f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"
            commands.append(SystemCommand(f"Watch {name} for silence ({label})",
                                          "A badge and a notification when it writes nothing that long", watch))
        if self._badges.watch(cid).silence is not None:
            commands.append(SystemCommand(f"Stop watching {name} for silence", "S toggles it too",
                                          lambda cid=cid: self.watch_silence(cid, None)))
        return commands
