"""What the dashboard does to containers: new, stop, kill, restart, remove, logs, inspect, exec,
record.

Every action is a call on the engine (``app.engine``), made in a worker thread so the screen keeps
drawing while a container stops or starts; a ``RustainerError`` it raises becomes a notification with
its one-line message. Starting a container never forks this process (it runs Textual's threads):
``start_detached``/``restart`` with ``fork_fallback=False`` ask the state root's launcher (the zygote)
to fork the supervisor.

The one subprocess is the exec key's second shell: an interactive program on a pty of its own, i.e.
``rustainer exec -it ID SHELL`` (forking this process to enter the container's namespaces would be
unsafe). The engine is asked first which shell the container has (bash, else sh: ``find_shell``),
so a container that is gone, not running or without a shell is a notification; what the process
prints is only ever shown in its pane, never parsed.
"""

from __future__ import annotations

import asyncio
import os
import pty
import subprocess
import sys
from collections.abc import Callable
from typing import TypeVar

from textual import work
from textual.app import App
from textual.notifications import SeverityLevel

from rustainer.app.tui_dialogs import ConfirmDialog, NewContainer, NewContainerDialog
from rustainer.app.tui_engine import DashboardEngine
from rustainer.app.tui_views import ExecScreen, InspectScreen, LogsScreen
from rustainer.backend.container.state import RUNNING, ContainerState
from rustainer.backend.errors import RustainerError
from rustainer.widgets.log_view import MAX_LINES, render_log
from rustainer.widgets.terminal_pane import TerminalPane

T = TypeVar("T")
CLI = (sys.executable, "-m", "rustainer.app.cli")


class Failed:
    """An engine call that raised; the error has been shown."""


FAILED = Failed()


