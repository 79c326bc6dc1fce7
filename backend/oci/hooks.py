"""The spec's hooks: each a program run with the container's state JSON on its stdin.

A hook that fails (non-zero, or past its ``timeout``) fails the operation that ran it (create,
start), except ``poststart`` and ``poststop``, whose failures are only warnings (the spec's rules).
"""

from __future__ import annotations

from rustainer.backend.errors import RustainerError
from rustainer.backend.oci.config import Hook


def run_hooks(hooks: tuple[Hook, ...], state: dict[str, object]) -> None:
    if not hooks:
        return
    import subprocess

    from rustainer.backend.util.jsonfile import dumps

    payload = "".join(line.strip() for line in dumps(state).splitlines()).encode()  # one line, as runc's
    for hook in hooks:
        env = dict(item.partition("=")[::2] for item in hook.env)
        try:
            proc = subprocess.run([hook.path, *hook.args[1:]] if hook.args else [hook.path], input=payload,
                                  env=env, capture_output=True, timeout=hook.timeout, executable=hook.path)
        except subprocess.TimeoutExpired:
            raise RustainerError(f"hook {hook.path} did not finish within {hook.timeout}s") from None
        except OSError as err:
            raise RustainerError(f"hook {hook.path} could not run: {err.strerror}") from err
        if proc.returncode != 0:
            detail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise RustainerError(f"hook {hook.path} failed with status {proc.returncode}: {detail[0]}")


def stored_hooks(data: dict[str, object], kind: str) -> tuple[Hook, ...]:
    """A container's hooks of one kind, from its state (the bundle may be gone by then)."""
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        return ()
    return tuple(Hook(str(h[0]), tuple(h[1]), tuple(h[2]), h[3]) for h in hooks.get(kind, []))
