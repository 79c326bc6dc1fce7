"""cgroup v2 and systemd for real: the engine's limit tests inside two qemu guests.

- ``plain``: a Debian kernel booted with cgroup2 only and a small init (no systemd): the cgroupfs
  v2 driver, detected automatically.
- ``systemd``: the same image with systemd as PID 1; the tests run from a plain oneshot service
  (not delegated): the systemd driver, detected automatically, and the v2 driver both beneath a
  delegated unit (``--cgroup-parent``) and beside the service.

Inside, pytest runs ``GUEST_TESTS`` from this tree (shared read-only over 9p with the venv) with
``RUSTAINER_VM_GUEST`` set; the guest's pytest output, its log and serial console are shown when it
fails. Run by ``.ci/run`` as a second pytest invocation (the host suite does not collect this
folder: see ``norecursedirs``). ``RUSTAINER_SKIP_VM=1`` skips them on a developer's machine; with
``CI=true`` they never skip. See vmimage.py for the image and the cache.
"""

from __future__ import annotations

import os
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import vmimage

GUEST_TESTS = ["tests/integration/test_cgroup_drivers.py", "tests/integration/test_oci_runtime.py",
               "tests/integration/test_oci_containerd.py"]


def _ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="module")
def artefacts() -> vmimage.Artefacts:
    if os.environ.get("RUSTAINER_SKIP_VM") and not _ci():
        pytest.skip("RUSTAINER_SKIP_VM is set (CI=true never skips the VM tests)")
    if os.geteuid() != 0:
        pytest.fail("the VM tests need root (debootstrap, mke2fs -d with owners)")
    missing = vmimage.missing_tools()
    if missing:
        pytest.fail(f"missing tools for the VM tests: {', '.join(missing)} (bash .ci/setup --test installs them)")
    return vmimage.build()


def _summary(junit: Path) -> str:
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return "no JUnit report"
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return "no JUnit report"
    failed = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
              if case.find("failure") is not None or case.find("error") is not None]
    head = ", ".join(f"{k} {suite.get(k)}" for k in ("tests", "failures", "errors", "skipped"))
    return head + ("\nfailed: " + "\n  ".join(failed) if failed else "")


VARIANTS = ["plain", "systemd"]


@pytest.fixture(scope="module")
def guest_runs(artefacts: vmimage.Artefacts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        dict[str, Future[vmimage.GuestRun]]]:
    """Both guests boot at once (each test waits for its own): most of a guest's time is its own
    boot and Python start-up under TCG, so two overlap well on two cores. RUSTAINER_VM_PARALLEL=0
    boots them one after the other."""
    selection = shlex.split(os.environ.get("RUSTAINER_VM_TESTS", "")) or GUEST_TESTS
    timeout = float(os.environ.get("RUSTAINER_VM_TIMEOUT", "1500"))
    workers = 1 if os.environ.get("RUSTAINER_VM_PARALLEL") == "0" else len(VARIANTS)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        yield {v: pool.submit(vmimage.boot, v, artefacts, tmp_path_factory.mktemp(f"vm-{v}"), selection,
                              timeout=timeout) for v in VARIANTS}


@pytest.mark.timeout(3600)  # the guests have their own deadline (RUSTAINER_VM_TIMEOUT)
@pytest.mark.parametrize("variant", VARIANTS)
def test_guest(variant: str, guest_runs: dict[str, Future[vmimage.GuestRun]]) -> None:
    run = guest_runs[variant].result()
    print(f"{variant} guest: {run.seconds:.0f}s, {_summary(run.results / 'junit.xml')}")
    print(run.text("guest.log"))
    if run.exit_code != 0:
        pytest.fail(f"{variant} guest: {_summary(run.results / 'junit.xml')}\n{run.report()}", pytrace=False)
