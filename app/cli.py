"""The ``rustainer`` command line: the seed's one-shot shell and docker's verbs.

This path must stay fast (``rustainer --help``, and every container start pays for it): it never
imports Textual, the engine modules are imported only by the verb that needs them, and the verbs
other than ``run`` (and the default shell) live in ``app/cli_verbs.py``, loaded only for them.
"""

from __future__ import annotations

import os
import sys

from rustainer.app.args import Command, Opt, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
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
        Opt("-m,--memory", "memory limit (at least 6M), e.g. 512M, 1G" + (" (default: 512M)" if seed_defaults else ""),
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
        Opt("-m,--memory", "memory limit (at least 6M), e.g. 512M, 1G", takes="MEM"),
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
        if verb == "run":
            return cmd_run(args)
        from rustainer.app import cli_verbs  # the other verbs: not loaded by every container start

        return {"ps": cli_verbs.cmd_ps, "rm": cli_verbs.cmd_rm, "attach": cli_verbs.cmd_attach,
                "logs": cli_verbs.cmd_logs, "exec": cli_verbs.cmd_exec, "stop": cli_verbs.cmd_stop,
                "kill": cli_verbs.cmd_kill, "inspect": cli_verbs.cmd_inspect, "stats": cli_verbs.cmd_stats,
                "top": cli_verbs.cmd_top, "update": cli_verbs.cmd_update, "network": cli_verbs.cmd_network,
                "pull": cli_verbs.cmd_pull, "push": cli_verbs.cmd_push, "images": cli_verbs.cmd_images,
                "image": cli_verbs.cmd_image, "rmi": cli_verbs.cmd_rmi, "login": cli_verbs.cmd_login,
                "commit": cli_verbs.cmd_commit, "record": cli_verbs.cmd_record}[verb](args)
    except UsageError as err:
        print(f"rustainer: {err} (see 'rustainer --help')", file=sys.stderr)
        return ENGINE_ERROR
    except RustainerError as err:
        print(f"rustainer: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130


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