class ContainerActions(App[None]):
    """The container actions of :class:`~rustainer.app.tui_app.RustainerApp` (a mixin of it).

    The app provides the engine, the selection and what follows an action (a new poll, showing a
    container, letting a session go); these are the hooks below.
    """

    engine: DashboardEngine
    stop_timeout: int
    busy: set[str]  # container ids with an action under way

    # ---- hooks the app provides ---------------------------------------------------------------------

    def selected_state(self) -> ContainerState | None:
        raise NotImplementedError

    async def refresh_containers(self) -> None:
        raise NotImplementedError

    async def select_named(self, name: str) -> bool:
        """Show the container called ``name`` (after a refresh); False if it is not listed."""
        raise NotImplementedError

    async def drop_session(self, cid: str) -> None:
        raise NotImplementedError

    # ---- calling the engine -------------------------------------------------------------------------

    async def call_engine(self, call: Callable[[], T], what: str = "", *,
                          severity: SeverityLevel = "error") -> T | Failed:
        """``call()`` in a worker thread; an engine error is shown (prefixed with ``what``)."""
        try:
            return await asyncio.to_thread(call)
        except (RustainerError, OSError) as err:
            message = str(err) or type(err).__name__
            self.notify(f"{what}: {message}" if what else message, severity=severity, timeout=8)
            return FAILED

    # ---- new ----------------------------------------------------------------------------------------

    @work(exclusive=False, group="actions")
    async def action_new(self) -> None:
        engine = self.engine
        found = await self.call_engine(
            lambda: (engine.available_cpus(), engine.suggest_name(), tuple(engine.network_names())))
        if isinstance(found, Failed):
            return
        cpus, suggested, networks = found
        # the local images (a read of the store's names and records): a store that cannot be read is
        # a warning, and the dialog still offers a folder or the host view
        images = await self.call_engine(lambda: tuple(engine.image_names()), "images", severity="warning")
        request = await self.push_screen_wait(NewContainerDialog(
            available_cpus=cpus, name_taken=engine.exists, suggested_name=suggested, networks=networks,
            images=() if isinstance(images, Failed) else images))
        if request is not None:
            await self.create_container(request, ncpus=len(cpus))

    async def create_container(self, request: NewContainer, *, ncpus: int | None = None) -> bool:
        """Start it in the background (its supervisor forked by the launcher), then show it."""
        self.notify(f"starting {request.name}…", timeout=2)
        engine = self.engine
        started = await self.call_engine(
            lambda: engine.start_detached(request.start_spec(engine.image_spec, ncpus), fork_fallback=False),
            f"cannot create {request.name}")
        if isinstance(started, Failed):
            return False
        await self.refresh_containers()
        return await self.select_named(started.name)

    # ---- stop, kill, remove, restart ----------------------------------------------------------------

    async def _act(self, state: ContainerState, verb: str, call: Callable[[], object], *, done: str) -> bool:
        """One action on one container at a time; refreshed and announced when it is done."""
        if state.id in self.busy:
            self.notify(f"{state.name}: another action is still under way", severity="warning")
            return False
        self.busy.add(state.id)
        try:
            result = await self.call_engine(call, f"{verb} {state.name}")
        finally:
            self.busy.discard(state.id)
        if isinstance(result, Failed):
            return False
        self.notify(f"{state.name} {done}", timeout=3)
        await self.refresh_containers()
        return True

    @work(exclusive=False, group="actions")
    async def action_stop(self) -> None:
        state = self.selected_state()
        if state is not None:
            await self.stop_container(state)

    async def stop_container(self, state: ContainerState) -> bool:
        engine, timeout = self.engine, float(self.stop_timeout)
        return await self._act(state, "stop", lambda: engine.stop(state.id, timeout), done="stopped")

    @work(exclusive=False, group="actions")
    async def action_kill(self) -> None:
        state = self.selected_state()
        if state is not None:
            await self.kill_container(state)

    async def kill_container(self, state: ContainerState) -> bool:
        engine = self.engine
        return await self._act(state, "kill", lambda: engine.kill(state.id), done="killed")

    @work(exclusive=False, group="actions")
    async def action_remove(self) -> None:
        state = self.selected_state()
        if state is None:
            return
        running = " (it is running: it will be killed)" if state.status == RUNNING else ""
        if await self.push_screen_wait(ConfirmDialog(f"Remove container {state.name}{running}?")):
            await self.remove_container(state)

    async def remove_container(self, state: ContainerState) -> bool:
        engine = self.engine
        await self.drop_session(state.id)
        return await self._act(state, "rm", lambda: engine.remove(state.id, force=True), done="removed")

    @work(exclusive=False, group="actions")
    async def action_restart(self) -> None:
        state = self.selected_state()
        if state is not None:
            await self.restart_container(state)

    async def restart_container(self, state: ContainerState) -> bool:
        """Removed (killed first if it runs) and started again with the same spec: the same name, a
        new id."""
        if state.spec.remove:
            self.notify(f"{state.name} was started with --rm: it cannot be restarted", severity="warning")
            return False
        engine = self.engine
        await self.drop_session(state.id)
        if not await self._act(state, "restart", lambda: engine.restart(state.id, force=True, fork_fallback=False),
                               done="restarted"):
            return False
        return await self.select_named(state.name)

    # ---- views: logs, inspect, exec -----------------------------------------------------------------

    @work(exclusive=False, group="actions")
    async def action_logs(self) -> None:
        state = self.selected_state()
        if state is None:
            return
        engine, cid = self.engine, state.id

        def load() -> list[str]:
            try:
                data = engine.logs(cid, MAX_LINES)  # refused for a foreground run: it kept no log
            except OSError:
                return ["(no output recorded)"]
            return render_log(data) or ["(no output yet)"]

        lines = await self.call_engine(load, severity="warning")
        if not isinstance(lines, Failed):
            await self.push_screen(LogsScreen(state.name, lines, reload=lambda: _reload(load)))

    @work(exclusive=False, group="actions")
    async def action_inspect(self) -> None:
        state = self.selected_state()
        if state is None:
            return
        engine = self.engine
        record = await self.call_engine(lambda: engine.inspect(state.id))
        if not isinstance(record, Failed):
            await self.push_screen(InspectScreen(state.name, record))

    @work(exclusive=False, group="actions")
    async def action_exec(self) -> None:
        state = self.selected_state()
        if state is None or state.status != RUNNING:
            return
        engine = self.engine
        shell = await self.call_engine(lambda: engine.find_shell(state.id))
        if isinstance(shell, Failed):
            return
        if shell is None:
            self.notify(f"no shell in {state.name}: neither bash nor sh was found in its PATH folders",
                        severity="warning", timeout=8)
            return
        screen = ExecScreen(state.name, shell)
        await self.push_screen(screen)
        pane = screen.query_one(TerminalPane)
        size = pane.content_size  # below the header and the pane's title bar, above the footer
        rows, cols = (size.height, size.width) if size.area else (max(self.size.height - 3, 2), max(self.size.width, 10))
        proc, master = spawn_exec_shell(state.id, engine.root, rows, cols, shell)
        try:
            await pane.attach_pty(master, pid=proc.pid)
            await screen.closed.wait()
        finally:
            await pane.detach()
            await asyncio.to_thread(_reap, proc)


    # ---- record ---------------------------------------------------------------------------------------

    @work(exclusive=False, group="actions")
    async def action_record(self) -> None:
        state = self.selected_state()
        if state is not None and state.status == RUNNING:
            await self.toggle_recording(state)

    async def toggle_recording(self, state: ContainerState) -> bool:
        """Start recording the container's session, or stop the recording under way (its supervisor
        writes it: an asciicast v2 file that ``rustainer logs --asciicast FILE NAME`` exports)."""
        engine, on = self.engine, not state.recording
        if state.id in self.busy:
            self.notify(f"{state.name}: another action is still under way", severity="warning")
            return False
        self.busy.add(state.id)
        try:
            path = await self.call_engine(lambda: engine.record(state.id, on),
                                          f"{'record' if on else 'stop recording'} {state.name}")
        finally:
            self.busy.discard(state.id)
        if isinstance(path, Failed):
            return False
        if on:
            self.notify(f"recording {state.name} (R again stops)", timeout=4)
        else:
            self.notify(f"recording of {state.name} saved: rustainer logs --asciicast FILE {state.name} "
                        f"exports it ({path})", timeout=10)
        await self.refresh_containers()
        return True


def _reload(load: Callable[[], list[str]]) -> list[str]:
    """The logs view's reload (r): the log read again; an error is the view's one line."""
    try:
        return load()
    except (RustainerError, OSError) as err:
        return [str(err)]


def spawn_exec_shell(cid: str, root: str, rows: int, cols: int,
                     shell: str = "sh") -> tuple[subprocess.Popen[bytes], int]:
    """``rustainer exec -it ID SHELL`` on a fresh local pty; returns the process and the pty master.

    It runs in its own session so the dashboard's terminal never becomes its controlling tty.
    """
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = dict(os.environ, RUSTAINER_ROOT=root, TERM=os.environ.get("TERM", "xterm-256color"))
        proc = subprocess.Popen([*CLI, "exec", "-it", cid, shell], stdin=slave, stdout=slave, stderr=slave,
                                env=env, start_new_session=True, close_fds=True)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_inheritable(master, False)
    return proc, master


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Wait for the exec'd shell's process after its pty closed (it gets a hangup); kill its session if
    it lingers."""
    import signal

    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
