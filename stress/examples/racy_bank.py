"""racy_bank: a deliberately racy program, for showing what chaos mode finds.

Eight goroutines each withdraw 30 from an account holding 100. Each checks the balance, writes an
audit record with a blocking call (mn.syscall), then takes the money:

    if acct.balance >= amount:          # check
        await mn.syscall(audit, ...)    # an await between the check and the act
        acct.take(amount)               # act: balance -= amount, paid += amount

The await lets another goroutine run between the check and the act, and then two withdrawals can
both pass the check: the balance goes negative. In a plain run the audit call is short, the
goroutine keeps its P across it and nothing else runs in between, so the bug almost never shows.
Chaos mode asks goroutines to yield at runtime calls, and a small seed sweep finds it; with
procs=1 the failing seed replays the same interleaving every time:

    python -m stress.examples.racy_bank --sweep 20          # chaos seeds 0..19, procs=1
    python -m stress.examples.racy_bank --chaos 3           # replay one seed
    python -m stress.examples.racy_bank --plain 200         # 200 plain runs

The fix is to hold a mn.Mutex across check and act (--fixed): then no seed fails.

That check-then-act is the only race here, on purpose. The act itself (take from the balance, add
to the amount paid out) is one step under the account's `books` lock: at procs >= 2 goroutines run
on several threads, and without the GIL a bare `balance -= amount` could lose an update, a second
bug (the books not balancing) that would blur the one this example shows.
"""

from __future__ import annotations

import argparse
import sys
import threading

import mn_runtime as mn

START = 100
AMOUNT = 30
CUSTOMERS = 8


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = balance
        self.paid = 0
        self.mu = mn.Mutex()
        self.books = threading.Lock()  # balance and paid change together, as one step
        self.log: list[int] = []

    def take(self, amount: int) -> None:
        """take is the act: amount leaves the balance and is paid out, atomically (no await)."""
        with self.books:
            self.balance -= amount
            self.paid += amount


def audit(log: list[int], amount: int) -> None:
    log.append(amount)


async def withdraw(acct: Account, amount: int) -> None:
    if acct.balance >= amount:
        await mn.syscall(audit, acct.log, amount)
        acct.take(amount)


async def withdraw_fixed(acct: Account, amount: int) -> None:
    async with acct.mu:
        if acct.balance >= amount:
            await mn.syscall(audit, acct.log, amount)
            acct.take(amount)


async def main(fixed: bool = False) -> tuple[int, int]:
    """main runs the withdrawals and returns (final balance, amount paid out)."""
    acct = Account(START)
    fn = withdraw_fixed if fixed else withdraw
    gs = [mn.go(fn, acct, AMOUNT) for _ in range(CUSTOMERS)]
    for g in gs:
        await g.join()
    return acct.balance, acct.paid


def ok(result: tuple[int, int]) -> bool:
    """ok: the invariant. The balance never goes negative and the books balance."""
    balance, paid = result
    return balance >= 0 and balance + paid == START


def run_once(chaos: int | None, procs: int = 1, fixed: bool = False) -> tuple[int, int]:
    return mn.run(main, fixed, procs=procs, chaos=chaos)  # type: ignore[no-any-return]


def sweep(seeds: range, procs: int = 1, fixed: bool = False) -> list[int]:
    """sweep runs one chaos run per seed and returns the seeds whose run broke the invariant."""
    return [s for s in seeds if not ok(run_once(s, procs, fixed))]


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m stress.examples.racy_bank", description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--sweep", type=int, metavar="N", help="chaos runs with seeds 0..N-1")
    g.add_argument("--chaos", type=int, metavar="SEED", help="one chaos run (replays a seed found by --sweep)")
    g.add_argument("--plain", type=int, metavar="N", help="N runs without chaos")
    ap.add_argument("--procs", type=int, default=1, help="Ps (replay is deterministic only with 1; default 1)")
    ap.add_argument("--fixed", action="store_true", help="hold a mutex across check and act")
    a = ap.parse_args(argv)
    if a.sweep is not None:
        bad = sweep(range(a.sweep), a.procs, a.fixed)
        print(f"{len(bad)} of {a.sweep} chaos seeds broke the invariant: {bad}")
        if bad:
            print(f"replay: python -m stress.examples.racy_bank --chaos {bad[0]} --procs {a.procs}")
        return 1 if bad else 0
    if a.chaos is not None:
        res = run_once(a.chaos, a.procs, a.fixed)
        print(f"seed {a.chaos}: balance {res[0]}, paid {res[1]}: {'ok' if ok(res) else 'INVARIANT BROKEN'}")
        return 0 if ok(res) else 1
    nbad = sum(not ok(run_once(None, a.procs, a.fixed)) for _ in range(a.plain))
    print(f"{nbad} of {a.plain} plain runs broke the invariant")
    return 1 if nbad else 0


if __name__ == "__main__":
    sys.exit(cli())
