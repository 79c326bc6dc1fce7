"""Errors a user can act on.

Every failure the engine expects is a RustainerError whose message is one line a person can act on;
the CLI turns it into ``rustainer: <message>`` on stderr and exit code 125 (docker's convention for
an engine error). OSErrors are translated at the place that knows what was being attempted, with
``raise ... from err`` so the cause stays visible in tracebacks during development.
"""

from __future__ import annotations


class RustainerError(Exception):
    """Base class: the message is shown to the user as it is."""

    exit_code = 125


class InvalidSpecError(RustainerError):
    """A malformed option or value (sizes, CPU lists, names, paths)."""


class NotRootError(RustainerError):
    """The engine needs root for namespaces, mounts and cgroups."""


class ContainerNotFoundError(RustainerError):
    """No container with that name or id under RUSTAINER_ROOT."""


class NameInUseError(RustainerError):
    """Another container already holds that name."""


class CgroupError(RustainerError):
    """Creating, configuring or removing a cgroup failed."""


class RootfsError(RustainerError):
    """Preparing the container's root filesystem failed or was refused."""


class ContainerStateError(RustainerError):
    """The container is in the wrong state for the request (e.g. attach to a stopped one)."""
