"""``rustainer-oci``: an OCI runtime with runc's command line, as containerd's runc shim (through
go-runc) calls it: ``rustainer-oci --root R --log F --log-format json create --bundle B --pid-file P ID``,
then ``start``, ``state``, ``kill``, ``delete``, ``exec``, ``ps``, ``pause``/``resume``, ``update``.

Arguments are read by hand, not with argparse: ``ctr run --rm`` runs this program four times
(create, start, delete, delete --force: measured with ``tests/bench/bench_oci.py --calls``), and
argparse costs more to import than the parsing it would do. Errors are one line on stderr and, with ``--log``, a JSON line
(``{"level":"error","msg":...}``) in the log file, which is where go-runc reads why a command
failed; the exit status is then 1, as runc's.
"""

from __future__ import annotations

import posix  # os where only create, run and exec need it: see backend/oci/state.py
import sys

VERSION = "0.1.0"
USAGE = """usage: rustainer-oci [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup] [--debug] COMMAND

commands (runc's command line):
  create --bundle DIR [--pid-file F] [--console-socket S] [--no-pivot] [--no-new-keyring] ID
  start ID | state ID | kill [--all] ID [SIGNAL] | delete [--force] ID
  run --bundle DIR [--pid-file F] [--no-pivot] ID     create, start and wait (no terminal)
  exec --process FILE [--detach] [--pid-file F] [--console-socket S] [--tty] ID
  ps [--format json|table] ID | pause ID | resume ID | update --resources FILE ID | features
"""
UNSUPPORTED = ("checkpoint", "restore", "events", "list", "spec")
# options that take a value, per command ("" = the global options)
VALUED = {
    "": {"--root", "--log", "--log-format", "--criu", "--rootless"},
    "create": {"--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds", "--notify-socket"},
    "run": {"--bundle", "-b", "--pid-file", "--console-socket", "--preserve-fds"},
    "exec": {"--process", "-p", "--pid-file", "--console-socket", "--cwd", "--env", "-e", "--user", "-u",
             "--preserve-fds", "--process-label", "--apparmor", "--cap", "-c", "--cgroup"},
    "ps": {"--format", "-f"},
    "update": {"--resources", "-r"},
    "delete": set(),
    "kill": set(),
}


class UsageError(Exception):
    pass


def split_options(args: list[str], valued: set[str]) -> tuple[dict[str, str], list[str], list[str]]:
    """Options (``--x v``, ``--x=v``, flags; anywhere before ``--``) -> (options, positionals, ())."""
    options: dict[str, str] = {}
    positionals: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positionals += args[i + 1:]
            break
        if arg.startswith("-") and len(arg) > 1:
            name, eq, value = arg.partition("=")
            if name in valued and not eq:
                if i + 1 >= len(args):
                    raise UsageError(f"option {name} needs a value")
                value = args[i + 1]
                i += 1
            options[name] = value if (eq or name in valued) else "true"
            i += 1
            continue
        positionals.append(arg)
        i += 1
    return options, positionals, []


def opt(options: dict[str, str], *names: str) -> str | None:
    for name in names:
        if name in options:
            return options[name]
    return None


class Logger:
    def __init__(self, path: str | None, fmt: str | None, debug: bool) -> None:
        self.path = path
        self.json = fmt == "json"
        self.debug_on = debug

    def write(self, level: str, msg: str) -> None:
        if self.path:
            import time

            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            if self.json:
                from rustainer.backend.util.jsonfile import dumps

                line = "".join(part.strip() for part in dumps({"level": level, "msg": msg, "time": stamp}).splitlines())
            else:
                line = f'time="{stamp}" level={level} msg="{msg}"'
            try:
                with open(self.path, "a") as fh:
                    fh.write(line + "\n")
            except OSError:
                pass

    def warn(self, msg: str) -> None:
        self.write("warning", msg)


def one_id(positionals: list[str], command: str) -> str:
    if len(positionals) != 1:
        raise UsageError(f"{command} needs exactly one container id")
    return positionals[0]


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # global options, up to the command
    glob: dict[str, str] = {}
    while args and args[0].startswith("-"):
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in ("-v", "--version"):
            print(f"rustainer-oci version {VERSION}\nspec: 1.0.2")
            return 0
        if name in ("-h", "--help"):
            print(USAGE, end="")
            return 0
        if name in VALUED[""] and not eq:
            if not args:
                print(f"rustainer-oci: option {name} needs a value", file=sys.stderr)
                return 1
            value = args.pop(0)
        glob[name] = value if (eq or name in VALUED[""]) else "true"
    log = Logger(glob.get("--log"), glob.get("--log-format"), "--debug" in glob)
    if not args:
        print(USAGE, end="", file=sys.stderr)
        return 1
    command, rest = args[0], args[1:]
    try:
        return run_command(command, rest, glob, log)
    except UsageError as err:
        return fail(log, str(err))
    except KeyboardInterrupt:
        return fail(log, "interrupted")
    except Exception as err:  # noqa: BLE001 - the CLI's edge: one line, exit 1
        from rustainer.backend.errors import RustainerError

        if isinstance(err, RustainerError):
            return fail(log, str(err))
        if isinstance(err, OSError):
            return fail(log, f"{command} failed: {err.strerror or err}" + (f": {err.filename}" if err.filename else ""))
        return fail(log, f"{command} failed: {type(err).__name__}: {err}")


