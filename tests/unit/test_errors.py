"""The one error hierarchy: every error a caller may meet carries its message, exit code and what it
is about, so a front end acts on it without parsing text."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustainer.backend import errors
from rustainer.backend.engine import Engine
from rustainer.backend.errors import CommandFailed, ContainerNotFoundError, Interrupted, RustainerError


def test_every_error_class_lives_in_one_module_and_shares_the_base() -> None:
    import pkgutil

    import rustainer.backend as backend

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert all(issubclass(c, RustainerError) for c in classes)
    # No other backend module defines an exception class of its own.
    for info in pkgutil.walk_packages(backend.__path__, "rustainer.backend."):
        if info.name == "rustainer.backend.errors" or info.ispkg:
            continue
        module = __import__(info.name, fromlist=["_"])
        own = [n for n, c in vars(module).items()
               if isinstance(c, type) and issubclass(c, BaseException) and c.__module__ == info.name]
        assert own == [], f"{info.name} defines {own}: put it in backend/errors.py"


def test_a_missing_container_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ContainerNotFoundError) as caught:
        Engine(str(tmp_path)).get("nosuch")
    assert caught.value.container == "nosuch" and caught.value.exit_code == 125
    assert str(caught.value) == "no such container: nosuch"


def test_the_merged_pairs_keep_their_exit_codes() -> None:
    assert CommandFailed(127, "sh: not found", 256).exit_code == 127
    assert CommandFailed(127, "x").status == 0
    err = Interrupted(15)
    assert err.exit_code == 143 and err.signum == 15 and "signal 15" in str(err)
    assert "exec'd" in str(Interrupted(2, "the exec'd process was killed"))
