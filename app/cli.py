"""The ``rustainer`` command line: the seed's one-shot shell and docker's verbs.

This path must stay fast (``rustainer --help``, and every container start pays for it): it never
imports Textual, and the engine modules are imported only by the verb that needs them.
"""

from __future__ import annotations

import os
import sys

from rustainer.app.args import Command, Opt, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, TypeVar

    T = TypeVar("T")

    from rustainer.backend.container.state import ContainerState
    from rustainer.backend.engine import Engine
    from rustainer.backend.spec import ContainerSpec

ENGINE_ERROR = 125
PROG = "rustainer"


def _limit_opts(*, seed_defaults: bool) -> list[Opt]:
    return [
        Opt("-d,--directory", "host folder mounted read-write at the same path and used as the working "
            "directory; created if missing (and then removed with the container); an existing folder is "
            "never deleted" + (" (default: ./container)" if seed_defaults else ""), takes="DIR",
            default="./container" if seed_defaults else None,
            hint="-d is the folder to work in, as in the original tool: --detach runs in the background"),
        Opt("-c,--cpus", "CPU threads to allow: 1,2,3,4 or '1 5 7 10' or 0-3"
            + (" (default: one thread, the first this process may use)" if seed_defaults else ""), takes="CPUS"),
        Opt("-m,--memory", "memory limit, e.g. 512M, 1G, 300K" + (" (default: 512M)" if seed_defaults else ""),
            takes="MEM", default="512M" if seed_defaults else None),
    ]


RUN_OPTS = [
    Opt("--name", "container name (default: generated)", takes="NAME"),
    Opt("--rm", "remove the container when it exits"),
    Opt("--detach", "run in the background under a supervisor; print the name and return "
        "(attach later with 'rustainer attach')"),
    Opt("-i,--interactive", "accepted for docker's sake: COMMAND always gets stdin"),
    Opt("-t,--tty", "a terminal for COMMAND (the default when stdin is one; -it without one is refused)"),
    Opt("--init", "a small init as PID 1 that reaps orphaned processes and forwards signals to COMMAND "
        "(the default; accepted for docker's sake)"),
    Opt("--no-init", "run COMMAND itself as PID 1 (it then has to reap the orphans it adopts itself)"),
    Opt("--rootfs", "root filesystem folder, used through overlayfs so it is never modified "
        "(default: a read-only view of the host's system folders)", takes="DIR"),
    Opt("--image", "an image from the store ('rustainer images'): its layers as the root, its Entrypoint, "
        "Cmd, Env, WorkingDir and User applied as docker does", takes="IMAGE"),
    Opt("-w,--workdir", "with --image: working directory inside (default: the image's, or /)", takes="DIR"),
    Opt("-u,--user", "with --image: USER[:GROUP] or UID[:GID] to run as (default: the image's User)",
        takes="USER"),
    *_limit_opts(seed_defaults=False),
    Opt("--cpu-quota", "share of CPU time, e.g. 0.5 or 1.5 CPUs", takes="F"),
    Opt("--pids-limit", "most processes the container may have", takes="N"),
    Opt("--hostname", "hostname inside (default: the container name)", takes="H"),
    Opt("-e,--env", "set an environment variable", takes="K=V", repeat=True),
    Opt("--network", "none (default: own network namespace with only lo), host, bridge (the default "
        "bridge network) or a network made with 'rustainer network create'", takes="MODE", default="none"),
    Opt("-p,--publish", "publish a container port on the host: [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] "
        "(host address default 127.0.0.1; bridge networks only)", takes="SPEC", repeat=True),
    Opt("--no-nat", "bridge networks: do not masquerade the container's outbound traffic"),
    Opt("--cgroup-driver", "v1, v2 or systemd (default: detected)", takes="DRIVER"),
    Opt("--cgroup-parent", "cgroup to create the container's cgroup in (default: the caller's own cgroup)",
        takes="PATH"),
]

