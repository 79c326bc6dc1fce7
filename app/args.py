"""A small declarative option parser for the CLI's hot path.

Why not argparse: importing it (with ``re``, ``enum`` and ``gettext`` behind it) and building the
parsers cost about a quarter of ``rustainer run``'s start latency on the machines we measured, and
starting containers fast is a goal of the project. This covers what the CLI needs: short and long
flags, ``--opt=value`` and ``-ovalue``, repeatable options, ``--`` and a trailing command, and help
text generated from the same table. Errors are UsageError with one line the user can act on.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class UsageError(Exception):
    """Bad command-line input: shown as one line, exit code 125."""


class Opt:
    """One option: ``takes`` is the metavar of its value, or None for a flag."""

    __slots__ = ("flags", "dest", "takes", "help", "repeat", "default", "hint")

    def __init__(self, flags: str, help: str, *, takes: str | None = None, repeat: bool = False,
                 default: object = None, dest: str | None = None, hint: str = "") -> None:
        self.flags = tuple(flags.split(","))
        self.dest = dest or self.flags[-1].lstrip("-").replace("-", "_")
        self.takes = takes
        self.help = help
        self.repeat = repeat
        self.default = [] if repeat else (False if takes is None and default is None else default)
        self.hint = hint  # said when the option is given another option instead of its value


class Command:
    """A verb: its options, its positional arguments and whether a trailing COMMAND follows."""

    def __init__(self, name: str, summary: str, opts: Sequence[Opt], *, positional: str | None = None,
                 min_positional: int = 0, trailing: str | None = None) -> None:
        self.name, self.summary, self.opts = name, summary, tuple(opts)
        self.positional, self.min_positional, self.trailing = positional, min_positional, trailing
        self.by_flag = {flag: opt for opt in self.opts for flag in opt.flags}

    def parse(self, argv: Sequence[str]) -> dict[str, object]:
        """-> {dest: value, "args": positionals, "command": trailing command}."""
        values: dict[str, object] = {opt.dest: (list(opt.default) if opt.repeat else opt.default)  # type: ignore[call-overload]
                                     for opt in self.opts}
        positionals: list[str] = []
        i = 0
        while i < len(argv):
            arg = argv[i]
            i += 1
            if arg == "--":
                positionals_or_cmd = list(argv[i:])
                if self.trailing is not None:
                    values["command"] = positionals_or_cmd
                else:
                    positionals += positionals_or_cmd
                break
            if arg in ("-h", "--help"):
                values["help"] = True
                continue
            if arg.startswith("-") and arg != "-":
                name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg[:2], "", arg[2:])
                if inline and not eq and self._all_flags(arg):
                    # -it: a cluster of short flags that take no value
                    for letter in arg[1:]:
                        values[self.by_flag["-" + letter].dest] = True
                    continue
                opt = self.by_flag.get(name)
                if opt is None:
                    raise UsageError(f"unknown option {arg!r}{self._for}")
                if opt.takes is None:
                    if eq or (inline and not arg.startswith("--")):
                        raise UsageError(f"option {name} takes no value")
                    values[opt.dest] = True
                    continue
                if eq or inline:
                    value = inline
                elif i < len(argv):
                    value = argv[i]
                    i += 1
                    if value == "--" or len(value) > 1 and value.startswith("-") and self._is_option(value):
                        raise UsageError(f"option {name} needs a value ({opt.takes}), not the option {value}"
                                         + (f"; {opt.hint}" if opt.hint else ""))
                else:
                    raise UsageError(f"option {name} needs a value ({opt.takes})")
                if opt.repeat:
                    values[opt.dest].append(value)  # type: ignore[attr-defined]
                else:
                    values[opt.dest] = value
                continue
            if self.trailing is not None and self.positional is None:
                values["command"] = list(argv[i - 1:])
                break
            positionals.append(arg)
        if self.positional is None and positionals:
            raise UsageError(f"unexpected argument {positionals[0]!r}{self._for}")
        if len(positionals) < self.min_positional and not values.get("help"):
            raise UsageError(f"'{self.name}' needs {self.positional}")
        values["args"] = positionals
        values.setdefault("command", [])
        values.setdefault("help", False)
        return values

    @property
    def _for(self) -> str:
        return f" for '{self.name}'" if self.name else ""

    def _is_option(self, arg: str) -> bool:
        return (arg in self.by_flag or arg.partition("=")[0] in self.by_flag or arg in ("-h", "--help")
                or self._all_flags(arg))

    def _all_flags(self, arg: str) -> bool:
        opts = [self.by_flag.get("-" + letter) for letter in arg[1:]]
        return all(opt is not None and opt.takes is None for opt in opts)

    def usage(self, prog: str) -> str:
        parts = [prog] + ([self.name] if self.name else []) + ["[OPTIONS]"]
        if self.positional:
            parts.append(self.positional)
        if self.trailing:
            parts.append(self.trailing)
        return "usage: " + " ".join(parts)

    def help_text(self, prog: str, extra: str = "") -> str:
        lines = [self.usage(prog), "", self.summary, "", "options:"]
        rows = [("-h, --help", "show this help and exit")]
        for opt in self.opts:
            rows.append((", ".join(opt.flags) + (f" {opt.takes}" if opt.takes else ""), opt.help))
        width = max(len(r[0]) for r in rows) + 2
        lines += [f"  {flags.ljust(width)}{text}" for flags, text in rows]
        return "\n".join(lines) + ("\n\n" + extra if extra else "") + "\n"
