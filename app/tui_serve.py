"""``rustainer-tui --serve``: the same dashboard in a web browser, through textual-serve.

Each browser tab that opens the page gets its own ``rustainer-tui`` process, run by textual-serve
with Textual's web driver, its screen streamed over a websocket to xterm.js in the page. The
dashboard is root's shells, so the server is locked down:

* it binds 127.0.0.1 unless ``--host`` says otherwise;
* every URL it answers starts with a random token (``secrets.token_urlsafe``, 192 bits), printed
  once at start: ``http://127.0.0.1:PORT/TOKEN/``. Anything else (the bare address, a wrong or
  missing token, a token guessed one character at a time) gets 403 before any handler runs,
  the websocket included (its URL carries the token too); tokens are compared in constant time;
* the page loads nothing from elsewhere: textual-serve's script, stylesheet and fonts ship in its
  package and are served from here (our own page template; textual-serve's stock one asks a
  font CDN), so it works without internet and tells no third party it was opened.

Plain HTTP: for another machine, put it behind TLS (an SSH tunnel to 127.0.0.1 is the simple way).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web
from textual_serve.server import Server

TEMPLATE = "tui_serve.html"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def dashboard_command(root: str | None) -> str:
    """The shell command textual-serve runs for each page: this Python's ``rustainer-tui``."""
    argv = [sys.executable, "-m", "rustainer.app.tui"]
    if root:
        argv += ["--root", os.path.abspath(root)]
    return shlex.join(argv)


class DashboardServer(Server):
    """textual-serve's server with every route under a secret token, and a page of our own."""

    def __init__(self, command: str, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 token: str | None = None) -> None:
        super().__init__(command, host=host, port=port, title="rustainer",
                         templates_path=Path(__file__).parent)
        self.token = token or secrets.token_urlsafe(24)
        self.prefix = f"/{self.token}"

    @web.middleware
    async def _require_token(self, request: web.Request,
                             handler: Any) -> web.StreamResponse:
        """403 for any path that does not start with ``/TOKEN/`` (compared in constant time)."""
        first, slash, _ = request.path[1:].partition("/")
        if not hmac.compare_digest(first.encode(), self.token.encode()):
            raise web.HTTPForbidden(text="rustainer-tui: this address needs the token printed when the server started\n")
        if not slash:
            raise web.HTTPFound(self.prefix + "/")  # /TOKEN: the page is /TOKEN/
        response: web.StreamResponse = await handler(request)
        return response

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self._require_token])
        aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(str(self.templates_path)))
        app.add_routes([
            web.get(f"{self.prefix}/", self.handle_index, name="index"),
            web.get(f"{self.prefix}/ws", self.handle_websocket, name="websocket"),
            web.static(f"{self.prefix}/static", self.statics_path, name="static"),
        ])
        app.on_startup.append(self.on_startup)
        app.on_shutdown.append(self.on_shutdown)
        return app

    async def handle_index(self, request: web.Request) -> web.Response:  # type: ignore[override]
        """Our page, its URLs made from the address the browser used (so ``--host 0.0.0.0`` works
        from another machine too)."""
        scheme = "wss" if request.secure else "ws"
        size = request.query.get("fontsize", "16")
        context = {
            "title": "rustainer",
            "static_url": f"{self.prefix}/static/",
            "websocket_url": f"{scheme}://{request.host}{self.prefix}/ws",
            "font_size": int(size) if size.isdigit() and 6 <= int(size) <= 48 else 16,
        }
        response: web.Response = aiohttp_jinja2.render_template(TEMPLATE, request, context)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token stays out of Referer headers
        return response

    async def on_startup(self, app: web.Application) -> None:
        """Quiet (no banner): the URL is printed by ``serve`` once the socket is bound."""

    def url(self, port: int) -> str:
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{port}{self.prefix}/"

    def serve(self, debug: bool = False, sock: socket.socket | None = None) -> None:
        """Bind (``--port 0``: a free port) unless given the socket, print the URL with its token,
        serve until SIGINT/SIGTERM."""
        self.debug = debug
        if sock is None:
            sock = listen(self.host, self.port)
        sock.set_inheritable(False)
        port = sock.getsockname()[1]
        print(f"rustainer-tui: serving the dashboard on {self.url(port)}", flush=True)
        print("rustainer-tui: open that address (with its token) in a browser; Ctrl+C stops", flush=True)
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.request_exit)
        web.run_app(self._make_app(), sock=sock, handle_signals=False, loop=loop, print=lambda *_: None)


def listen(host: str, port: int) -> socket.socket:
    """The server's socket (``port`` 0: a free one); OSError if the address cannot be had."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except BaseException:
        sock.close()
        raise
    return sock


def serve(root: str | None, host: str, port: int) -> int:
    """Serve until interrupted; a host or port that cannot be had is one line and exit status 1."""
    try:
        sock = listen(host, port)
    except OSError as err:
        print(f"rustainer-tui: cannot serve on {host}:{port}: {err.strerror or err}", file=sys.stderr)
        return 1
    DashboardServer(dashboard_command(root), host=host, port=port).serve(sock=sock)
    return 0
