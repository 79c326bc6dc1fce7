"""Recording overhead: a flood (``seq 1 3000000``) into a detached container, recorded or not.

Run by hand as root:  .venv/bin/python tests/bench/bench_recording.py [RUNS] [LINES]
Each run starts a detached container whose shell waits for a go, then floods its pty; the time is
from the go to the last line in the log. The recorded runs start ``rustainer record`` before the go,
so the supervisor writes every byte to the asciicast file as well. Runs alternate (plain, recorded)
so the machine's drift touches both alike; the figure is the ratio of the medians.
Goal (issue #15): the recording costs under 5% of the throughput.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from rustainer.backend.supervisor import protocol as P


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its own, not its children's)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def flood(root: str, lines: int, record: bool) -> tuple[float, float, int]:
    """(seconds from the go to the end of the flood, the supervisor's CPU seconds meanwhile, bytes in
    the recording)."""
    cli = os.path.join(os.path.dirname(sys.executable), "rustainer")
    env = dict(os.environ, RUSTAINER_ROOT=root)
    subprocess.run([cli, "run", "--detach", "--name", "bench", "--", "sh", "-c",
                    f"read go; seq 1 {lines}; echo DONE-MARK; read stop"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    state = json.loads(subprocess.run([cli, "ps", "--format", "json"], env=env, capture_output=True,
                                      text=True, check=True).stdout)[0]
    cdir = os.path.join(root, "containers", state["id"])
    log = os.path.join(cdir, "container.log")
    if record:
        subprocess.run([cli, "record", "start", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
    sock = socket.socket(socket.AF_UNIX)
    with P.SocketPath(os.path.join(cdir, "attach.sock")) as path:
        sock.connect(path)
    supervisor = state["supervisor_pid"]
    cpu = cpu_seconds(supervisor)
    sock.sendall(P.hello(P.MODE_NONE) + P.frame(P.INPUT, b"\n"))
    start = time.perf_counter()
    while True:
        try:
            with open(log, "rb") as f:
                f.seek(max(0, os.fstat(f.fileno()).st_size - 64))
                if b"DONE-MARK" in f.read():
                    break
        except FileNotFoundError:  # the moment the log is rotated (renamed, then made anew)
            pass
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    time.sleep(0.3)  # what the supervisor does behind the output (parsing, the recording) counts too
    cpu = cpu_seconds(supervisor) - cpu
    sock.close()
    size = 0
    if record:
        subprocess.run([cli, "record", "stop", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
        size = os.path.getsize(os.path.join(cdir, "recording.cast"))
    subprocess.run([cli, "rm", "-f", "bench"], env=env, check=True, stdout=subprocess.DEVNULL)
    return elapsed, cpu, size


def recorder_alone(lines: int, tmp: str) -> tuple[float, int]:
    """(CPU seconds, bytes) for the recorder alone on the same output, read 4 KB at a time as from a
    pty and written every 256 reads: its cost without the machine's noise."""
    from rustainer.backend.supervisor.recording import Recorder

    data = subprocess.run(["seq", "1", str(lines)], capture_output=True, check=True).stdout.replace(b"\n", b"\r\n")
    chunks = [data[i:i + 4096] for i in range(0, len(data), 4096)]
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        recorder = Recorder(os.path.join(tmp, "alone.cast"), 24, 80, env={}, title="bench")
        for i, chunk in enumerate(chunks):
            recorder.output(chunk)
            if i % 256 == 255:
                recorder.flush()
        recorder.close()
        best = min(best, time.process_time() - start)
    return best, len(data)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 3_000_000
    plain, recorded, sizes, plain_cpu, recorded_cpu = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "root")
        flood(root, 100_000, False)  # warm-up: the launcher, the page cache
        for _ in range(runs):
            seconds, cpu, _ = flood(root, lines, False)
            plain.append(seconds)
            plain_cpu.append(cpu)
            seconds, cpu, size = flood(root, lines, True)
            recorded.append(seconds)
            recorded_cpu.append(cpu)
            sizes.append(size)
        from rustainer.backend.supervisor import zygote

        zygote.stop(root)
        alone, size = recorder_alone(lines, tmp)
    a, b = statistics.median(plain), statistics.median(recorded)
    print(f"{'case':<44} {'median s':>9} {'min s':>7} {'max s':>7}")
    print(f"{f'seq 1 {lines}, not recorded':<44} {a:>9.3f} {min(plain):>7.3f} {max(plain):>7.3f}")
    print(f"{f'seq 1 {lines}, recorded':<44} {b:>9.3f} {min(recorded):>7.3f} {max(recorded):>7.3f}")
    ca, cb = statistics.median(plain_cpu), statistics.median(recorded_cpu)
    print(f"supervisor CPU s (median): {ca:.3f} not recorded, {cb:.3f} recorded ({100 * (cb / ca - 1):+.1f}%)")
    print(f"the recorder alone: {alone:.3f} CPU s for the {size / 1e6:.1f} MB of output "
          f"({100 * alone / a:.1f}% of the plain flood's median wall time)")
    print(f"recording: {statistics.median(sizes) / 1e6:.1f} MB; wall-time overhead: median "
          f"{100 * (b / a - 1):+.1f}%, best runs {100 * (min(recorded) / min(plain) - 1):+.1f}% (goal: under 5%)")


if __name__ == "__main__":
    main()
