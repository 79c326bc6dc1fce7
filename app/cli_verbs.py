"""The ``rustainer`` verbs other than ``run`` (and the seed's default shell): ``ps``, ``logs``, ``exec``,
the image and network verbs...

Kept out of ``app/cli.py``, which every container start imports: loading this module's code costs
some 0.3 ms on the CI VM, and ``rustainer run`` needs none of it. ``cli.main`` imports it for the
verbs it serves.
"""

from __future__ import annotations

import os
import sys

from rustainer.app.args import UsageError
from rustainer.app.cli import ENGINE_ERROR, Args, _engine, _refuse_it_without_a_terminal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from rustainer.backend.engine import Engine


def _one(args: Args) -> str:
    if len(args.args) != 1:
        raise UsageError("give exactly one container NAME")
    return str(args.args[0])


def cmd_attach(args: Args) -> int:
    return _engine().attach(_one(args), args.detach_keys)


def cmd_logs(args: Args) -> int:
    if args.asciicast is not None:
        if args.follow or args.tail is not None:
            raise UsageError("--asciicast writes the whole recording: leave out --follow and --tail")
        return _export_recording(_engine(), _one(args), args.asciicast)
    if args.follow:
        _until_interrupted()  # before anything is shown: a Ctrl-C may come as soon as it is
    engine, ref = _engine(), _one(args)
    tail = None
    if args.tail is not None:
        if not str(args.tail).isdigit():
            raise UsageError(f"--tail takes a number of lines, not {args.tail!r}")
        tail = int(args.tail)
    sys.stdout.buffer.write(engine.logs(ref, tail))
    sys.stdout.buffer.flush()
    if args.follow:
        engine.follow_logs(ref, sys.stdout.buffer)
    return 0


