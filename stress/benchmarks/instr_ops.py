"""Instructions per scheduler operation, counted by valgrind (cachegrind), for two copies of
mn_runtime side by side: spawn, spawn-and-join, gosched, Mutex, buffered channel.

    python -m stress.benchmarks.instr_ops OLD_DIR NEW_DIR [--ops spawn,yield] [--n 2000,6000]

Each DIR holds a `mn_runtime` package (a copy of the tree before and after a change, e.g. made
with `git archive`). As stress/benchmarks/ab.py does for the ping-pong: each operation runs for
two lengths, and the difference of the instruction counts divided by the extra operations
cancels start-up; sysmon's tick is slowed so that valgrind's slowdown does not multiply it.
Needs valgrind; not part of the default test run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys

_CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
which, n = sys.argv[2], int(sys.argv[3])
from mn_runtime._rt import sysmon
sysmon.FORCE_PREEMPT_NS = 1e9
sysmon.MIN_DELAY = 0.05
sysmon.MAX_DELAY = 0.5
sysmon.NETPOLL_EVERY = 1e9
import mn_runtime as mn

async def nothing():
    pass

async def spawn():  # the spawn benchmark's shape: a batch of Gs, joined after
    gs = [mn.go(nothing) for _ in range(n)]
    for g in gs:
        await g.join()

async def spawnjoin():  # each join parks until its G has run
    for _ in range(n):
        await mn.go(nothing).join()

async def yield_():  # nothing else runnable: the yield benchmark
    for _ in range(n):
        await mn.gosched()

async def yield_rr():  # 10 Gs: every yield switches
    async def w():
        for _ in range(n // 10):
            await mn.gosched()
    hs = [mn.go(w) for _ in range(10)]
    for h in hs:
        await h.join()

async def mutex():
    m = mn.Mutex()
    for _ in range(n):
        await m.lock()
        m.unlock()

async def buffered():
    c = mn.Chan(16)
    async def prod():
        for i in range(n):
            await c.send(i)
        c.close()
    mn.go(prod)
    async for _ in c:
        pass

ops = {"spawn": spawn, "spawnjoin": spawnjoin, "yield": yield_, "yield_rr": yield_rr,
       "mutex": mutex, "buffered": buffered}
mn.run(ops[which], procs=1)
"""

OPS = ("spawn", "spawnjoin", "yield", "yield_rr", "mutex", "buffered")


def count(d: str, op: str, n: int) -> int:
    cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    r = subprocess.run([*cmd, sys.executable, "-c", _CHILD, d, op, str(n)], capture_output=True, text=True)
    m = re.search(r"I\s+refs:\s+([\d,]+)", r.stderr)
    if m is None:
        raise SystemExit(f"valgrind gave no instruction count for {op} in {d}:\n{r.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--ops", default=",".join(OPS), help=f"comma-separated, of {', '.join(OPS)}")
    ap.add_argument("--n", default="2000,6000", help="two run lengths, operations per run")
    a = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("stress.benchmarks.instr_ops needs valgrind (apt install valgrind)")
    n1, n2 = (int(x) for x in a.n.split(","))
    if not 0 < n1 < n2:
        sys.exit("--n needs two increasing positive counts, e.g. 2000,6000")
    ops = a.ops.split(",")
    bad = [o for o in ops if o not in OPS]
    if bad:
        sys.exit(f"unknown operations: {', '.join(bad)} (known: {', '.join(OPS)})")
    print("| operation | old | new | change |")
    print("|---|---:|---:|---:|")
    for op in ops:
        per = [(count(d, op, n2) - count(d, op, n1)) / (n2 - n1) for d in (a.old, a.new)]
        print(f"| {op} | {per[0]:,.0f} | {per[1]:,.0f} | {(per[1] / per[0] - 1) * 100:+.1f}% |")


if __name__ == "__main__":
    main()