def fail(log: Logger, message: str) -> int:
    log.write("error", message)
    print(f"rustainer-oci: {message}", file=sys.stderr)
    return 1


def run_command(command: str, rest: list[str], glob: dict[str, str], log: Logger) -> int:
    if command in UNSUPPORTED:
        raise UsageError(f"{command} is not supported by rustainer-oci")
    if command in ("--help", "help"):
        print(USAGE, end="")
        return 0
    if command == "features":
        import json

        from rustainer.backend.oci.commands import features

        print(json.dumps(features(), indent=2))
        return 0
    if command not in VALUED and command not in ("start", "state", "pause", "resume"):
        raise UsageError(f"unknown command {command!r} (see rustainer-oci --help)")
    options, positionals, _ = split_options(rest, VALUED.get(command, set()))
    if "--help" in options or "-h" in options:
        print(USAGE, end="")
        return 0
    from rustainer.backend.oci.state import Store

    store = Store(glob.get("--root"))
    if posix.geteuid() != 0:
        raise UsageError("rustainer-oci needs root (namespaces, mounts and cgroups are root's)")
    if command in ("create", "run"):
        import os

        from rustainer.backend.oci.create import create

        cid = one_id(positionals, command)
        bundle = opt(options, "--bundle", "-b") or os.getcwd()
        pid = create(store, cid, bundle, pid_file=opt(options, "--pid-file"),
                     console_socket=opt(options, "--console-socket"), no_pivot="--no-pivot" in options,
                     systemd_cgroup="--systemd-cgroup" in glob, warn=log.warn,
                     preserve_fds=int(opt(options, "--preserve-fds") or 0))
        if command == "create":
            return 0
        return run_foreground(store, cid, pid)
    if command == "exec":
        from rustainer.backend.oci.exec import exec_process

        process = opt(options, "--process", "-p")
        if not process:
            raise UsageError("exec needs --process FILE (a command line after the id is not supported)")
        cid = one_id(positionals, command)
        tty = True if ("--tty" in options or "-t" in options) else None
        return exec_process(store, cid, process, detach="--detach" in options or "-d" in options,
                            pid_file=opt(options, "--pid-file"), console_socket=opt(options, "--console-socket"),
                            tty=tty)
    from rustainer.backend.oci import commands

    if command == "start":
        commands.start(store, one_id(positionals, command))
    elif command == "state":
        from rustainer.backend.util.jsonfile import dumps

        print(dumps(commands.state(store, one_id(positionals, command))))
    elif command == "kill":
        if not 1 <= len(positionals) <= 2:
            raise UsageError("kill needs a container id and optionally a signal")
        sig = commands.parse_signal(positionals[1] if len(positionals) == 2 else "SIGTERM")
        commands.kill(store, positionals[0], sig, all_processes="--all" in options or "-a" in options)
    elif command == "delete":
        commands.delete(store, one_id(positionals, command), force="--force" in options or "-f" in options)
    elif command == "ps":
        pids = commands.ps(store, one_id(positionals, command))
        if (opt(options, "--format", "-f") or "table") == "json":
            print("[" + ",".join(str(p) for p in pids) + "]")
        else:
            print("PID")
            for pid in pids:
                print(pid)
    elif command in ("pause", "resume"):
        commands.pause(store, one_id(positionals, command), command == "pause")
    elif command == "update":
        resources = opt(options, "--resources", "-r")
        if not resources:
            raise UsageError("update needs --resources FILE (other options are not supported)")
        commands.update(store, one_id(positionals, command), resources)
    return 0


def run_foreground(store: object, cid: str, pid: int) -> int:
    """``run``: start the container we just created, wait for it, remove it; its exit status."""
    import os

    from rustainer.backend.oci import commands
    from rustainer.backend.oci.state import Store

    assert isinstance(store, Store)
    try:
        commands.start(store, cid)
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    except BaseException:
        commands.delete(store, cid, force=True)
        raise
    commands.delete(store, cid, force=True)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def exit_status() -> int:
    code = main()
    try:
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        pass
    return code


if __name__ == "__main__":
    sys.exit(exit_status())
