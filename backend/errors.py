"""Every error the engine raises on purpose, in one hierarchy.

Each is a RustainerError whose message is one line a person can act on; the CLI turns it into
``rustainer: <message>`` on stderr and its ``exit_code`` (125, docker's convention for an engine
error, unless the error says otherwise), and the dashboard shows the same line. Besides the message,
an error carries what a caller may need to act on it without parsing text: the container it is
about, the path and the errno of the failed system call. OSErrors are translated at the place that
knows what was being attempted, with ``raise ... from err`` so the cause stays visible.
"""

from __future__ import annotations


class RustainerError(Exception):
    """Base class: the message is shown to the user as it is."""

    exit_code = 125

    def __init__(self, message: str = "", *, container: str | None = None, path: str | None = None,
                 errno: int | None = None, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.container = container
        self.path = path
        self.errno = errno
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self)


class InvalidSpecError(RustainerError):
    """A malformed option or value (sizes, CPU lists, names, paths)."""


class NotRootError(RustainerError):
    """The engine needs root for namespaces, mounts and cgroups."""


class ContainerNotFoundError(RustainerError):
    """No container with that name or id under RUSTAINER_ROOT."""


class NameInUseError(RustainerError):
    """Another container already holds that name."""


class DamagedStateError(RustainerError):
    """A container's state file cannot be read or parsed; the container is listed as damaged and can
    still be removed."""


class StateWriteError(RustainerError):
    """The state root refused a write (full, read-only, gone): nothing of the request is left."""


class ContainerStateError(RustainerError):
    """The container is in the wrong state for the request (e.g. attach to a stopped one)."""


class CgroupError(RustainerError):
    """Creating, configuring or removing a cgroup failed."""


class RootfsError(RustainerError):
    """Preparing the container's root filesystem failed or was refused."""


class NetworkError(RustainerError):
    """A network request that cannot be carried out (unknown network, overlap, pool exhausted...)."""


class PortInUseError(NetworkError):
    """A published host port is already bound by someone else."""


class CommandFailed(RustainerError):
    """A container's (or an exec'd) command never ran: its setup failed (125), the file is not
    executable (126) or not found (127), docker's conventions. ``status`` is the wait status of the
    process that reported it, when one was reaped."""

    def __init__(self, exit_code: int, message: str, status: int = 0, *, container: str | None = None) -> None:
        super().__init__(message, exit_code=exit_code, container=container)
        self.status = status


class Interrupted(RustainerError):
    """The CLI was told to stop (SIGINT, SIGHUP, SIGTERM) while a container or an exec'd process ran;
    that was ended and cleaned up too. The exit code is the shell's 128 + N."""

    def __init__(self, signum: int, what: str = "the container was stopped and cleaned up") -> None:
        super().__init__(f"stopped by signal {signum}; {what}", exit_code=128 + signum)
        self.signum = signum


class ProtocolError(RustainerError):
    """A frame on a supervisor's socket that breaks the protocol (unknown kind, bad length or
    payload); the connection that sent it is dropped, never the supervisor."""


class ZygoteUnavailable(RustainerError):
    """The root's supervisor launcher could not be reached or started; the caller falls back to
    forking the supervisor itself."""


class InjectedFault(RustainerError):
    """A failure the test suite asked for (``RUSTAINER_FAULT=step``, see ``util.rollback``)."""


class ImageError(RustainerError):
    """An image operation failed: a store, archive or registry problem the user can act on."""


class ImageNotFoundError(ImageError):
    """No image with that name, tag or id in the local store."""


class InvalidReferenceError(ImageError):
    """An image reference (``alpine:3.20``, ``host:5000/ns/name@sha256:...``) that does not parse."""


class RegistryError(ImageError):
    """A registry was unreachable, refused the request, or sent something that failed verification."""


class LayerError(ImageError):
    """A layer tarball was refused (hostile entries, too large, corrupt) or failed its digest."""


class ImageInUseError(ImageError):
    """The image (or a layer of it) is used by a container or another image."""
