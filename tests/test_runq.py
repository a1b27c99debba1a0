"""Pure run-queue tests, without threads: runqput/runqget/runnext, overflow to the global queue,
stealing half (the global queue itself: test_globrunq.py). Uses G objects directly and a stand-in Sched."""

from __future__ import annotations

import contextvars
import threading
from collections import deque

import pytest

from mn_runtime._rt.g import G, GStatus, casgstatus
from mn_runtime._rt.globrunq import GlobRunq
from mn_runtime._rt.p import P, PStatus
from mn_runtime._rt.runq import runqempty, runqget, runqgrab_stale, runqput, runqsteal
from mn_runtime.errors import Throw


class FakeSched:
    def __init__(self, procs: int = 2) -> None:
        self.lock = threading.Lock()
        self.runq = GlobRunq(self.lock)
        self.procs = procs
        self.chaos = None
        self.npidle = 0
        self.stopping = False
        self.mpolling = 0


async def _nop() -> None:
    return None


def running(pid: int, cap: int) -> P:
    """running makes a P as its owner M sees it: RUNNING, so runnext is the owner's alone."""
    p = P(pid, cap)
    p.status = PStatus.RUNNING
    return p


def mkg(i: int) -> G:
    coro = _nop()
    coro.close()
    return G(i, coro, contextvars.copy_context(), f"g{i}")


def test_runnext_then_fifo() -> None:
    s, p = FakeSched(), running(0, 8)
    assert runqput(s, p, mkg(1), False) is True
    assert runqput(s, p, mkg(2), False) is True
    # A G taking the empty runnext slot is not stealable: no wake-up needed.
    assert runqput(s, p, mkg(3), True) is False
    # A second runnext kicks the first to the tail of the ring.
    assert runqput(s, p, mkg(4), True) is True
    order = []
    inherit = []
    while True:
        g, inh = runqget(p)
        if g is None:
            break
        order.append(g.id)
        inherit.append(inh)
    assert order == [4, 1, 2, 3]
    assert inherit == [True, False, False, False]
    assert runqempty(p)


def test_overflow_moves_half_plus_one_to_global() -> None:
    s, p = FakeSched(), running(0, 8)
    for i in range(8):
        runqput(s, p, mkg(i), False)
    assert len(p.runq) == 8 and not s.runq.q
    runqput(s, p, mkg(8), False)
    assert len(p.runq) == 4
    assert [g.id for g in s.runq.q] == [0, 1, 2, 3, 8]
    # Nothing lost, nothing duplicated.
    ids = [g.id for g in p.runq] + [g.id for g in s.runq.q]
    assert sorted(ids) == list(range(9))


def test_steal_takes_half_rounded_up_from_head() -> None:
    thief, victim = running(0, 16), running(1, 16)
    s = FakeSched()
    for i in range(7):
        runqput(s, victim, mkg(i), False)
    g = runqsteal(thief, victim, False)
    assert g is not None
    # Half of 7 rounded up = 4 taken: 0,1,2 onto the thief's ring, 3 returned to run.
    assert g.id == 3
    assert [x.id for x in thief.runq] == [0, 1, 2]
    assert [x.id for x in victim.runq] == [4, 5, 6]
    assert thief.nsteal == 1 and victim.nstolen == 4


def test_steal_runnext_only_when_allowed_and_victim_not_running() -> None:
    s = FakeSched()
    thief, victim = running(0, 16), running(1, 16)
    runqput(s, victim, mkg(1), True)
    victim.status = PStatus.RUNNING
    assert runqsteal(thief, victim, True) is None  # owner is running: it will run it itself
    victim.status = PStatus.SYSCALL
    assert runqsteal(thief, victim, False) is None  # not the last round
    g = runqsteal(thief, victim, True)
    assert g is not None and g.id == 1 and victim.runnext is None


def test_runqgrab_stale_takes_runnext_only_from_an_owner_that_did_not_move_on() -> None:
    """runqgrab_stale (Go's runqgrab on a running P): the thief takes the runnext G it saw only if
    it is still there and the owner ran no other G since (ngrun unchanged)."""
    s = FakeSched()
    thief, victim = running(0, 16), running(1, 16)
    g1, g2 = mkg(1), mkg(2)
    runqput(s, victim, g1, True)
    seen = victim.ngrun
    victim.ngrun += 1  # the owner ran a G meanwhile: it is not stuck
    assert runqgrab_stale(thief, victim, g1, seen) is None
    assert victim.runnext is g1
    seen = victim.ngrun
    runqput(s, victim, g2, True)  # g1 kicked to the ring, g2 in runnext: not the G the thief saw
    assert runqgrab_stale(thief, victim, g1, seen) is None
    assert runqgrab_stale(thief, victim, g2, seen) is g2  # same G, owner did not move on
    assert victim.runnext is None and victim.nstolen == 1 and thief.nsteal == 1
    assert runqget(victim) == (g1, False)  # the owner finds its ring, not the stolen G
    assert runqgrab_stale(thief, victim, g2, seen) is None  # taken once only


