"""The ``rustainer`` script's finder and loader (app/fastimport.py): the modules they make are the
ones the standard path finder makes, and a ``.pyc`` that is not current is never used."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rustainer.app.fastimport import RustainerFinder, RustainerLoader


def _tree(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "mod.py").write_text("VALUE = 1\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "both").mkdir()  # a folder with an __init__.py wins over both.py, as with the path finder
    (pkg / "both" / "__init__.py").write_text("")
    (pkg / "both.py").write_text("")
    (pkg / "nsdir").mkdir()  # no __init__.py: a namespace portion, left to the path finder
    (pkg / "notes.txt").write_text("")
    RustainerFinder.invalidate_caches()
    return pkg


def test_specs_are_the_path_finders(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    for tail in ("mod", "sub", "both"):
        name = f"rustainer.fake.{tail}"
        ours = RustainerFinder.find_spec(name, [str(pkg)])
        theirs = importlib.machinery.PathFinder.find_spec(name, [str(pkg)])
        assert ours is not None and theirs is not None
        assert isinstance(ours.loader, importlib.machinery.SourceFileLoader)
        assert (ours.name, ours.origin, ours.cached, ours.submodule_search_locations, ours.has_location) == \
               (theirs.name, theirs.origin, theirs.cached, theirs.submodule_search_locations, theirs.has_location)


def test_what_it_does_not_answer(tmp_path: Path) -> None:
    pkg = _tree(tmp_path)
    assert RustainerFinder.find_spec("rustainer.fake.nsdir", [str(pkg)]) is None
    assert RustainerFinder.find_spec("rustainer.fake.missing", [str(pkg)]) is None
    assert RustainerFinder.find_spec("rustainer.fake.notes", [str(pkg)]) is None
    assert RustainerFinder.find_spec("other.mod", [str(pkg)]) is None  # not ours
    assert RustainerFinder.find_spec("rustainer.fake.mod", None) is None  # a top-level search
    assert RustainerFinder.find_spec("rustainer.fake.mod", [str(pkg), str(tmp_path)]) is None
    assert RustainerFinder.find_spec("rustainer.fake.mod", [str(tmp_path / "gone")]) is None


def test_a_pyc_that_is_not_current_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the suite's own interpreter may run with PYTHONDONTWRITEBYTECODE (CI's does): users' need not
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    pkg = _tree(tmp_path)
    source = pkg / "mod.py"
    loader = RustainerLoader("rustainer.fake.mod", str(source))
    first = loader.get_code("rustainer.fake.mod")  # no .pyc yet: the standard way, which writes it
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert cached.exists()
    assert loader.get_code("rustainer.fake.mod") == first  # read back through the short way
    assert first.co_filename == str(source)
    # the same size and an mtime a few seconds later: the header no longer matches
    source.write_text("VALUE = 2\n")
    later = time.time() + 5
    os.utime(source, (later, later))
    changed = loader.get_code("rustainer.fake.mod")
    namespace: dict[str, object] = {}
    exec(changed, namespace)
    assert namespace["VALUE"] == 2
    cached.write_bytes(b"garbage")  # a damaged .pyc: compiled again from the source
    namespace = {}
    exec(loader.get_code("rustainer.fake.mod"), namespace)
    assert namespace["VALUE"] == 2


def test_no_pyc_is_written_when_python_is_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    source = _tree(tmp_path) / "mod.py"
    namespace: dict[str, object] = {}
    exec(RustainerLoader("rustainer.fake.mod", str(source)).get_code("rustainer.fake.mod"), namespace)
    assert namespace["VALUE"] == 1
    assert not Path(importlib.util.cache_from_source(str(source))).exists()


def test_the_installed_modules_come_out_the_same() -> None:
    """In a fresh interpreter with the finder installed, the modules a start imports have the
    attributes the standard import gives them, and the finder answered for them."""
    code = (
        "import sys, importlib.machinery as m\n"
        "from rustainer.app.fastimport import install, RustainerLoader\n"
        "install()\n"
        "import rustainer.backend.container.launch, rustainer.backend.process.child\n"
        "ours = [n for n in sys.modules if n.startswith('rustainer.backend.')]\n"
        "bad = []\n"
        "for n in ours:\n"
        "    mod = sys.modules[n]\n"
        "    spec = m.PathFinder.find_spec(n, sys.modules[n.rpartition('.')[0]].__path__)\n"
        "    same = (mod.__file__, mod.__cached__, getattr(mod, '__path__', None)) == "
        "(spec.origin, spec.cached, spec.submodule_search_locations)\n"
        "    if not same or not isinstance(mod.__loader__, RustainerLoader):\n"
        "        bad.append(n)\n"
        "print(len(ours), bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(None, 1)
    assert int(out[0]) > 15 and out[1].strip() == "[]", out
