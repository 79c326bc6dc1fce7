"""The shape of the code: lint, types, layer contracts, and the package list behind the wheel.

These run the real tools on the working tree, so CI (which runs only pytest) enforces them too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FOLDERS = {"rustainer.app": "app", "rustainer.widgets": "widgets", "rustainer.backend": "backend"}


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (the test set-up command installs it)")
    return str(path)


def test_ruff_is_clean() -> None:
    proc = subprocess.run([_tool("ruff"), "check", "app", "widgets", "backend", "tests"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_bare_folder_imports() -> None:
    """``import backend`` works from a checkout but not once installed: always use rustainer.*."""
    import re

    bare = re.compile(r"^\s*(from|import)\s+(app|widgets|backend)\b", re.M)
    offenders = [str(p.relative_to(REPO)) for folder in ("app", "widgets", "backend", "tests")
                 for p in (REPO / folder).rglob("*.py") if bare.search(p.read_text())]
    assert offenders == []


def test_import_contracts_hold() -> None:
    proc = subprocess.run([_tool("lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "BROKEN" not in proc.stdout, proc.stdout + proc.stderr


def test_mypy_strict_on_the_packages(tmp_path: Path) -> None:
    # mypy cannot follow setuptools' package-dir mapping of an editable install: give it the same
    # rustainer.* tree through symlinks, so it checks this working tree whatever is installed.
    ns = tmp_path / "rustainer"
    ns.mkdir()
    for pkg, folder in FOLDERS.items():
        (ns / pkg.split(".")[1]).symlink_to(REPO / folder)
    env = dict(os.environ, MYPYPATH=str(tmp_path))
    args = [_tool("mypy"), "--cache-dir", str(tmp_path / "cache")]
    for pkg in FOLDERS:
        args += ["-p", pkg]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                          input="")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def _declared() -> tuple[list[str], dict[str, str]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["packages"], config["package-dir"]


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    packages, package_dir = _declared()
    found = set()
    for pkg, folder in FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    assert found == set(packages)
    for pkg in packages:
        top = ".".join(pkg.split(".")[:2])
        expected = "/".join([FOLDERS[top], *pkg.split(".")[2:]])
        assert package_dir.get(pkg, expected) == expected


def test_backend_never_imports_textual_and_cli_help_stays_lean() -> None:
    code = ("import sys, rustainer.app.cli as c, rustainer.backend.container.launch, rustainer.backend.process.child;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'pyte', 'dataclasses')];"
            "print(bad)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_the_container_start_path_stays_lean() -> None:
    """What ``rustainer run`` imports on its way to a container: none of the modules that would
    cost a fair part of a start (see README's benchmark). Counted are the modules these imports
    add to what the interpreter's start-up loaded (an editable install's finder loads ``re``
    itself; CI's regular install does not)."""
    modules = ("rustainer.app.cli", "rustainer.backend.engine", "rustainer.backend.container.names", "rustainer.backend.container.launch", "rustainer.backend.process.child",
               "rustainer.backend.cgroups.detect", "rustainer.backend.cgroups.v1", "rustainer.backend.process.relay",
               "rustainer.backend.linux.namespaces", "rustainer.backend.util.fsutil", "rustainer.backend.linux.seccomp",
               "rustainer.backend.images.runfile", "rustainer.backend.images.runconfig")
    heavy = ("argparse", "typing", "json", "re", "enum", "dataclasses", "ctypes", "termios", "socket",
             "subprocess", "inspect", "signal", "pickle", "struct", "textual", "rich", "pyte")
    code = (f"import sys; before = set(sys.modules); import {', '.join(modules)}; "
            f"print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {heavy!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout


HEAVY = ("argparse", "typing", "json", "re", "enum", "dataclasses", "ctypes", "termios", "socket",
         "subprocess", "inspect", "pickle", "struct", "hashlib", "shutil", "tempfile", "textual", "rich")


def test_the_image_start_path_stays_lean(tmp_path: Path) -> None:
    """``run --image``: resolving the image by name (its precomputed run file and names index) and
    checking the spec import none of the heavy modules (json and re were a third of a start)."""
    import json

    from rustainer.backend.images.store import ImageRecord, LayerInfo, Store

    store = Store(str(tmp_path)).ensure()
    work = store.tmpdir("layer-")
    os.mkdir(os.path.join(work, "diff"))
    diff_id = "sha256:" + "ab" * 32
    store._install(work, diff_id, 0)
    config = {"config": {"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"], "Env": ["A=b=c", "PATH=/bin"],
                         "WorkingDir": "/w"}, "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    config_id = store.put_blob(json.dumps(config).encode())
    store.add_image(ImageRecord(config_id, config_id, "m", [LayerInfo("sha256:" + "cd" * 32, "t", 1, diff_id)]),
                    ["docker.io/lean/img:1", "docker.io/library/alpine:latest"])
    code = ("import sys; before = set(sys.modules)\n"
            "from rustainer.backend.engine import Engine\n"
            "from rustainer.backend.spec import ContainerSpec\n"
            "from rustainer.backend.container.config import validate\n"
            f"e = Engine({str(tmp_path)!r})\n"
            "for name in ('lean/img:1', 'alpine', 'docker.io/library/alpine'):\n"
            "    s = validate(e.image_spec(ContainerSpec(name='x', command=('true',)), name))\n"
            "    print(s.command, s.env, s.workdir, s.image_name)\n"
            f"print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {HEAVY!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, RUSTAINER_ROOT=str(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "[]"
    assert lines[0] == ("('/bin/sh', '-c', 'true') (('A', 'b=c'), ('PATH', '/bin')) /w docker.io/lean/img:1")
    assert lines[1].endswith(" docker.io/lean/img:1") and lines[1] == lines[2]  # its names sorted: the first
    # the slow path (no run file: a store from before them) gives the same spec
    os.unlink(store.path("records", config_id[7:] + ".run"))
    slow = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, RUSTAINER_ROOT=str(tmp_path)))
    assert slow.stdout.splitlines()[:3] == lines[:3]


@pytest.mark.slow
def test_built_wheel_imports_in_a_clean_venv(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = wheels.glob("rustainer-*.whl")
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    dist = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}"
    assert tops <= {"rustainer", f"{dist}.dist-info", f"{dist}.data"}, tops
    assert sorted(n for n in names if n.startswith(f"{dist}.data/")) == [f"{dist}.data/scripts/rustainer",
                                                                        f"{dist}.data/scripts/rustainer-oci"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    check = ("import rustainer.app.cli, rustainer.backend.container.launch, rustainer.backend.process.child, "
             "rustainer.backend.cgroups.v1, rustainer.backend.cgroups.v2, rustainer.backend.cgroups.systemd, "
             "rustainer.backend.rootfs.apply; import rustainer.app.cli as c; c.parse(['run', '--rm', '--', 'true'])")
    subprocess.run([str(venv / "bin" / "python"), "-c", check], check=True)
    help_out = subprocess.run([str(venv / "bin" / "python"), "-m", "rustainer.app.cli", "--help"],
                              capture_output=True, text=True, check=True).stdout
    assert "usage: rustainer" in help_out
