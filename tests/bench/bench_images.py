"""Images benchmark (by hand, as root): ``python tests/bench/bench_images.py [--runs N] [--containers N]``.

1. pull + unpack of a multi-layer image from a local docker-registry: ``rustainer pull`` against
   ``skopeo copy`` + ``umoci unpack`` of the same image, same run (medians);
2. start latency: ``run --rm --image IMG -- true`` against ``run --rm --rootfs DIR -- true`` (goal:
   within 1.1x);
3. disk: what N containers of one image add to the store (nothing: layers are shared, each
   container's writable layer is a tmpfs in its own mount namespace).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imagetools import Layout, RegistryServer, skopeo_push, tar_of  # noqa: E402

CLI = [sys.executable, "-m", "rustainer.app.cli"]


def busybox_tree(root: Path) -> Path:
    busybox = shutil.which("busybox")
    assert busybox, "busybox-static is needed"
    for d in ("bin", "etc", "tmp", "root", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin/busybox")
    for applet in subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split():
        if not (root / "bin" / applet).exists():
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    return root


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"{argv}: {done.stderr.decode(errors='replace')[-500:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--layers", type=int, default=8)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp_str:
        tmp = Path(tmp_str)
        rootfs = busybox_tree(tmp / "rootfs")
        reg = RegistryServer(tmp / "registry")
        try:
            layout = Layout(tmp / "layout")
            layers = [tar_of(tree=rootfs)] + [tar_of([(f"data{i}", os.urandom(4 << 20))]) for i in range(opts.layers - 1)]
            layout.tag("t", layout.image(layers, cmd=["/bin/sh"]))
            ref = f"{reg.host}/bench/multi:1"
            skopeo_push(layout.folder, "t", ref)
            ours, theirs = [], []
            for i in range(opts.runs):
                env = dict(os.environ, RUSTAINER_ROOT=str(tmp / f"root-pull-{i}"))
                ours.append(timed([*CLI, "pull", "--insecure", ref], env))
                dest = tmp / f"skopeo-{i}"
                dest.mkdir()
                theirs.append(timed(["sh", "-c", f"skopeo --insecure-policy copy --quiet --src-tls-verify=false "
                                     f"docker://{ref} oci:{dest}/img:t && umoci unpack --image {dest}/img:t "
                                     f"{dest}/bundle"], dict(os.environ)))
                shutil.rmtree(tmp / f"root-pull-{i}")
                shutil.rmtree(dest)
            size = sum(len(x) for x in layers) / 1e6
            print(f"pull+unpack of {opts.layers} layers ({size:.0f} MB): rustainer {statistics.median(ours):.2f} s, "
                  f"skopeo copy + umoci unpack {statistics.median(theirs):.2f} s "
                  f"(x{statistics.median(ours) / statistics.median(theirs):.2f})")

            env = dict(os.environ, RUSTAINER_ROOT=str(tmp / "root-run"))
            subprocess.run([*CLI, "pull", "--insecure", ref], env=env, check=True, stdout=subprocess.DEVNULL)
            image, folder = [], []
            for _ in range(opts.runs * 4):  # interleaved
                image.append(timed([*CLI, "run", "--rm", "--image", ref, "--", "true"], env))
                folder.append(timed([*CLI, "run", "--rm", "--rootfs", str(rootfs), "--", "true"], env))
            mi, mf = statistics.median(image), statistics.median(folder)
            print(f"start: run --rm --image {mi * 1e3:.1f} ms, run --rm --rootfs {mf * 1e3:.1f} ms (x{mi / mf:.2f})")

            images_dir = tmp / "root-run" / "images"
            before = int(subprocess.run(["du", "-sb", str(images_dir)], capture_output=True, text=True,
                                        check=True).stdout.split()[0])
            names = [f"bench{i}" for i in range(opts.containers)]
            for name in names:
                subprocess.run([*CLI, "run", "--detach", "--name", name, "--image", ref, "--", "sleep", "600"],
                               env=env, check=True, stdout=subprocess.DEVNULL)
            after = int(subprocess.run(["du", "-sb", str(images_dir)], capture_output=True, text=True,
                                       check=True).stdout.split()[0])
            subprocess.run([*CLI, "rm", "-f", *names], env=env, check=True, stdout=subprocess.DEVNULL)
            print(f"disk: the image store {before / 1e6:.1f} MB; with {opts.containers} running containers of it "
                  f"{after / 1e6:.1f} MB (+{(after - before) / 1e3:.1f} kB)")
        finally:
            reg.stop()


if __name__ == "__main__":
    main()
