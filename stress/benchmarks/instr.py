"""Instructions per echo round trip, counted by valgrind (cachegrind) instead of timed.

The shared host's clock swings by up to 2x from run to run; the number of user-space instructions
a round trip executes does not. This runs the echo benchmark's mn_runtime side (procs=1, the
clients and the server in one process) under `valgrind --tool=cachegrind` for two run lengths and
prints the difference divided by the extra round trips, so start-up and connection set-up cancel
out. The kernel's share (the loopback TCP stack) is not counted: it is the same for every
implementation.

Under valgrind the program runs some 50x slower, so sysmon, which ticks by the clock, would tick
50x more often per round trip; the child slows its tick (and its network look) so that it stays
out of the count, as it nearly is at full speed.

    python -m stress.benchmarks.instr [--clients 100] [--rounds 50,150] [--bufread]

Needs valgrind (Debian: apt install valgrind); not part of the default test run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys


def child(clients: int, rounds: int, bufread: bool) -> None:
    from mn_runtime._rt import sysmon

    sysmon.FORCE_PREEMPT_NS = 1e9
    sysmon.MIN_DELAY = 0.05
    sysmon.MAX_DELAY = 0.5
    sysmon.NETPOLL_EVERY = 1e9
    from stress.benchmarks.net import run_mn

    run_mn(clients, rounds, 1, True, bufread)


def count(clients: int, rounds: int, bufread: bool) -> int:
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "stress.benchmarks.instr",
        "--child",
        f"{clients},{rounds}",
    ]
    if bufread:
        cmd.append("--bufread")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True).stderr
    m = re.search(r"I\s+refs:\s+([\d,]+)", out)
    if m is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--rounds", default="50,150", help="two run lengths, round trips per client")
    ap.add_argument("--bufread", action="store_true", help="the client reads 64 KiB at a time")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        c, r = (int(x) for x in a.child.split(","))
        child(c, r, a.bufread)
        return
    if shutil.which("valgrind") is None:
        sys.exit("stress.benchmarks.instr needs valgrind (apt install valgrind)")
    r1, r2 = (int(x) for x in a.rounds.split(","))
    if not 0 < r1 < r2:
        sys.exit("--rounds needs two increasing positive counts, e.g. 50,150")
    n1 = count(a.clients, r1, a.bufread)
    n2 = count(a.clients, r2, a.bufread)
    per = (n2 - n1) / (a.clients * (r2 - r1))
    print(f"{a.clients} clients, rounds {r1} and {r2}: {per:,.0f} user-space instructions per round trip")


if __name__ == "__main__":
    main()
