"""Modal dialogs: a new container, and "are you sure" before removing one.

Every field of the new-container dialog is checked with the engine's own parsers (the ones the CLI
uses), so what the dialog accepts the CLI accepts, and the message under a field is the CLI's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from rustainer.backend import spec as S
from rustainer.backend.errors import RustainerError


@dataclass(frozen=True)
class NewContainer:
    """The new-container dialog's answer: already validated strings, ``None`` for "not given"."""

    name: str
    image: str | None = None  # a local image's name: started as ``run --image`` (see ``start_spec``)
    rootfs: str | None = None
    directory: str | None = None
    cpus: str | None = None
    memory: str | None = None
    cpu_quota: str | None = None
    pids_limit: str | None = None
    network: str | None = None

    def spec(self, ncpus: int | None = None) -> S.ContainerSpec:
        """The spec ``rustainer run --detach`` would build from the same options (the engine's own
        parser); raises InvalidSpecError for a value that is not valid after all."""
        return S.spec_from_options(name=self.name, rootfs=self.rootfs, directory=self.directory, cpus=self.cpus,
                                   memory=self.memory, cpu_quota=self.cpu_quota, pids_limit=self.pids_limit,
                                   network=self.network, tty=True, ncpus=ncpus)

    def start_spec(self, image_spec: Callable[[S.ContainerSpec, str], S.ContainerSpec],
                   ncpus: int | None = None) -> S.ContainerSpec:
        """The spec ``rustainer run --detach [--image IMAGE]`` would start: :meth:`spec`, then, with an
        image, ``image_spec`` (the engine's, as the CLI's ``--image``: the image's layers, Entrypoint,
        Cmd, Env, WorkingDir and User)."""
        spec = self.spec(ncpus)
        S.check_one_root(self.image, self.rootfs)
        return image_spec(spec, self.image) if self.image else spec

# field id, label, placeholder
FIELDS = (
    ("name", "Name", "letters, digits, _ . -"),
    ("image", "Image", "none (or a local image)"),
    ("rootfs", "Rootfs", "host view (or a folder)"),
    ("directory", "Directory", "none (or a host folder)"),
    ("cpus", "CPUs", "all (e.g. 0 or 0-1)"),
    ("memory", "Memory", "unlimited (e.g. 256M)"),
    ("cpu_quota", "CPU quota", "none (e.g. 0.5)"),
    ("pids_limit", "Pids limit", "none (e.g. 100)"),
    ("network", "Network", "none (or host, bridge, a network's name)"),
)


def check_field(field: str, raw: str, *, available_cpus: tuple[int, ...],
                name_taken: Callable[[str], bool], networks: tuple[str, ...] = ("bridge",),
                images: tuple[str, ...] = (), rootfs: str = "") -> str | None:
    """The error message for one field's text, or None when it is acceptable (blank = default).
    The image is checked against the local ``images`` and, as the CLI does, against the ``rootfs``
    field's text: one of them names the root."""
    text = raw.strip()
    try:
        if field == "name":
            S.validate_name(text)
            if name_taken(text):
                return f"the name {text!r} is already in use"
        elif not text:
            return None
        elif field == "image":
            if text not in images:
                return f"no local image {text!r}: pull or import it first"
            S.check_one_root(text, rootfs.strip() or None)
        elif field == "rootfs":
            if not os.path.isdir(text):
                return f"{text}: not a folder"
        elif field == "directory":
            if os.path.exists(text) and not os.path.isdir(text):
                return f"{text}: exists and is not a folder"
        elif field == "cpus":
            S.check_cpus_available(S.parse_cpus(text), available_cpus)
        elif field == "memory":
            S.parse_memory_limit(text)
        elif field == "cpu_quota":
            S.parse_cpu_quota(text, len(available_cpus))
        elif field == "pids_limit":
            S.parse_pids_limit(text)
        elif field == "network":
            if text not in ("none", "host", *networks):
                return f"unknown network {text!r}: use none, host, bridge or one made with 'rustainer network create'"
    except RustainerError as err:
        return str(err)
    return None


class NewContainerDialog(ModalScreen[NewContainer | None]):
    """Dismissed with a :class:`NewContainer` (all fields valid) or None (cancelled)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, *, available_cpus: tuple[int, ...], name_taken: Callable[[str], bool],
                 suggested_name: str = "", networks: tuple[str, ...] = ("bridge",),
                 images: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.available_cpus = available_cpus
        self.name_taken = name_taken
        self.suggested_name = suggested_name
        self.networks = networks
        self.images = images

    def compose(self) -> ComposeResult:
        with Vertical(id="new-dialog", classes="dialog"):
            yield Label("New container", classes="dialog-title")
            with VerticalScroll(classes="dialog-fields"):
                for field, label, placeholder in FIELDS:
                    with Horizontal(classes="field"):
                        yield Label(label, classes="field-label")
                        if field == "image":
                            prompt = placeholder if self.images else "none (no local images)"
                            yield Select([(image, image) for image in self.images], prompt=prompt,
                                         id="field-image", compact=True)
                        else:
                            yield Input(self.suggested_name if field == "name" else "", placeholder=placeholder,
                                        id=f"field-{field}", compact=True)
                    yield Static("", id=f"error-{field}", classes="field-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create", variant="primary", id="create", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#field-name", Input).focus()

    def _text(self, field: str) -> str:
        """A field's text: an Input's value, the image Select's choice ("" for none)."""
        if field == "image":
            choice = self.query_one("#field-image", Select).value
            return choice if isinstance(choice, str) else ""
        return self.query_one(f"#field-{field}", Input).value

    def _check(self, field: str) -> bool:
        error = check_field(field, self._text(field), available_cpus=self.available_cpus, name_taken=self.name_taken,
                            networks=self.networks, images=self.images, rootfs=self._text("rootfs"))
        message = self.query_one(f"#error-{field}", Static)
        message.update(error or "")
        message.set_class(error is not None, "shown")
        return error is None

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        if event.input.id and event.input.id.startswith("field-"):
            self._check(event.input.id.removeprefix("field-"))
            if event.input.id == "field-rootfs":
                self._check("image")  # the two name the root: one at most

    @on(Select.Changed, "#field-image")
    def _image_changed(self) -> None:
        self._check("image")

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self._create()

    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        results = [self._check(field) for field, _label, _ph in FIELDS]
        if not all(results):
            return

        def value(field: str) -> str | None:
            return self._text(field).strip() or None

        rootfs, directory = value("rootfs"), value("directory")
        self.dismiss(NewContainer(
            name=value("name") or "", image=value("image"), rootfs=os.path.abspath(rootfs) if rootfs else None,
            directory=os.path.abspath(directory) if directory else None, cpus=value("cpus"),
            memory=value("memory"), cpu_quota=value("cpu_quota"), pids_limit=value("pids_limit"),
            network=value("network")))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; Enter or y confirms, Escape or n declines."""

    BINDINGS = [Binding("escape,n", "answer(False)", "No"), Binding("y", "answer(True)", "Yes")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm-dialog"):
            yield Label(self.question, classes="dialog-question")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Remove", variant="error", id="yes", compact=True)
                yield Button("Cancel", id="no", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
