"""Badges on the cards and notifications: activity, bell, silence, ended and OOM-killed; they clear
when the container is shown. The rules alone (BadgeTracker, with its own clock), then the app
against the in-memory engine with sessions on local ptys (no root)."""

from __future__ import annotations

from conftest import until
from fake_engine import FakeEngine, fake_state
from pty_sessions import PtyShells
from test_dashboard_fake import by_name, card, dashboard, messages, run
from textual.pilot import Pilot
from textual.widgets import Label

from rustainer.app.tui_app import RustainerApp
from rustainer.app.tui_badges import BadgeTracker
from rustainer.backend.container.state import EXITED
from rustainer.widgets.badges import ACTIVITY, BELL, ENDED, OOM, SILENCE, badge_text

# ---- the rules --------------------------------------------------------------------------------------


def test_activity_and_bells_in_the_background_and_nothing_while_shown() -> None:
    t = BadgeTracker()
    assert t.observe("a", fed=100, bells=0, core=1, now=0.0, shown=False) == []  # the first look: a baseline
    assert t.observe("a", fed=100, bells=0, core=1, now=1.0, shown=False) == []
    assert t.observe("a", fed=150, bells=0, core=1, now=2.0, shown=False) == [ACTIVITY]
    assert t.observe("a", fed=180, bells=0, core=1, now=3.0, shown=False) == []  # told once
    assert t.observe("a", fed=190, bells=1, core=1, now=4.0, shown=False) == [BELL]
    assert t.watch("a").flags == {ACTIVITY, BELL}
    assert t.observe("a", fed=200, bells=2, core=1, now=5.0, shown=True) == []  # looked at: cleared
    assert t.watch("a").flags == set()
    # A new core (the session attached again): its bell count starts afresh, no bell for that.
    assert t.observe("a", fed=0, bells=0, core=2, now=6.0, shown=False) == []
    assert t.observe("a", fed=0, bells=1, core=2, now=7.0, shown=False) == [BELL]


def test_output_just_after_looking_away_is_not_activity() -> None:
    t = BadgeTracker()
    t.observe("a", fed=0, bells=0, core=1, now=0.0, shown=True)
    t.observe("a", fed=10, bells=0, core=1, now=5.0, shown=True)  # shown until 5.0
    assert t.observe("a", fed=20, bells=0, core=1, now=5.5, shown=False) == []  # the prompt after it
    assert t.observe("a", fed=30, bells=0, core=1, now=6.5, shown=False) == [ACTIVITY]


def test_silence_comes_once_per_quiet_spell_and_goes_with_output() -> None:
    t = BadgeTracker()
    t.observe("a", fed=10, bells=0, core=1, now=0.0, shown=False)
    t.set_silence("a", 30.0, now=0.0)
    assert t.observe("a", fed=10, bells=0, core=1, now=29.0, shown=False) == []
    assert t.observe("a", fed=10, bells=0, core=1, now=30.0, shown=False) == [SILENCE]
    assert t.observe("a", fed=10, bells=0, core=1, now=90.0, shown=False) == []  # once
    assert t.observe("a", fed=11, bells=0, core=1, now=91.0, shown=False) == [ACTIVITY]
    assert SILENCE not in t.watch("a").flags
    assert t.observe("a", fed=11, bells=0, core=1, now=121.0, shown=False) == [SILENCE]
    t.set_silence("a", None, now=122.0)
    assert t.observe("a", fed=11, bells=0, core=1, now=500.0, shown=False) == []


def test_an_end_is_flagged_unless_shown_and_the_oom_killer_says_so() -> None:
    t = BadgeTracker()
    assert t.ended("a", oom=False, shown=False) and t.watch("a").flags == {ENDED}
    assert t.ended("b", oom=True, shown=False) and t.watch("b").flags == {OOM}
    assert not t.ended("c", oom=False, shown=True) and not t.watch("c").flags
    t.looked("a")
    assert not t.watch("a").flags
    t.forget({"b"})
    assert set(t.watches) == {"b"}


def test_badge_text() -> None:
    assert badge_text(()).plain == ""
    assert badge_text({ACTIVITY, BELL}).plain == "bell act"
    assert badge_text({ENDED, OOM}).plain == "end" and badge_text({ENDED}).plain == "end"
    assert badge_text((), silence_watch=30.0).plain == "~30s"
    assert badge_text({SILENCE}, silence_watch=30.0).plain == "quiet"


# ---- in the app -------------------------------------------------------------------------------------


def badges(app: RustainerApp, name: str) -> str:
    return str(card(app, name).query_one(".card-badges", Label).render())


def badges_shown(app: RustainerApp, name: str) -> str:
    label = card(app, name).query_one(".card-badges", Label)
    return badges(app, name) if label.display and label.region.width else ""