def _export_recording(engine: Engine, ref: str, path: str) -> int:
    """The container's recording to ``path`` ('-': stdout); a file is written whole or not at all."""
    if path == "-":
        engine.export_recording(ref, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    engine.recording_path(ref)  # no recording: say so before a file is made
    partial = f"{path}.rustainer-tmp"
    try:
        with open(partial, "wb") as out:
            engine.export_recording(ref, out)
        os.replace(partial, path)
    except OSError as err:
        try:
            os.unlink(partial)
        except OSError:
            pass
        raise UsageError(f"cannot write {path}: {err.strerror}") from None
    return 0


def cmd_record(args: Args) -> int:
    """``record start NAME`` / ``record stop NAME [FILE]``: the supervisor records the session into
    the container's folder; ``stop`` with FILE also copies it there (as ``logs --asciicast``)."""
    from rustainer.backend.container.config import require_root

    action, rest = args.args[0], list(args.args[1:])
    if action not in ("start", "stop"):
        raise UsageError(f"unknown record action {action!r}: use start or stop")
    if not 1 <= len(rest) <= (2 if action == "stop" else 1):
        raise UsageError("use 'record start NAME' or 'record stop NAME [FILE]'")
    require_root()
    engine = _engine()
    path = engine.record(rest[0], on=action == "start")
    if action == "stop" and len(rest) == 2:
        return _export_recording(engine, rest[0], rest[1])
    if path:
        print(path)
    return 0


def cmd_ps(args: Args) -> int:
    from rustainer.backend.spec import format_cpus, format_size

    states = _engine().containers(all=bool(args.all))
    if args.quiet:
        print("".join(f"{s.short_id}\n" for s in states), end="")
        return 0
    if args.format == "json":
        import json

        from rustainer.backend.util.record import asdict

        print(json.dumps([asdict(s) for s in states], indent=1))
        return 0
    from rustainer.backend.container.lifecycle import uptime

    rows = [("NAME", "ID", "STATUS", "UPTIME", "ROOTFS", "CPUS", "MEMORY", "PID")]
    for s in states:
        r = s.spec.resources
        status = s.status if s.status != "exited" else f"exited ({s.exit_code}){' OOM' if s.oom_killed else ''}"
        rows.append((s.name, s.short_id, status, uptime(s), s.spec.image_name or s.spec.rootfs or "host view",
                     format_cpus(r.cpus) if r.cpus else "all", format_size(r.memory) if r.memory else "-",
                     str(s.pid or "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_rm(args: Args) -> int:
    engine = _engine()
    return _each(args, lambda name: engine.remove(name, force=bool(args.force)))


def _each(args: Args, action: Callable[[str], object]) -> int:
    """Run ``action`` per NAME; an error for one name is one line and exit 125, the others still run."""
    from rustainer.backend.container.config import require_root
    from rustainer.backend.errors import RustainerError

    require_root()
    code = 0
    for name in args.args:
        try:
            action(name)
            print(name)
        except RustainerError as err:
            print(f"rustainer: {err}", file=sys.stderr)
            code = ENGINE_ERROR
    return code


def cmd_exec(args: Args) -> int:
    from rustainer.backend.spec import parse_env

    if len(args.command) < 2:
        raise UsageError("'exec' needs NAME COMMAND [ARG...]")
    _refuse_it_without_a_terminal(args)
    env = tuple(parse_env(e) for e in (args.env or []))
    return _engine().exec(args.command[0], list(args.command[1:]), interactive=bool(args.interactive),
                          tty=bool(args.tty), workdir=args.workdir, env=env)


def cmd_stop(args: Args) -> int:
    timeout = None
    if args.time is not None:
        if not (str(args.time).isascii() and str(args.time).isdigit()):
            raise UsageError(f"-t takes a whole number of seconds, not {args.time!r}")
        timeout = float(args.time)
    engine = _engine()
    return _each(args, lambda name: engine.stop(name, timeout))


def cmd_kill(args: Args) -> int:
    from rustainer.backend.container.lifecycle import parse_signal

    engine, sig = _engine(), parse_signal(args.signal)
    return _each(args, lambda name: engine.kill(name, sig))


def cmd_inspect(args: Args) -> int:
    import json

    from rustainer.backend.errors import RustainerError

    engine = _engine()
    found, code = [], 0
    for name in args.args:
        try:
            found.append(engine.inspect(name))
        except RustainerError as err:
            print(f"rustainer: {err}", file=sys.stderr)
            code = ENGINE_ERROR
    print(json.dumps(found, indent=1))
    return code


def cmd_stats(args: Args) -> int:
    """One sample (``--no-stream``) or a new one every second until interrupted, like docker's.

    Named containers are followed by id: one that ends or is removed meanwhile stays in the table
    with dashes (docker shows ``--``). Without names, the running containers of each moment.
    """
    from rustainer.backend.container.config import require_root
    from rustainer.backend.spec import format_size

    require_root()
    engine = _engine()
    named = [(s.name, s.short_id) for s in (engine.running(ref, "show stats of") for ref in args.args)]
    if not args.no_stream:
        _until_interrupted()
    try:
        while True:
            rows = _sample_named(engine, named) if named else engine.stats(None)
            if args.format == "json":
                import json

                print(json.dumps(rows, indent=1))
            else:
                if not args.no_stream:
                    sys.stdout.write("\033[H\033[J")
                table = [("NAME", "ID", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS")]
                for r in rows:
                    usage, limit = r["memory_usage"], r["memory_limit"]
                    mem = f"{format_size(usage) if usage is not None else '-'} / {format_size(limit) if limit else '-'}"
                    pct = f"{100 * usage / limit:.2f}%" if usage is not None and limit else "-"
                    cpu = f"{r['cpu_percent']:.2f}%" if r["cpu_percent"] is not None else "-"
                    table.append((r["name"], r["id"], cpu, mem, pct, str(r["pids"] if r["pids"] is not None else "-")))
                _print_table(table)
            sys.stdout.flush()
            if args.no_stream:
                return 0
    except BrokenPipeError:  # `stats | head`: the reader has gone, which ends the stream quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _until_interrupted() -> None:
    """A stream that runs until Ctrl-C (``stats``, ``logs -f``) takes SIGINT even when it started
    with it ignored, which Python then leaves ignored: a background job of a shell without job
    control (``cmd &`` in a script) and all it starts begin so. Docker's CLI does the same (Go's
    signal.Notify un-ignores it)."""
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _sample_named(engine: Engine, named: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One sample of the named containers, in their order; a row of Nones for one that has ended."""
    import time

    from rustainer.backend.errors import RustainerError

    started = time.monotonic()
    live = []
    for _name, cid in named:
        try:
            live.append(engine.running(cid, "show stats of").short_id)
        except RustainerError:
            pass
    rows: list[dict[str, Any]] = []
    if live:
        try:
            rows = engine.stats(live)
        except RustainerError:  # one ended between the check and the sample: the others next time
            pass
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))  # the same pace whatever has ended
    by_id = {r["id"]: r for r in rows}
    return [by_id.get(cid) or {"name": name, "id": cid, "cpu_percent": None, "memory_usage": None,
                               "memory_limit": None, "pids": None, "oom_kills": None}
            for name, cid in named]


def cmd_top(args: Args) -> int:
    from rustainer.backend.container.config import require_root

    require_root()
    rows = _engine().top(_one(args))
    _print_table([("PID", "CPID", "USER", "COMMAND")]
                 + [(str(r["pid"]), str(r["container_pid"]), r["user"], r["command"]) for r in rows])
    return 0


def cmd_update(args: Args) -> int:
    engine = _engine()
    return _each(args, lambda name: engine.update(name, memory=args.memory, cpus=args.cpus,
                                                  cpu_quota=args.cpu_quota, pids_limit=args.pids_limit))


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def cmd_network(args: Args) -> int:
    """``network create|ls|rm|inspect``: our parser has no nested verbs, so ACTION is positional."""
    from rustainer.backend.container.config import require_root

    action, names = args.args[0], list(args.args[1:])
    actions = {"create": 1, "ls": 0, "list": 0, "rm": 1, "remove": 1, "inspect": 1}
    if action not in actions:
        raise UsageError(f"unknown network action {action!r}: use create, ls, rm or inspect")
    if len(names) != actions[action]:
        raise UsageError(f"'network {action}' takes {'one NAME' if actions[action] else 'no NAME'}")
    if args.subnet is not None and action != "create":
        raise UsageError("--subnet goes with 'network create'")
    require_root()
    engine = _engine()
    if action == "create":
        print(engine.create_network(names[0], args.subnet)["name"])
    elif action in ("rm", "remove"):
        engine.remove_network(names[0])
        print(names[0])
    elif action == "inspect":
        import json

        print(json.dumps(engine.inspect_network(names[0]), indent=1))
    else:
        rows = [("NAME", "SUBNET", "GATEWAY", "BRIDGE", "CONTAINERS")]
        for net in engine.networks():
            rows.append((net["name"], net["subnet"], net["gateway"], net["bridge"] if net["active"] else "-",
                         str(len(net["containers"]))))
        _print_table(rows)
    return 0


def _image_root() -> None:
    from rustainer.backend.container.config import require_root

    require_root()


def cmd_pull(args: Args) -> int:
    _image_root()
    image = _engine().pull(args.args[0], platform=args.platform, insecure=args.insecure,
                           progress=sys.stderr if sys.stderr.isatty() else None)
    print(image.id)
    return 0


def cmd_push(args: Args) -> int:
    _image_root()
    if len(args.args) != 2:
        raise UsageError("'push' takes IMAGE and REF")
    print(_engine().push(args.args[0], args.args[1], insecure=args.insecure))
    return 0


def cmd_images(args: Args) -> int:
    from rustainer.backend.images.reference import short_name

    engine = _engine()
    images = engine.images()
    store = engine.image_store
    if args.format == "json":
        import json

        print(json.dumps([{"id": i.id, "names": list(i.names), "created": i.created, "platform": i.platform,
                           "size": store.disk_usage(i), "layers": len(i.layers)} for i in images], indent=1))
        return 0
    if args.format != "table":
        raise UsageError(f"unknown format {args.format!r}: use table or json")
    from rustainer.backend.spec import format_size

    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "PLATFORM", "SIZE")]
    for image in images:
        size = format_size(store.disk_usage(image))
        for name in image.names or ("<none>:<none>",):
            repo, tag = short_name(name) if name != "<none>:<none>" else ("<none>", "<none>")
            rows.append((repo, tag, image.short_id, image.created[:19] or "-", image.platform or "-", size))
    _print_table(rows)
    return 0


def cmd_commit(args: Args) -> int:
    if len(args.args) != 2:
        raise UsageError("'commit' takes CONTAINER and NAME[:TAG]")
    _image_root()
    print(_engine().commit(args.args[0], args.args[1]).id)
    return 0


def cmd_rmi(args: Args) -> int:
    _image_root()
    for line in _engine().remove_images(list(args.args)):
        print(line)
    return 0


def cmd_image(args: Args) -> int:
    """``image inspect|import|export|prune|rm|ls``: ACTION is positional, as for ``network``."""
    action, rest = args.args[0], list(args.args[1:])
    counts = {"inspect": (1, 99), "import": (1, 2), "export": (2, 2), "prune": (0, 0), "rm": (1, 99),
              "ls": (0, 0)}
    if action not in counts:
        raise UsageError(f"unknown image action {action!r}: use inspect, import, export, prune, rm or ls")
    low, high = counts[action]
    if not low <= len(rest) <= high:
        raise UsageError(f"wrong number of arguments for 'image {action}'")
    if action == "ls":
        return cmd_images(args)
    _image_root()
    engine = _engine()
    if action == "inspect":
        import json

        print(json.dumps([engine.inspect_image(ref) for ref in rest], indent=1))
    elif action == "import":
        for image in engine.import_image(rest[0], rest[1] if len(rest) > 1 else None, args.platform):
            print(image.id)
    elif action == "export":
        engine.export_image(rest[0], rest[1])
    elif action == "rm":
        for line in engine.remove_images(rest):
            print(line)
    else:
        for line in engine.prune_images(all=bool(args.all)):
            print(line)
    return 0


def cmd_login(args: Args) -> int:
    _image_root()
    host = args.args[0]
    user = args.username
    if args.password_stdin:
        if user is None:
            raise UsageError("--password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\n")
    else:
        if not sys.stdin.isatty():
            raise UsageError("no terminal to ask for the password on: use --username and --password-stdin")
        import getpass

        if user is None:
            user = input("Username: ")
        password = getpass.getpass("Password: ")
    if not user or not password:
        raise UsageError("a user name and a password are needed")
    path = _engine().login(host, user, password, insecure=args.insecure)
    print(f"Login succeeded (credentials kept in {path})")
    return 0
