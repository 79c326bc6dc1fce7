"""The ``rustainer`` command line: the seed's one-shot shell and docker's verbs.

This path must stay fast (``rustainer --help``, and every container start pays for it): it never
imports Textual, and the engine modules are imported only by the verb that needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from rustainer.backend.spec import ContainerSpec
    from rustainer.backend.state import StateStore

ENGINE_ERROR = 125


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but bad input is one line and exit 125, like every other engine error."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_limits(p: argparse.ArgumentParser, *, seed_defaults: bool) -> None:
    p.add_argument("-d", "--directory", metavar="DIR",
                   default="./container" if seed_defaults else None,
                   help="host folder mounted read-write at the same path and used as the working directory; "
                        "created if missing (and then removed with the container); an existing folder is never deleted"
                        + (" (default: ./container)" if seed_defaults else ""))
    p.add_argument("-c", "--cpus", metavar="CPUS", default=None,
                   help="CPU threads to allow: 1,2,3,4 or '1 5 7 10' or 0-3"
                        + (" (default: one thread, the first this process may use)" if seed_defaults else ""))
    p.add_argument("-m", "--memory", metavar="MEM", default="512M" if seed_defaults else None,
                   help="memory limit, e.g. 512M, 1G, 300K" + (" (default: 512M)" if seed_defaults else ""))


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", help="container name (default: generated)")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--rootfs", metavar="DIR",
                   help="root filesystem folder, used through overlayfs so it is never modified "
                        "(default: a read-only view of the host's system folders)")
    _add_limits(p, seed_defaults=False)
    p.add_argument("--cpu-quota", metavar="F", help="share of CPU time, e.g. 0.5 or 1.5 CPUs")
    p.add_argument("--pids-limit", metavar="N", help="most processes the container may have")
    p.add_argument("--hostname", metavar="H", help="hostname inside (default: the container name)")
    p.add_argument("-e", "--env", metavar="K=V", action="append", default=[], help="set an environment variable")
    p.add_argument("--network", default="none", metavar="MODE",
                   help="none (default: own network namespace with only lo) or host")
    p.add_argument("--cgroup-driver", metavar="DRIVER", help="v1, v2 or systemd (default: detected)")
    p.add_argument("--cgroup-parent", metavar="PATH",
                   help="cgroup to create the container's cgroup in (default: the caller's own cgroup)")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ARG...",
                   help="command to run (default: the image's shell)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rustainer",
        description="Run programs in isolated Linux containers with CPU and memory limits. "
                    "Without a subcommand: an interactive shell in a fresh container, removed with "
                    "everything it created when the shell exits.",
    )
    _add_limits(parser, seed_defaults=True)
    sub = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser("run", help="run a command in a new container",
                         description="Run COMMAND in a new container, in the foreground.")
    _add_run_options(run)
    ps = sub.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="show exited containers too")
    ps.add_argument("--format", choices=("table", "json"), default="table")
    rm = sub.add_parser("rm", help="remove containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    rm.add_argument("names", nargs="+", metavar="NAME")
    return parser


def _spec_from_args(args: argparse.Namespace, *, name: str | None, remove: bool, tty: bool,
                    command: tuple[str, ...]) -> ContainerSpec:
    from rustainer.backend import spec as S

    cpus = S.parse_cpus(args.cpus) if args.cpus is not None else None
    memory = S.parse_size(args.memory) if args.memory is not None else None
    quota = S.parse_cpu_quota(args.cpu_quota, len(os.sched_getaffinity(0))) if getattr(args, "cpu_quota", None) else None
    pids = S.parse_pids_limit(args.pids_limit) if getattr(args, "pids_limit", None) else None
    hostname = S.validate_hostname(args.hostname) if getattr(args, "hostname", None) else None
    env = tuple(S.parse_env(e) for e in getattr(args, "env", []))
    driver = S.parse_cgroup_driver(args.cgroup_driver) if getattr(args, "cgroup_driver", None) else None
    rootfs = getattr(args, "rootfs", None)
    directory = os.path.abspath(args.directory) if args.directory else None
    if name is not None:
        S.validate_name(name)
    return S.ContainerSpec(
        name=name or "",
        command=command,
        rootfs=os.path.abspath(rootfs) if rootfs else None,
        directory=directory,
        hostname=hostname,
        env=env,
        resources=S.Resources(cpus=cpus, memory=memory, cpu_quota=quota, pids_limit=pids),
        cgroup_driver=driver,
        cgroup_parent=getattr(args, "cgroup_parent", None),
        network=getattr(args, "network", "none"),
        remove=remove,
        tty=tty,
    )


def _store() -> StateStore:
    from rustainer.backend.paths import state_root
    from rustainer.backend.state import StateStore

    return StateStore(state_root())


def _run(spec: ContainerSpec, *, banner: bool = False) -> int:
    from rustainer.backend.errors import NameInUseError
    from rustainer.backend.record import replace
    from rustainer.backend.runtime import ChildFailed, require_root, run_foreground

    require_root()
    store = _store()

    def show_banner(state: object) -> None:
        from rustainer.backend.spec import format_cpus, format_size

        r = spec.resources
        cpus = format_cpus(r.cpus) if r.cpus else "all"
        mem = format_size(r.memory) if r.memory else "unlimited"
        sys.stdout.write(
            f"rustainer: container {spec.name} | cpus {cpus} | memory {mem} | directory {spec.directory}\r\n"
            "rustainer: type 'exit' to leave; the container and what it created are removed then\r\n")
        sys.stdout.flush()

    attempts = 5 if not spec.name else 1
    for attempt in range(attempts):
        if attempts > 1:
            from rustainer.app.names import generate_name

            spec = replace(spec, name=generate_name())
        try:
            code, state = run_foreground(spec, store, on_started=show_banner if banner else None)
        except NameInUseError:
            if attempt + 1 < attempts:
                continue
            raise
        except ChildFailed as err:
            print(f"rustainer: {err}", file=sys.stderr)
            return err.exit_code
        if state.oom_killed:
            limit = spec.resources.memory
            from rustainer.backend.spec import format_size

            detail = f" (memory limit {format_size(limit)})" if limit else ""
            who = f"container {state.name}" if code == 137 else f"a process in container {state.name}"
            print(f"rustainer: {who} was OOM-killed{detail}", file=sys.stderr)
        return code
    return ENGINE_ERROR


def cmd_default(args: argparse.Namespace) -> int:
    from rustainer.backend.runtime import available_cpus

    if args.cpus is None:
        args.cpus = str(available_cpus()[0])
    spec = _spec_from_args(args, name=None, remove=True, tty=os.isatty(0), command=())
    return _run(spec, banner=True)


def cmd_run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    spec = _spec_from_args(args, name=args.name, remove=args.rm, tty=os.isatty(0), command=tuple(command))
    return _run(spec)


def cmd_ps(args: argparse.Namespace) -> int:
    from rustainer.backend.spec import format_cpus, format_size
    from rustainer.backend.state import RUNNING

    states = [s for s in _store().list() if args.all or s.status == RUNNING]
    if args.format == "json":
        import json

        from rustainer.backend.record import asdict

        print(json.dumps([asdict(s) for s in states], indent=1))
        return 0
    rows = [("NAME", "ID", "STATUS", "ROOTFS", "CPUS", "MEMORY", "PID")]
    for s in states:
        r = s.spec.resources
        status = s.status if s.status != "exited" else f"exited ({s.exit_code}){' OOM' if s.oom_killed else ''}"
        rows.append((s.name, s.short_id, status, s.spec.rootfs or "host view",
                     format_cpus(r.cpus) if r.cpus else "all", format_size(r.memory) if r.memory else "-",
                     str(s.pid or "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from rustainer.backend.errors import RustainerError
    from rustainer.backend.runtime import remove_container, require_root

    require_root()
    store = _store()
    code = 0
    for name in args.names:
        try:
            remove_container(store, store.find(name), force=args.force)
            print(name)
        except RustainerError as err:
            print(f"rustainer: {err}", file=sys.stderr)
            code = ENGINE_ERROR
    return code


def main(argv: list[str] | None = None) -> int:
    from rustainer.backend.errors import RustainerError

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        verb = args.verb
        if verb is None:
            return cmd_default(args)
        return {"run": cmd_run, "ps": cmd_ps, "rm": cmd_rm}[verb](args)
    except (UsageError, RustainerError) as err:
        print(f"rustainer: {err}", file=sys.stderr)
        return getattr(err, "exit_code", ENGINE_ERROR)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
