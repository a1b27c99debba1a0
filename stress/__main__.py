"""python -m stress: list and run the stress scenarios (docs/stress.md).

    python -m stress --list
    python -m stress --scenario spawn --seconds 10 --procs 4 --seed 1
    python -m stress --seconds 5                       # every scenario, 5 s each
    python -m stress --seconds 5 --chaos               # the same under chaos mode, seeded by --seed

Exit status 1 if any invariant was violated; the report then prints the command that reproduces
the run with the same seed.
"""

from __future__ import annotations

import argparse
import os
import sys

from .report import format_result, run_scenario
from .scenarios import SCENARIOS


def _positive_float(s: str) -> float:
    v = float(s)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def _positive_int(s: str) -> int:
    v = int(s)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {s}")
    return v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stress", description="mn_runtime stress scenarios")
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    ap.add_argument("--scenario", action="append", metavar="NAME", help="run only this scenario (repeatable)")
    ap.add_argument("--seconds", type=_positive_float, default=5.0, help="budget per scenario (default 5)")
    ap.add_argument("--procs", type=_positive_int, default=os.cpu_count() or 1, help="Ps (default: CPUs)")
    ap.add_argument("--seed", type=int, default=None, help="seed (default: random, printed)")
    ap.add_argument("--chaos", action="store_true", help="run under chaos mode with --seed as the chaos seed")
    a = ap.parse_args(argv)
    if a.list:
        for name, scn in SCENARIOS.items():
            print(f"{name:<8} {scn.DOC}")
        return 0
    names = a.scenario or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {', '.join(unknown)}; --list shows them: {', '.join(SCENARIOS)}")
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(3), "little")
    if seed < 0:
        ap.error(f"--seed must be >= 0, got {seed}")
    mode = f"chaos seed {seed}" if a.chaos else f"seed {seed}"
    print(f"stress: {len(names)} scenarios, {a.seconds:g}s each, procs={a.procs}, {mode}", flush=True)
    results = []
    for name in names:
        r = run_scenario(SCENARIOS[name], a.seconds, a.procs, seed, a.chaos)
        print(format_result(r), flush=True)
        results.append(r)
    bad = [r for r in results if not r.ok]
    print("\nreport:")
    for r in results:
        print("  " + format_result(r).replace("\n", "\n  "))
    if bad:
        chaos = " --chaos" if a.chaos else ""
        print(f"\nFAILED: {len(bad)} of {len(results)} scenarios violated invariants. Reproduce with:")
        for r in bad:
            args = f"--seconds {a.seconds:g} --procs {a.procs} --seed {seed}{chaos}"
            print(f"  python -m stress --scenario {r.name} {args}")
        return 1
    print(f"\nok: {len(results)} scenarios, {sum(r.checks for r in results)} invariant checks, seed {seed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
