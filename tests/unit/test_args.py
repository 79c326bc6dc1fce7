"""The CLI's own option parser: docker-like forms, one-line errors."""

from __future__ import annotations

import pytest

from rustainer.app.args import Command, Opt, UsageError

CMD = Command("exec", "x", [Opt("-i,--interactive", "i"), Opt("-t,--tty", "t"), Opt("-e,--env", "e", takes="K=V",
                                                                                    repeat=True)],
              positional="NAME", min_positional=1)
RUN = Command("run", "x", [Opt("-m,--memory", "m", takes="MEM"), Opt("--rm", "rm")], trailing="COMMAND")


def test_clustered_short_flags() -> None:
    v = CMD.parse(["-it", "box"])
    assert v["interactive"] is True and v["tty"] is True and v["args"] == ["box"]


def test_values_inline_separate_and_repeated() -> None:
    v = CMD.parse(["-eA=1", "--env=B=2", "-e", "C=3", "box"])
    assert v["env"] == ["A=1", "B=2", "C=3"]
    assert RUN.parse(["-m64M", "--", "sh", "-c", "x"])["memory"] == "64M"
    assert RUN.parse(["-m", "-5M", "true"])["memory"] == "-5M"  # a value, then the command


def test_trailing_command_starts_at_the_first_non_option() -> None:
    v = RUN.parse(["--rm", "echo", "--rm", "-m"])
    assert v["rm"] is True and v["command"] == ["echo", "--rm", "-m"] and v["memory"] is None


@pytest.mark.parametrize("argv", [["-x", "box"], ["--memory"], ["-iz", "box"], ["--tty=yes", "box"], []])
def test_bad_input_is_a_usage_error(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        (RUN if argv == ["--memory"] else CMD).parse(argv)


def test_help_wins_over_missing_arguments() -> None:
    assert CMD.parse(["--help"])["help"] is True  # not "'exec' needs NAME"


@pytest.mark.parametrize("argv", [["-m", "--rm", "true"], ["-m", "--rm=x"], ["-m", "--"], ["-m", "-h"]])
def test_an_option_is_not_taken_as_another_options_value(argv: list[str]) -> None:
    with pytest.raises(UsageError, match="option -m needs a value"):
        RUN.parse(argv)


def test_the_seeds_directory_option_says_what_docker_users_mean() -> None:
    from rustainer.app.cli import COMMANDS

    with pytest.raises(UsageError) as err:
        COMMANDS["run"].parse(["-d", "--name", "web", "sh"])
    assert "--detach runs in the background" in str(err.value) and "\n" not in str(err.value)
    assert COMMANDS["run"].parse(["-d", "-work", "sh"])["directory"] == "-work"  # a folder may start with -
