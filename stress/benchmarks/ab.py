"""A/B two copies of mn_runtime on the unbuffered-channel ping-pong: instructions or time per round trip.

    python -m stress.benchmarks.ab OLD_DIR NEW_DIR [--procs 1] [--instr] [--runs 9] [--n 20000]

Each DIR holds a `mn_runtime` package (a copy of the tree before and after a change, e.g. made
with `git archive`). Without --instr: the two are timed in fresh processes, runs interleaved and
pinned to one core (taskset), and the medians and minimums of µs per round trip are compared.
With --instr: valgrind (cachegrind) counts the user-space instructions of a round trip, as
stress/benchmarks/instr.py does for the echo benchmark: two run lengths, the difference divided by the
extra round trips, so start-up cancels out. The count does not swing with the shared host's load,
which can move the timed medians by 2x; a lock costs more cycles than its instruction count says.
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

_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
n, procs, instr = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
if instr:  # sysmon ticks by the clock, and valgrind slows the program 50x: keep it out of the count
    from mn_runtime._rt import sysmon
    sysmon.FORCE_PREEMPT_NS = 1e9
    sysmon.MIN_DELAY = 0.05
    sysmon.MAX_DELAY = 0.5
    sysmon.NETPOLL_EVERY = 1e9
from stress.benchmarks.chan import mn_pingpong  # the ping-pong of benchmarks/chan.py, on the copy above

print(1e6 / mn_pingpong(n, procs))  # microseconds per round trip
"""


def timed(d: str, n: int, procs: int) -> float:
    cmd = [sys.executable, "-c", _CHILD, d, str(n), str(procs), "0"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout)


def instructions(d: str, n: int, procs: int) -> int:
    with tempfile.TemporaryDirectory() as t:
        out = os.path.join(t, "cg.out")
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", f"--cachegrind-out-file={out}"]
        r = subprocess.run(
            [*cmd, sys.executable, "-c", _CHILD, d, str(n), str(procs), "1"], capture_output=True, text=True
        )
        m = re.search(r"I\s+refs:\s+([\d,]+)", r.stderr)
        if m is None:
            raise SystemExit(f"valgrind gave no instruction count:\n{r.stderr[-2000:]}")
        return int(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--instr", action="store_true", help="count instructions with valgrind instead of timing")
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--n", type=int, default=20000)
    a = ap.parse_args()
    dirs = [os.path.abspath(a.old), os.path.abspath(a.new)]
    if a.instr:
        if not shutil.which("valgrind"):
            raise SystemExit("--instr needs valgrind (Debian: apt install valgrind)")
        per = []
        for d in dirs:
            lo, hi = instructions(d, 2000, a.procs), instructions(d, 6000, a.procs)
            per.append((hi - lo) / 4000)
            print(f"{d}: {per[-1]:.0f} instructions per round trip (procs={a.procs})")
        print(f"new vs old: {100 * (per[1] - per[0]) / per[0]:+.2f}%")
        return
    res: dict[str, list[float]] = {d: [] for d in dirs}
    for i in range(a.runs):
        for d in dirs if i % 2 == 0 else dirs[::-1]:
            res[d].append(timed(d, a.n, a.procs))
    med = [statistics.median(res[d]) for d in dirs]
    low = [min(res[d]) for d in dirs]
    for d, md, lo in zip(dirs, med, low, strict=True):
        print(f"{d}: median {md:.3f} us per round trip, min {lo:.3f} (procs={a.procs}, {a.runs} runs)")
    print(
        f"new vs old: {100 * (med[1] - med[0]) / med[0]:+.2f}% (median), {100 * (low[1] - low[0]) / low[0]:+.2f}% (min)"
    )


if __name__ == "__main__":
    main()
