"""What the tracer hooks cost when tracing is off: an A/B against a copy of mn_runtime with every
`if <tracer> is not None:` event site compiled out (rewritten to `if False:`, which CPython drops
at compile time), on the unbuffered-channel ping-pong, interleaved runs in fresh processes.

    python -m stress.benchmarks.hooks_ab [--runs 12] [--n 20000] [--cpu 1]

--cpu pins every run to one core (taskset), which removes most of the run-to-run spread of a
shared 2-core box. Prints per-run µs per round trip, medians, minimums and the loss in percent.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

_SITE = re.compile(
    r"if (tr|s\.tracer|sched\.tracer|self\.tracer) is not None:"
    r"|if s is not None and s\.tracer is not None:"
)

_CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import mn_runtime as mn
assert mn.__file__.startswith(sys.argv[1]), mn.__file__
N = int(sys.argv[2])
async def pinger(a, b):
    for i in range(N):
        await a.send(i)
        await b.recv()
async def ponger(a, b):
    for i in range(N):
        await b.send(await a.recv())
async def main():
    a, b = mn.Chan(), mn.Chan()
    g1 = mn.go(pinger, a, b)
    g2 = mn.go(ponger, a, b)
    await g1.join()
    await g2.join()
t = time.perf_counter()
mn.run(main, procs=1)
print((time.perf_counter() - t) / N * 1e6)
"""


def strip_hooks(src: str, dst: str) -> int:
    """strip_hooks copies the package and compiles out every tracer event site; returns how many."""
    shutil.copytree(src, os.path.join(dst, "mn_runtime"), ignore=shutil.ignore_patterns("__pycache__"))
    n = 0
    for dirpath, _, files in os.walk(os.path.join(dst, "mn_runtime")):
        for f in files:
            if f.endswith(".py"):
                p = os.path.join(dirpath, f)
                text = open(p).read()
                new, k = _SITE.subn("if False:", text)
                if k:
                    n += k
                    with open(p, "w") as fh:
                        fh.write(new)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--cpu", type=int, default=None, help="pin runs to this CPU with taskset")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory() as tmp:
        sites = strip_hooks(os.path.join(root, "mn_runtime"), tmp)
        pin = ["taskset", "-c", str(a.cpu)] if a.cpu is not None and shutil.which("taskset") else []
        res: dict[str, list[float]] = {"hooks": [], "stripped": []}
        for _ in range(a.runs):
            for kind, where in (("hooks", root), ("stripped", tmp)):
                out = subprocess.run(
                    [*pin, sys.executable, "-c", _CHILD, where, str(a.n)], capture_output=True, text=True, check=True
                )
                res[kind].append(float(out.stdout.strip()))
    h, s = res["hooks"], res["stripped"]
    print(f"{sites} event sites compiled out; {a.runs} interleaved runs of {a.n} round trips, procs=1")
    print("with hooks (us/rt):", " ".join(f"{x:.2f}" for x in sorted(h)))
    print("stripped   (us/rt):", " ".join(f"{x:.2f}" for x in sorted(s)))
    mh, ms = statistics.median(h), statistics.median(s)
    print(f"median {mh:.3f} vs {ms:.3f}: loss {(mh / ms - 1) * 100:+.1f}%")
    print(f"min    {min(h):.3f} vs {min(s):.3f}: loss {(min(h) / min(s) - 1) * 100:+.1f}%")


if __name__ == "__main__":
    main()