COMMANDS = {
    "": Command("", "Run programs in isolated Linux containers with CPU and memory limits. Without a "
                "subcommand: an interactive shell in a fresh container, removed with everything it "
                "created when the shell exits.", [*_limit_opts(seed_defaults=True),
                                                    Opt("--version", "print rustainer's version and exit")],
                positional="[COMMAND]"),
    "run": Command("run", "Run COMMAND (default: the image's shell) in a new container, in the foreground.",
                   RUN_OPTS, trailing="[--] [COMMAND [ARG...]]"),
    "attach": Command("attach", "Attach this terminal to a detached container (detach: Ctrl-P Ctrl-Q).", [
        Opt("--detach-keys", "key sequence that detaches (default: ctrl-p,ctrl-q)", takes="KEYS")],
        positional="NAME", min_positional=1),
    "logs": Command("logs", "Show a container's output.", [
        Opt("-f,--follow", "keep following the output until the container ends"),
        Opt("--tail", "only the last N lines", takes="N"),
        Opt("--asciicast", "write the container's session recording ('rustainer record') to FILE, an "
            "asciicast v2 file for 'asciinema play' ('-': stdout)", takes="FILE")],
        positional="NAME", min_positional=1),
    "record": Command("record", "Record a detached container's session (asciicast v2, for asciinema): "
                      "start NAME, stop NAME [FILE] (FILE: a copy of the recording).",
                      [], positional="ACTION NAME [FILE]", min_positional=2),
    "ps": Command("ps", "List containers.", [
        Opt("-a,--all", "show exited containers too"),
        Opt("-q,--quiet", "only the ids"),
        Opt("--format", "table (default) or json", takes="FORMAT", default="table")]),
    "rm": Command("rm", "Remove containers.", [Opt("-f,--force", "kill a running container first")],
                  positional="NAME...", min_positional=1),
    "exec": Command("exec", "Run a command in a running container (same namespaces, cgroup, root, "
                    "capabilities and seccomp filter).", [
        Opt("-i,--interactive", "keep stdin open and copy it to the command"),
        Opt("-t,--tty", "a terminal from the container's own devpts (when stdin is a terminal)"),
        Opt("-w,--workdir", "working directory inside (default: the container's -d folder, or /)", takes="DIR"),
        Opt("-e,--env", "set an environment variable", takes="K=V", repeat=True)],
        trailing="NAME COMMAND [ARG...]"),
    "stop": Command("stop", "Stop containers: SIGTERM, then SIGKILL to all their processes after a timeout.", [
        Opt("-t,--time", "seconds to wait before killing (default: 10)", takes="SECONDS")],
        positional="NAME...", min_positional=1),
    "kill": Command("kill", "Send a signal to containers' main process.", [
        Opt("-s,--signal", "signal name or number (default: KILL)", takes="SIGNAL", default="KILL")],
        positional="NAME...", min_positional=1),
    "inspect": Command("inspect", "Show containers' details as a JSON array.", [], positional="NAME...",
                       min_positional=1),
    "stats": Command("stats", "Live CPU, memory and pids use of running containers (default: all).", [
        Opt("--no-stream", "print one sample and exit"),
        Opt("--format", "table (default) or json", takes="FORMAT", default="table")], positional="[NAME...]"),
    "top": Command("top", "List a container's processes.", [], positional="NAME", min_positional=1),
    "update": Command("update", "Change the limits of running containers.", [
        Opt("-m,--memory", "memory limit, e.g. 512M, 1G", takes="MEM"),
        Opt("-c,--cpus", "CPU threads to allow: 1,2 or 0-3", takes="CPUS"),
        Opt("--cpu-quota", "share of CPU time, e.g. 0.5 or 1.5 CPUs", takes="F"),
        Opt("--pids-limit", "most processes the container may have", takes="N")],
        positional="NAME...", min_positional=1),
    "pull": Command("pull", "Pull an image from a registry (verified blob by blob) into the store.", [
        Opt("--insecure", "allow plain HTTP (and an unverified certificate) for this registry"),
        Opt("--platform", "OS/ARCH[/VARIANT] to pick from a multi-platform image (default: this host's)",
            takes="PLATFORM")], positional="REF", min_positional=1),
    "push": Command("push", "Push a local image to a registry under REF.", [
        Opt("--insecure", "allow plain HTTP (and an unverified certificate) for this registry")],
        positional="IMAGE REF", min_positional=2),
    "images": Command("images", "List the images in the store.", [
        Opt("--format", "table (default) or json", takes="FORMAT", default="table")]),
    "image": Command("image", "Manage images: inspect IMAGE, import FILE [NAME[:TAG]], export IMAGE FILE, "
                     "prune [-a], rm IMAGE..., ls.", [
        Opt("-a,--all", "prune: every image no container uses, not only unnamed ones"),
        Opt("--platform", "import: OS/ARCH to pick from a multi-platform archive", takes="PLATFORM")],
        positional="ACTION [ARG...]", min_positional=1),
    "commit": Command("commit", "A running container's changes (new, changed and deleted files) as a new "
                      "image: one layer on top of its image (a --rootfs container: the folder, then the changes).",
                      [], positional="CONTAINER NAME[:TAG]", min_positional=2),
    "rmi": Command("rmi", "Remove images (refused while a container uses one; shared layers stay).", [],
                   positional="IMAGE...", min_positional=1),
    "login": Command("login", "Log in to a registry: the credentials are checked, then kept in a root-only "
                     "file ($RUSTAINER_ROOT/auth.json).", [
        Opt("-u,--username", "user name (default: asked on the terminal)", takes="USER"),
        Opt("--password-stdin", "read the password from stdin"),
        Opt("--insecure", "allow plain HTTP (and an unverified certificate) for this registry")],
        positional="HOST", min_positional=1),
    "network": Command("network", "Manage bridge networks: create [--subnet CIDR] NAME, ls, rm NAME, "
                       "inspect NAME.", [
        Opt("--subnet", "create: the network's IPv4 subnet (default: a free /24 from 10.213.0.0 up)",
            takes="CIDR")], positional="ACTION [NAME]", min_positional=1),
}
VERBS_HELP = "commands:\n" + "\n".join(f"  {name:<9}{cmd.summary}" for name, cmd in COMMANDS.items() if name)


