"""The engine: the one facade both front ends (the CLI and the dashboard) call.

Every operation on containers and networks is a method here, taking plain values or a spec and
returning records (``ContainerState``) or JSON-ready documents (``inspect``, ``stats``, networks),
and raising ``RustainerError`` subclasses (``backend.errors``) whose message is one line a user can
act on. Nothing here prints; what a front end shows is its own business.

Importing this module costs nothing on the CLI's start path: every method imports what it needs
when it is called (a ``rustainer run`` must not pay for ``stats`` or the network code).

Thread safety: the dashboard calls the engine from worker threads. Starting a detached container
then goes through the state root's launcher (the zygote), which forks the supervisor; the engine
never forks a process that runs other threads (``fork_fallback=False``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO, TextIO, TypeVar

    from rustainer.backend.container.lifecycle import Counters
    from rustainer.backend.container.state import ContainerState, StateStore
    from rustainer.backend.images.store import ImageRecord
    from rustainer.backend.images.store import Store as ImageStore
    from rustainer.backend.spec import ContainerSpec

    T = TypeVar("T")


class Engine:
    """Containers and networks under one state root (``$RUSTAINER_ROOT`` or /var/lib/rustainer)."""

    def __init__(self, root: str | None = None) -> None:
        if root is None:
            from rustainer.backend.util.paths import state_root

            root = state_root()
        self.root = root
        self._store: StateStore | None = None

    @property
    def store(self) -> StateStore:
        if self._store is None:
            from rustainer.backend.container.state import StateStore

            self._store = StateStore(self.root)
        return self._store

    # -- queries ----------------------------------------------------------------------------------
    def containers(self, *, all: bool = True) -> list[ContainerState]:
        """Every container (or only the running ones), reconciled like ``ps`` (no running ghosts),
        oldest first. One unreadable entry never hides the others: one that cannot be reconciled
        (releasing what a dead one held failed) is listed as recorded."""
        from rustainer.backend.container.cleanup import reconcile
        from rustainer.backend.container.state import RUNNING
        from rustainer.backend.errors import ContainerNotFoundError, RustainerError

        states = []
        for state in self.store.list():
            try:
                states.append(reconcile(self.store, state))
            except ContainerNotFoundError:
                continue  # an abandoned start, or a lost --rm container: removed now
            except RustainerError:
                states.append(state)
        states.sort(key=lambda s: s.created_at)
        return [s for s in states if all or s.status == RUNNING]

    def get(self, ref: str) -> ContainerState:
        """One container by name, id or id prefix, reconciled."""
        from rustainer.backend.container.cleanup import reconcile

        return reconcile(self.store, self.store.find(ref))

    def exists(self, name: str) -> bool:
        from rustainer.backend.errors import ContainerNotFoundError

        try:
            self.store.find(name)
        except ContainerNotFoundError:
            return False
        return True

    def inspect(self, ref: str) -> dict[str, Any]:
        from rustainer.backend.container.lifecycle import inspect

        return inspect(self.store, ref)

    def stats(self, refs: list[str] | None = None, interval: float = 1.0) -> list[dict[str, Any]]:
        """CPU %, memory and pids of running containers, sampled over ``interval`` seconds."""
        from rustainer.backend.container.lifecycle import sample_stats

        return sample_stats(self.store, refs, interval)

    def counters(self, state: ContainerState) -> Counters | None:
        """One reading of a running container's cgroup counters and enforced limits (a front end
        that polls computes rates from two readings); None when it has no cgroup (any more)."""
        from rustainer.backend.container.lifecycle import read_counters

        return read_counters(state)

    def top(self, ref: str) -> list[dict[str, Any]]:
        from rustainer.backend.container.lifecycle import top

        return top(self.store, ref)

    def running(self, ref: str, verb: str = "act on") -> ContainerState:
        """The container, if it runs; else ContainerStateError ("cannot {verb} ... : not running")."""
        from rustainer.backend.container.lifecycle import require_running

        return require_running(self.store, ref, verb)

    def alive(self, state: ContainerState) -> bool:
        """Whether the container is really running (its PID 1 in its cgroup, same boot)."""
        from rustainer.backend.container.liveness import is_alive

        return is_alive(state)

    def owner_alive(self, state: ContainerState) -> bool:
        """Whether the supervisor (or foreground CLI) that records the container's end still runs."""
        from rustainer.backend.container.liveness import owner_alive

        return owner_alive(state)

    def available_cpus(self) -> tuple[int, ...]:
        """The CPUs a container may be given here (a cpuset is a subset of them)."""
        from rustainer.backend.container.config import available_cpus

        return available_cpus()

    def suggest_name(self) -> str:
        """A generated name (adjective_noun_N) for a front end to offer; not reserved."""
        from rustainer.backend.container.names import generate_name

        return generate_name()

    def socket_path(self, cid: str) -> str:
        """The attach socket of a detached container's supervisor (``attach`` speaks to it)."""
        return self.store.socket_path(cid)

    # -- logs -------------------------------------------------------------------------------------
    def log_path(self, ref: str) -> str:
        """The container's log file; refused for a foreground run (its output was never logged)."""
        from rustainer.backend.container.logs import require_log

        state = self.get(ref)
        require_log(state)
        return self.store.log_path(state.id)

    def logs(self, ref: str, tail: int | None = None) -> bytes:
        """The recorded output (rotated copies first), or its last ``tail`` lines."""
        from rustainer.backend.container.logs import tail_bytes

        return tail_bytes(self.log_path(ref), tail)

    def follow_logs(self, ref: str, out: BinaryIO) -> None:
        """Write new output to ``out`` as it comes, until the container ends."""
        from rustainer.backend.container.logs import follow

        self.log_path(ref)
        follow(self.store, self.get(ref), out)

    # -- recording (asciicast v2, supervisor/recording.py) ----------------------------------------
    def record(self, ref: str, on: bool = True) -> str:
        """Start (``on``) or stop recording a detached container's session; -> the recording's path
        (``containers/<id>/recording.cast``; a new recording replaces the last one)."""
        from rustainer.backend.container.config import require_root
        from rustainer.backend.supervisor.recording import request

        require_root()
        return request(self.store, self.running(ref, "record" if on else "stop recording"), on)

    def recording_path(self, ref: str) -> str:
        """The container's last recording (under way or stopped); ContainerStateError if none."""
        import os

        from rustainer.backend.errors import ContainerStateError
        from rustainer.backend.supervisor.recording import recording_path

        state = self.get(ref)
        path = recording_path(self.store, state.id)
        if not os.path.exists(path):
            raise ContainerStateError(f"{state.name} has no recording: start one with 'rustainer record start "
                                      f"{state.name}' (or R in the dashboard)", container=state.name)
        return path

    def export_recording(self, ref: str, out: BinaryIO) -> None:
        """Copy the container's last recording (what is recorded so far, if under way) to ``out``."""
        with open(self.recording_path(ref), "rb") as f:
            while chunk := f.read(1 << 20):
                out.write(chunk)

    # -- exec -------------------------------------------------------------------------------------
    def find_shell(self, ref: str) -> str | None:
        """The path of a shell inside a running container (bash, else sh), or None if it has none."""
        from rustainer.backend.container.shell import find_shell

        state = self.running(ref, "exec in")
        assert state.pid is not None
        return find_shell(state.pid)

    def attach(self, ref: str, detach_keys: str | None = None) -> int:
        """Attach this process's terminal to a detached container until detached or ended; the exit
        code (the container's, or 0 on detach)."""
        from rustainer.backend.container.config import require_root
        from rustainer.backend.supervisor.client import DEFAULT_DETACH_KEYS, attach, parse_detach_keys

        require_root()
        keys = parse_detach_keys(detach_keys or DEFAULT_DETACH_KEYS)
        return attach(self.store, self.get(ref), keys)

    # -- lifecycle --------------------------------------------------------------------------------
    def run(self, spec: ContainerSpec, *,
            on_started: Callable[[ContainerState], None] | None = None) -> tuple[int, ContainerState]:
        """Run in the foreground, attached to this process's stdio; returns (exit code, final state).
        A spec without a name gets a generated one."""
        from rustainer.backend.container.launch import run_foreground

        return self._named(spec, lambda s: run_foreground(s, self.store, on_started=on_started))

    def start_detached(self, spec: ContainerSpec, *, fork_fallback: bool = True) -> ContainerState:
        """Start in the background under its own supervisor; returns once it runs. Without
        ``fork_fallback`` (a caller with threads) a missing launcher is an error, not a fork."""
        from rustainer.backend.supervisor.spawn import run_detached

        return self._named(spec, lambda s: run_detached(s, self.store, fork_fallback=fork_fallback))

    def restart(self, ref: str, *, force: bool = False, fork_fallback: bool = True) -> ContainerState:
        """An ended container started again from its spec, with a new id (``docker restart`` of an
        exited container): the old record is removed first, so the name is free. ``force``: a
        running one is killed and removed first (``rm -f``) instead of refused."""
        from rustainer.backend.errors import ContainerStateError

        state = self.get(ref)
        if state.status == "running" and not force:
            raise ContainerStateError(f"container {state.name} is running: stop it first", container=state.name)
        self.remove(state.id, force=force)
        return self.start_detached(state.spec, fork_fallback=fork_fallback)

    def stop(self, ref: str, timeout: float | None = None) -> ContainerState | None:
        """SIGTERM, then SIGKILL to every process after ``timeout`` seconds (default 10, docker's);
        None if ``--rm`` removed it."""
        from rustainer.backend.container.lifecycle import DEFAULT_STOP_TIMEOUT, stop

        return stop(self.store, ref, DEFAULT_STOP_TIMEOUT if timeout is None else timeout)

    def kill(self, ref: str, signal: int | str = 9) -> ContainerState:
        from rustainer.backend.container.lifecycle import kill, parse_signal

        return kill(self.store, ref, parse_signal(signal) if isinstance(signal, str) else signal)

    def remove(self, ref: str, *, force: bool = False) -> None:
        from rustainer.backend.container.lifecycle import remove

        remove(self.store, ref, force=force)

    def exec(self, ref: str, argv: list[str], *, interactive: bool = False, tty: bool = False,
             workdir: str | None = None, env: tuple[tuple[str, str], ...] = ()) -> int:
        """Run a command in a running container, attached to this process's stdio; its exit code."""
        from rustainer.backend.container.exec import exec_in

        return exec_in(self.store, ref, argv, interactive=interactive, tty=tty, workdir=workdir, env=env)

    def update(self, ref: str, *, memory: str | None = None, cpus: str | None = None,
               cpu_quota: str | None = None, pids_limit: str | None = None) -> ContainerState:
        from rustainer.backend.container.lifecycle import update

        return update(self.store, ref, memory=memory, cpus=cpus, cpu_quota=cpu_quota, pids_limit=pids_limit)

    # -- networks ---------------------------------------------------------------------------------
    def networks(self) -> list[dict[str, Any]]:
        from rustainer.backend.container import networks

        return networks.list_networks(self.root)

    def network_names(self) -> list[str]:
        """Names of the networks made here (no reconciling: cheap enough for a dialog)."""
        from rustainer.backend.network.store import NetworkStore

        return list(NetworkStore(self.root).names())

    def create_network(self, name: str, subnet: str | None = None) -> dict[str, Any]:
        from rustainer.backend.container import networks

        return networks.create(self.root, name, subnet)

    def remove_network(self, name: str) -> None:
        from rustainer.backend.container import networks

        networks.remove(self.root, name)

    def inspect_network(self, name: str) -> dict[str, Any]:
        from rustainer.backend.container import networks

        return networks.inspect(self.root, name)

    # -- images -----------------------------------------------------------------------------------
    @property
    def image_store(self) -> ImageStore:
        from rustainer.backend.images.store import Store

        return Store(self.root)

    def images_in_use(self) -> dict[str, str]:
        """Image id -> the name of a container (of any state) made from it: such images stay."""
        return {s.spec.image: s.name for s in self.store.list() if s.spec.image}

    def pull(self, ref: str, *, platform: str | None = None, insecure: bool = False,
             progress: TextIO | None = None) -> ImageRecord:
        from rustainer.backend.images.auth import credentials_for
        from rustainer.backend.images.pull import pull
        from rustainer.backend.images.reference import parse_reference

        parsed = parse_reference(ref)
        return pull(self.image_store, parsed, platform=platform, insecure=insecure,
                    credentials=credentials_for(parsed.domain, self.root), progress_out=progress)

    def push(self, image: str, ref: str, *, insecure: bool = False) -> str:
        """Push a local image to ``ref``; -> the manifest digest the registry holds."""
        from rustainer.backend.images.auth import credentials_for
        from rustainer.backend.images.push import push
        from rustainer.backend.images.reference import parse_reference

        parsed = parse_reference(ref)
        store = self.image_store
        return push(store, store.resolve(image), parsed, insecure=insecure,
                    credentials=credentials_for(parsed.domain, self.root))

    def login(self, host: str, user: str, password: str, *, insecure: bool = False) -> str:
        """Check the credentials against the registry, then keep them (root-only file); -> its path."""
        from rustainer.backend.images.auth import save
        from rustainer.backend.images.reference import parse_reference
        from rustainer.backend.images.registry import Registry

        ref = parse_reference(f"{host}/x")
        Registry(ref.api_host, insecure=insecure, credentials=(user, password)).ping()
        return save(ref.domain, user, password, self.root)

    def images(self) -> list[ImageRecord]:
        return self.image_store.images()

    def image_names(self) -> list[str]:
        """Every local image's names (``alpine:3.20``), sorted; an unnamed image has none."""
        return sorted({name for image in self.image_store.images() for name in image.names})

    def image(self, ref: str) -> ImageRecord:
        return self.image_store.resolve(ref)

    def inspect_image(self, ref: str) -> dict[str, Any]:
        store = self.image_store
        image = store.resolve(ref)
        config = store.config(image)
        return {"Id": image.id, "RepoTags": list(image.names), "Manifest": image.manifest,
                "ManifestMediaType": image.manifest_media_type, "Created": image.created,
                "Platform": image.platform, "Size": store.disk_usage(image),
                "Config": config.get("config") or {}, "RootFS": config.get("rootfs") or {},
                "Layers": [layer.to_json() for layer in image.layers]}

    def remove_images(self, refs: list[str]) -> list[str]:
        store = self.image_store
        out: list[str] = []
        for ref in refs:
            out += store.remove(ref, self.images_in_use)
        return out

    def prune_images(self, *, all: bool = False) -> list[str]:
        return self.image_store.prune(self.images_in_use, all=all)

    def import_image(self, path: str, name: str | None = None, platform: str | None = None) -> list[ImageRecord]:
        from rustainer.backend.images.archive import import_image
        from rustainer.backend.images.pull import host_platform

        return import_image(self.image_store, path, name, platform or host_platform())

    def export_image(self, ref: str, path: str) -> None:
        from rustainer.backend.images.archive import export_image

        store = self.image_store
        image = store.resolve(ref)
        name = ref if image.names and not ref.startswith("sha256:") and ref not in image.id else None
        if name is None and image.names:
            name = image.names[0]
        export_image(store, image, path, name)

    def commit(self, ref: str, name: str) -> ImageRecord:
        """A running container's changes as one new layer on top of its image (a rootfs-folder
        container: the folder as a first layer, then the changes); -> the new image, named ``name``.

        The writable layer lives in the container's memory: an exited container's is gone, so only
        a running one can be committed. The image's config is the base image's (a rootfs folder's:
        PATH and ``/bin/sh``), with the new layer and a history entry added; the container is not
        paused (what it writes during the commit may or may not be in the layer).
        """
        import os

        from rustainer.backend.container.config import require_root
        from rustainer.backend.errors import ImageError
        from rustainer.backend.images.commit import commit
        from rustainer.backend.images.reference import parse_reference
        from rustainer.backend.rootfs.layer import open_upper

        require_root()
        parse_reference(name)  # a malformed name is refused before anything is done
        state = self.get(ref)
        spec = state.spec
        if not spec.layers and spec.rootfs is None:
            raise ImageError(f"container {state.name} runs in the host view, which is not an image: only a "
                             "container started with --image or --rootfs can be committed")
        state = self.running(state.id, "commit")
        assert state.pid is not None
        store = self.image_store
        base = None
        if spec.image is not None:
            base = store.get(spec.image)
        # A bridged container's /etc/hosts is a read-only mount of ours (its empty mount point in the
        # writable layer is not a change the container made).
        skip = frozenset() if spec.network in ("none", "host") else frozenset({"etc/hosts"})
        upper = open_upper(state.pid)
        try:
            return commit(store, upper_fd=upper, name=name, base=base,
                          rootfs=os.path.realpath(spec.rootfs) if spec.rootfs else None,
                          container=state.name, skip=skip)
        finally:
            os.close(upper)

    def image_spec(self, spec: ContainerSpec, image_ref: str, *, workdir: str | None = None,
                   user: str | None = None) -> ContainerSpec:
        """``spec`` made to run the image: its layers, and its config's Entrypoint, Cmd, Env,
        WorkingDir and User applied as docker does (see images/runconfig.py)."""
        import os

        from rustainer.backend.images.runconfig import run_settings
        from rustainer.backend.images.runfile import config_of, images_root, lookup
        from rustainer.backend.util.record import replace

        # The start path: the image's precomputed run file, read without json or re; the store's
        # records (and their error messages) when there is none or the name is not found that way.
        found = lookup(self.root, image_ref)
        if found is not None:
            fields, names = found
            image_id, layers, config = fields["id"][0], tuple(fields["layers"]), config_of(fields)
            image_name = names[0] if names else image_id[7:19]
            store_root = images_root(self.root)
        else:
            store = self.image_store
            image = store.resolve(image_ref)
            image_id, layers, config = image.id, tuple(store.lower_dirs(image)), store.config(image)
            image_name = image.names[0] if image.names else image.short_id
            store_root = store.root
        dirs = [os.path.realpath(os.path.join(store_root, layer)) for layer in layers]  # our own links
        settings = run_settings(config, command=spec.command, env=spec.env, workdir=workdir,
                                user=user, layer_dirs=dirs)
        return replace(spec, image=image_id, image_name=image_name,
                       layers=layers, command=settings["command"], env=settings["env"],
                       workdir=settings["workdir"], user=settings["user"])

    # -- helpers ----------------------------------------------------------------------------------
    def _named(self, spec: ContainerSpec, start: Callable[[ContainerSpec], T]) -> T:
        """``start(spec)``; a generated name that turns out to be taken is drawn again, a given one
        is not."""
        from rustainer.backend.container.config import require_root

        require_root()
        if spec.name:
            return start(spec)
        from rustainer.backend.container.names import generate_name
        from rustainer.backend.errors import NameInUseError
        from rustainer.backend.util.record import replace

        for attempt in range(5):
            try:
                return start(replace(spec, name=generate_name()))
            except NameInUseError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")
