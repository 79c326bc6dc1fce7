"""A shorter way to rustainer's own modules, for the ``rustainer`` script (every container start).

Python looks for each module the same way: every finder on ``sys.meta_path`` in turn (built-in,
frozen, then the path finder, which stats the package's folder to see whether its listing changed and
stats the file it found), then the loader finds, opens, checks and reads the cached bytecode, all
through a few dozen small functions of pure-Python import machinery: 100-150 us a module on the
2-core CI VM before the module's own code runs. A container start imports some 35 of rustainer's
modules (the CLI's before the fork, the container's setup after it), and the restructure into
packages (issue 11) made them more. This finder answers for them from one listing of each of our
folders (kept for the life of the process: ``importlib.invalidate_caches()`` drops it), and its
loader reads a current ``.pyc`` with one stat and one read. The modules come out as the path finder
would make them: the same spec, ``__file__``, ``__cached__``, ``__path__`` and code, from a
``SourceFileLoader`` (a subclass of it).

Only a submodule of a package with a single folder is answered, and only for a ``.py`` file or a
package folder with an ``__init__.py`` in it; anything else (the namespace package ``rustainer``
itself, a name that is not there) is left to the finders after it, which then say what they say.
"""

from __future__ import annotations

# _frozen_importlib_external: the interpreter's own import machinery (importlib._bootstrap_external),
# loaded at its start (``importlib.machinery`` would cost a module load of its own).
import _frozen_importlib_external as _machinery  # type: ignore[import-not-found]
import _imp
import marshal
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from importlib.machinery import ModuleSpec
    from types import CodeType

PREFIX = "rustainer."


class RustainerLoader(_machinery.SourceFileLoader):  # type: ignore[misc]
    """``SourceFileLoader`` with a shorter way to the cached bytecode: one stat of the source, one
    open and read of the ``.pyc`` (the standard way: a dozen small functions and twice the system
    calls). A ``.pyc`` this does not know to be current (missing, older than its source, hash-based,
    another magic number) is left to the standard way, which checks, and rewrites it, as usual."""

    def get_code(self, fullname: str) -> CodeType | None:
        source = self.path
        try:
            st = os.stat(source)
            fd = os.open(_machinery.cache_from_source(source), os.O_RDONLY | os.O_CLOEXEC)
        except (OSError, NotImplementedError):
            return super().get_code(fullname)
        try:
            size = os.fstat(fd).st_size
            data = os.read(fd, size)
        except OSError:
            data = b""
        finally:
            os.close(fd)
        # PEP 552's header: magic number, flags (0: checked by the source's mtime and size), mtime, size
        if (len(data) != size or size < 16 or data[:4] != _machinery.MAGIC_NUMBER or data[4:8] != bytes(4)
                or int.from_bytes(data[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                or int.from_bytes(data[12:16], "little") != st.st_size & 0xFFFFFFFF):
            return super().get_code(fullname)
        code: CodeType = marshal.loads(memoryview(data)[16:])
        _imp._fix_co_filename(code, source)  # type: ignore[attr-defined]
        return code


class RustainerFinder:
    """A ``sys.meta_path`` finder for ``rustainer.*`` modules below its top-level packages."""

    _listings: dict[str, frozenset[str] | None] = {}

    @classmethod
    def find_spec(cls, name: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        if not name.startswith(PREFIX) or path is None or len(path) != 1:
            return None
        folder = path[0]
        if not isinstance(folder, str):
            return None
        tail = name.rpartition(".")[2]
        names = cls._listing(folder)
        if names is None:
            return None
        if tail in names:  # a folder first, as the path finder does
            package = f"{folder}/{tail}"
            inside = cls._listing(package)
            if inside is not None and "__init__.py" in inside:
                location = f"{package}/__init__.py"
                return _machinery.spec_from_file_location(name, location,
                                                          loader=RustainerLoader(name, location),
                                                          submodule_search_locations=[package])
        if tail + ".py" in names:
            location = f"{folder}/{tail}.py"
            return _machinery.spec_from_file_location(name, location,
                                                      loader=RustainerLoader(name, location))
        return None

    @classmethod
    def _listing(cls, folder: str) -> frozenset[str] | None:
        try:
            return cls._listings[folder]
        except KeyError:
            pass
        try:
            names: frozenset[str] | None = frozenset(os.listdir(folder))
        except OSError:
            names = None
        cls._listings[folder] = names
        return names

    @classmethod
    def invalidate_caches(cls) -> None:
        """``importlib.invalidate_caches()``: the folders are listed again."""
        cls._listings.clear()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    import sys

    if RustainerFinder not in sys.meta_path:
        sys.meta_path.insert(0, RustainerFinder)  # type: ignore[arg-type]