class Args:
    """Parsed options as attributes (what the verbs below read)."""

    def __init__(self, values: dict[str, object]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:  # options a verb does not have read as None
        return None


def _spec_from_args(args: Args, *, name: str | None, remove: bool, tty: bool,
                    command: tuple[str, ...]) -> ContainerSpec:
    from rustainer.backend.spec import spec_from_options

    if args.init and args.no_init:
        raise UsageError("--init and --no-init contradict each other: give one")
    return spec_from_options(
        name=name, command=command, rootfs=args.rootfs, directory=args.directory, cpus=args.cpus,
        memory=args.memory, cpu_quota=args.cpu_quota, pids_limit=args.pids_limit, hostname=args.hostname,
        env=args.env or (), network=args.network, publish=args.publish or (), nat=not args.no_nat,
        cgroup_driver=args.cgroup_driver, cgroup_parent=args.cgroup_parent, remove=remove, tty=tty,
        init=not args.no_init)


def _engine() -> Engine:
    from rustainer.backend.engine import Engine

    return Engine()


def _run(spec: ContainerSpec, *, banner: bool = False) -> int:
    from rustainer.backend.errors import CommandFailed


    def show_banner(state: ContainerState) -> None:
        from rustainer.backend.spec import format_cpus, format_size

        started = state.spec  # with the generated name, if one was drawn
        r = started.resources
        cpus = format_cpus(r.cpus) if r.cpus else "all"
        mem = format_size(r.memory) if r.memory else "unlimited"
        sys.stdout.write(
            f"rustainer: container {started.name} | cpus {cpus} | memory {mem} | directory {started.directory}\r\n"
            "rustainer: type 'exit' to leave; the container and what it created are removed then\r\n")
        sys.stdout.flush()

    try:
        code, state = _engine().run(spec, on_started=show_banner if banner else None)
    except CommandFailed as err:
        print(f"rustainer: {err}", file=sys.stderr)
        return err.exit_code
    if state.oom_killed:
        from rustainer.backend.spec import format_size

        limit = spec.resources.memory
        detail = f" (memory limit {format_size(limit)})" if limit else ""
        who = f"container {state.name}" if code == 137 else f"a process in container {state.name}"
        print(f"rustainer: {who} was OOM-killed{detail}", file=sys.stderr)
    return code


def cmd_default(args: Args) -> int:
    from rustainer.backend.container.config import available_cpus

    if args.cpus is None:
        args.__dict__["cpus"] = str(available_cpus()[0])
    spec = _spec_from_args(args, name=None, remove=True, tty=os.isatty(0), command=())
    return _run(spec, banner=True)


def _refuse_it_without_a_terminal(args: Args) -> None:
    """docker's rule: -i and -t together need a terminal on stdin (-t alone falls back to pipes)."""
    if args.interactive and args.tty and not os.isatty(0):
        raise UsageError("the input device is not a TTY: leave out -t (without a terminal, COMMAND gets "
                         "plain pipes)")


def cmd_run(args: Args) -> int:
    command = list(args.command)
    if not args.detach:
        _refuse_it_without_a_terminal(args)
    spec = _spec_from_args(args, name=args.name, remove=args.rm, tty=bool(args.detach) or os.isatty(0),
                           command=tuple(command))
    if args.image is not None:
        if args.rootfs is not None:
            raise UsageError("--image and --rootfs both name the root: give one")
        spec = _engine().image_spec(spec, args.image, workdir=args.workdir, user=args.user)
    elif args.workdir is not None or args.user is not None:
        raise UsageError("-w/--workdir and -u/--user go with --image")
    if args.detach:
        return _run_detached(spec)
    return _run(spec)


def _run_detached(spec: ContainerSpec) -> int:
    from rustainer.backend.errors import CommandFailed

    try:
        state = _engine().start_detached(spec)
    except CommandFailed as err:
        print(f"rustainer: {err}", file=sys.stderr)
        return err.exit_code
    print(state.name)
    return 0


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


def parse(argv: list[str]) -> tuple[str, Args]:
    verb = argv[0] if argv and argv[0] in COMMANDS and argv[0] else ""
    command = COMMANDS[verb]
    values = command.parse(argv[1:] if verb else argv)
    if values["help"]:
        prog = PROG
        print(command.help_text(prog, VERBS_HELP if not verb else ""), end="")
        raise SystemExit(0)
    if values.get("version"):
        from importlib.metadata import version

        print(f"rustainer {version('rustainer')}")
        raise SystemExit(0)
    if not verb and values["args"]:
        raise UsageError(f"unknown command {values['args'][0]!r}")  # type: ignore[index]
    return verb, Args(values)


def main(argv: list[str] | None = None) -> int:
    from rustainer.backend.errors import RustainerError

    try:
        verb, args = parse(sys.argv[1:] if argv is None else argv)
        if not verb:
            return cmd_default(args)
        return {"run": cmd_run, "ps": cmd_ps, "rm": cmd_rm, "attach": cmd_attach, "logs": cmd_logs,
                "exec": cmd_exec, "stop": cmd_stop, "kill": cmd_kill, "inspect": cmd_inspect, "stats": cmd_stats,
                "top": cmd_top, "update": cmd_update, "network": cmd_network, "pull": cmd_pull,
                "push": cmd_push, "images": cmd_images, "image": cmd_image, "rmi": cmd_rmi,
                "login": cmd_login, "commit": cmd_commit, "record": cmd_record}[verb](args)
    except UsageError as err:
        print(f"rustainer: {err} (see 'rustainer --help')", file=sys.stderr)
        return ENGINE_ERROR
    except RustainerError as err:
        print(f"rustainer: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


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


def exit_status() -> int:
    """``main()`` as the process's exit status, with stdio flushed: ``--help``'s SystemExit included,
    and a reader that went away (``rustainer --help | head -1``) ends it quietly with 141, as SIGPIPE
    would end a program in a shell's pipeline. Whatever could not be written is dropped (stdout and
    stderr then point at /dev/null), so that the interpreter's own flush at exit has nothing to
    complain about ("Exception ignored ... BrokenPipeError", exit 120)."""
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except BrokenPipeError:
        code = 141
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            code = code or 141
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
    return code


if __name__ == "__main__":
    sys.exit(exit_status())