def test_casgstatus_rejects_impossible_transitions() -> None:
    g = mkg(1)
    assert g.status is GStatus.RUNNABLE  # born RUNNABLE: newproc publishes it only as it queues it
    casgstatus(g, GStatus.RUNNABLE, GStatus.RUNNING)
    casgstatus(g, GStatus.RUNNING, GStatus.WAITING)
    casgstatus(g, GStatus.WAITING, GStatus.RUNNABLE)
    # A second ready of the same park: the G is no longer WAITING.
    with pytest.raises(
        Throw, match=r"casgstatus: goroutine 1: bad transition WAITING -> RUNNABLE \(status is RUNNABLE\)"
    ):
        casgstatus(g, GStatus.WAITING, GStatus.RUNNABLE)


def test_every_casgstatus_call_site_makes_a_legal_move() -> None:
    """casgstatus checks the current state at run time; whether (old, new) is an allowed edge is
    a property of the call site, so every call site in the package is checked here, once."""
    import ast
    import pathlib

    import mn_runtime
    from mn_runtime._rt.g import valid_transition

    root = pathlib.Path(mn_runtime.__file__).parent
    sites = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("casgstatus", "badgstatus"):
                where = f"{path.name}:{node.lineno}"
                assert len(node.args) == 3, where
                if [getattr(a, "id", None) for a in node.args[1:]] == ["old", "new"] and path.name == "g.py":
                    continue  # casgstatus passing its own arguments on
                names = []
                for a in node.args[1:]:
                    name = a.attr if isinstance(a, ast.Attribute) else getattr(a, "id", None)
                    assert name in GStatus.__members__, f"{where}: not a GStatus constant: {ast.dump(a)}"
                    names.append(GStatus[name])
                assert valid_transition(*names), f"{where}: illegal move {names[0].name} -> {names[1].name}"
                sites.append((where, names))
    assert len(sites) >= 10, sites  # the scan found the runtime's call sites
    # The inlined copies (g.py's note): each function that writes `.status = NEW` directly must
    # name the same move in its badgstatus fallback.
    inlined = 0
    for path in sorted(root.rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or fn.name in (
                "casgstatus",
                "abandon",
                "__init__",
            ):
                continue
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Attribute) and t.attr == "status" for t in node.targets)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in GStatus.__members__
                ):
                    new = GStatus[node.value.id]
                    fallbacks = [
                        GStatus[c.args[2].id]
                        for c in ast.walk(fn)
                        if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "badgstatus"
                    ]
                    assert new in fallbacks, f"{path.name}:{node.lineno}: status = {new.name} without its check"
                    inlined += 1
    assert inlined >= 3
    moves = {(o, n) for _, (o, n) in sites}
    assert (GStatus.WAITING, GStatus.RUNNABLE) in moves and (GStatus.RUNNING, GStatus.DEAD) in moves
    assert not valid_transition(GStatus.RUNNABLE, GStatus.DEAD)
    assert not valid_transition(GStatus.WAITING, GStatus.RUNNING)


def test_casgstatus_double_ready_race_exactly_one_wins() -> None:
    """Two threads race to ready the same parked G many times: exactly one wins each time."""
    for _ in range(200):
        g = mkg(1)
        casgstatus(g, GStatus.RUNNABLE, GStatus.RUNNING)
        casgstatus(g, GStatus.RUNNING, GStatus.WAITING)
        wins = []
        errs = []
        barrier = threading.Barrier(2)

        def ready(g: G, barrier: threading.Barrier, wins: list[int], errs: list[int]) -> None:
            barrier.wait()
            try:
                casgstatus(g, GStatus.WAITING, GStatus.RUNNABLE)
                wins.append(1)
            except Throw:
                errs.append(1)

        ts = [threading.Thread(target=ready, args=(g, barrier, wins, errs)) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert len(wins) == 1 and len(errs) == 1


def test_runnext_put_needs_a_running_p() -> None:
    s, p = FakeSched(), P(0, 8)
    with pytest.raises(Throw, match="runqput: P 0 is IDLE, not held by a running M"):
        runqput(s, p, mkg(1), True)


def test_runqdrain_never_clears_a_runnext_the_owner_fills_meanwhile() -> None:
    """sysmon's runqdrain runs while the owner M keeps running: the owner fills an empty runnext
    without the lock. A drain that read the slot empty and then stored None anyway erased the
    owner's G (a G lost for good: the spawn stress scenario under chaos ended in a false
    Deadlock with one goroutine runnable and every queue empty). Here the owner's write lands
    right after the drain's read."""
    import types

    from mn_runtime._rt.runq import runqdrain

    gp = types.SimpleNamespace(id=7)

    class OwnerWritesAfterRead:
        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.runq: deque[object] = deque()
            self.nstolen = 0
            self._rn: object = None
            self.reads = 0

        @property
        def runnext(self) -> object:
            v = self._rn
            self.reads += 1
            if self.reads == 1:
                self._rn = gp  # the owner's unlocked fill of the empty slot, just after the read
            return v

        @runnext.setter
        def runnext(self, v: object) -> None:
            self._rn = v

    p = OwnerWritesAfterRead()
    gs = runqdrain(p)  # type: ignore[arg-type]
    assert gs == [] and p._rn is gp, "the G the owner put in runnext was lost"