def test_background_output_and_bells_are_badges_a_bell_a_notification_and_looking_clears_them() -> None:
    app = dashboard(FakeEngine(fake_state("web", created_at=1.0), fake_state("db", created_at=2.0)))
    shells = PtyShells()

    async def scenario(pilot: Pilot[None]) -> None:
        try:
            await until(pilot, lambda: len(app.order) == 2, "listed")
            for name in ("web", "db"):
                await shells.add(app, by_name(app, name), name)
            await app.select(by_name(app, "web"))
            await pilot.pause(0.6)  # (the badge timer's first look: the baseline)
            shells.write("db", b"compiling...\r\n")
            await until(pilot, lambda: badges_shown(app, "db") == "act", "db's activity badge")
            shells.write("web", b"shown: no badge\r\n")
            shells.write("db", b"\x1b]0;title ended by BEL\x07")
            await pilot.pause(0.6)
            assert badges_shown(app, "web") == "" and badges(app, "db") == "act"  # the title's BEL: no bell
            shells.write("db", b"done\x07\r\n")
            await until(pilot, lambda: badges_shown(app, "db") == "bell act", "db's bell badge")
            assert ("db rang the bell", "information") in messages(app)
            assert not any("web" in m for m, _ in messages(app))
            await pilot.press("ctrl+pagedown")  # look at db: its badges go
            await until(pilot, lambda: app.selected == by_name(app, "db") and badges_shown(app, "db") == "",
                        "db's badges cleared")
            shells.write("db", b"\x07")
            await pilot.pause(0.6)
            assert badges_shown(app, "db") == ""  # shown: no badge
            await pilot.press("ctrl+q")
        finally:
            shells.close()

    run(app, scenario)


def test_a_watched_silence_is_a_badge_and_a_notification() -> None:
    app = dashboard(FakeEngine(fake_state("web", created_at=1.0), fake_state("db", created_at=2.0)))
    app.silence_seconds = 1.5  # (longer than the grace after looking away: output then is activity)
    shells = PtyShells()

    async def scenario(pilot: Pilot[None]) -> None:
        try:
            await until(pilot, lambda: len(app.order) == 2, "listed")
            for name in ("web", "db"):
                await shells.add(app, by_name(app, name), name)
            await app.select(by_name(app, "db"))
            await pilot.press("ctrl+right_square_bracket", "S")  # watch db for 1.5 s of silence
            await until(pilot, lambda: badges_shown(app, "db") == "~1.5s", "the watch shown")
            assert ("Watching db for 1.5 s without output", "information") in messages(app)
            await pilot.press("ctrl+pageup")  # look elsewhere
            await until(pilot, lambda: badges_shown(app, "db") == "quiet", "db's silence", timeout=10)
            assert ("db: no output for 1.5 s", "information") in messages(app)
            shells.write("db", b"back\r\n")
            # Output ends the silence (another one may come 1.5 s later: the watch goes on).
            await until(pilot, lambda: badges_shown(app, "db").endswith("act"), "output ends the silence")
            await pilot.press("alt+2", "ctrl+right_square_bracket", "S")  # looked at, and the watch off
            await until(pilot, lambda: badges_shown(app, "db") == "", "no badge, no watch")
            assert ("No longer watching db for silence", "information") in messages(app)
            await pilot.press("ctrl+q")
        finally:
            shells.close()

    run(app, scenario)


def test_ends_in_the_background_are_badges_and_notifications_with_the_code() -> None:
    engine = FakeEngine(fake_state("web", created_at=1.0), fake_state("job", created_at=2.0),
                        fake_state("hog", created_at=3.0))
    app = dashboard(engine)

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: len(app.order) == 3 and app.selected == by_name(app, "web"), "listed")
        for name, code, oom in (("job", 3, False), ("hog", 137, True)):
            state = engine.states[by_name(app, name)]
            engine._set(state, status=EXITED, exit_code=code, oom_killed=oom, pid=None)
        await app.refresh_containers()
        await until(pilot, lambda: badges_shown(app, "job") == "end" and badges_shown(app, "hog") == "end",
                    "the ends flagged")
        assert ("job exited with code 3", "warning") in messages(app)
        assert ("hog exited with code 137 (killed by the OOM killer)", "warning") in messages(app)
        await pilot.press("alt+2")
        await until(pilot, lambda: app.selected == by_name(app, "job") and badges_shown(app, "job") == "",
                    "job's badge cleared once shown")
        assert badges_shown(app, "hog") == "end"
        assert "OOM" in str(card(app, "hog").query_one(".card-status", Label).render())
        # An end of the container shown is no badge: the note in the pane says how it ended.
        engine.kill("web")
        await app.select(by_name(app, "web"))
        await app.refresh_containers()
        await pilot.pause(0.3)
        assert badges_shown(app, "web") == "" and not any(m.startswith("web") for m, _ in messages(app))
        await pilot.press("ctrl+q")

    run(app, scenario)


def test_in_a_split_output_in_a_pane_shown_beside_is_no_activity() -> None:
    app = dashboard(FakeEngine(fake_state("web", created_at=1.0), fake_state("db", created_at=2.0),
                               fake_state("job", created_at=3.0)))
    shells = PtyShells()

    async def scenario(pilot: Pilot[None]) -> None:
        try:
            await until(pilot, lambda: len(app.order) == 3, "listed")
            for name in ("web", "db", "job"):
                await shells.add(app, by_name(app, name), name)
            await app.select(by_name(app, "web"))
            await pilot.press("ctrl+right_square_bracket", "vertical_line")  # web | db, db active
            await until(pilot, lambda: app.split_view is not None and app.selected == by_name(app, "db"), "split")
            await pilot.pause(1.5)  # (past the grace after web stopped being the selected one)
            shells.write("web", b"beside\r\n")
            shells.write("job", b"hidden\r\n")
            await until(pilot, lambda: badges_shown(app, "job") == "act", "job's activity")
            assert badges_shown(app, "web") == ""  # web is shown in the split: no badge
            await pilot.press("ctrl+q")
        finally:
            shells.close()

    run(app, scenario)
