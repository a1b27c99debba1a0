"""The idle lists and the decisions of idle.py, without a running runtime: pidleput/pidleget,
acquirep/releasep, wakep, handoffp and checkdead.

The scheduler here is a real `Sched(procs)`, constructed but never started: its constructor
makes the poller's and sysmon's Thread objects without starting them (checked below) and opens
the epoll backend's fds, which the fixture closes. `idle.mwake` (the one place an M's thread is
started or woken) is replaced by a recorder, so startm's decisions are seen without threads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from mn_runtime._rt import idle
from mn_runtime._rt import lock as _lock
from mn_runtime._rt import tls as _tls
from mn_runtime._rt.g import G, GStatus, WaitReason, casgstatus
from mn_runtime._rt.idle import acquirep, checkdead, handoffp, pidleget, pidleput, releasep, wakep
from mn_runtime._rt.m import M
from mn_runtime._rt.p import P, PStatus
from mn_runtime._rt.sched import Sched
from mn_runtime._rt.timers import Timer, VirtualClock
from mn_runtime.errors import Deadlock, Throw

from .test_runq import mkg


class Rig:
    """Rig: a constructed Sched with mwake and the poller's wakeup recorded."""

    def __init__(self, procs: int, monkeypatch: pytest.MonkeyPatch) -> None:
        assert _tls.cur is None  # no runtime runs: acquirep and friends see no tracer or sysmon
        before = threading.active_count()
        self.s = Sched(procs)
        assert threading.active_count() == before
        assert not self.s.netpoll.thread.is_alive() and not self.s.sysmon.thread.is_alive()
        self.woken: list[tuple[M, bool]] = []
        self.wakeups = 0
        monkeypatch.setattr(idle, "mwake", lambda m, new: self.woken.append((m, new)))
        monkeypatch.setattr(self.s.netpoll, "wakeup", self._wakeup)

    def _wakeup(self) -> None:
        self.wakeups += 1

    def idle_all(self) -> None:
        with self.s.lock:
            for p in self.s.allp:
                pidleput(self.s, p)

    def idle_m(self) -> M:
        m = M(len(self.s.allm), 0)
        self.s.allm.append(m)
        self.s.midle.append(m)
        self.s.nmidle += 1
        return m


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Rig]:
    r = Rig(2, monkeypatch)
    yield r
    r.s.netpoll.backend.fds.clear()
    r.s.netpoll.close()


def test_pidle_is_lifo_and_counted(rig: Rig) -> None:
    s = rig.s
    p0, p1 = s.allp
    with s.lock:
        pidleput(s, p0)
        pidleput(s, p1)
        assert s.npidle == 2 and s.pidle == [p0, p1]
        assert pidleget(s) is p1 and s.npidle == 1
        assert pidleget(s) is p0 and s.npidle == 0
        assert pidleget(s) is None and s.npidle == 0


def test_pidleput_refuses_a_p_with_work_or_not_idle(rig: Rig) -> None:
    s = rig.s
    p = s.allp[0]
    p.runq.append(mkg(1))
    with s.lock, pytest.raises(Throw, match="pidleput: P 0 has a non-empty run queue"):
        pidleput(s, p)
    p.runq.clear()
    p.runnext = mkg(2)
    with s.lock, pytest.raises(Throw, match="pidleput: P 0 has a non-empty run queue"):
        pidleput(s, p)
    p.runnext = None
    p.status = PStatus.RUNNING
    with s.lock, pytest.raises(Throw, match="pidleput: P 0 is RUNNING"):
        pidleput(s, p)
    assert s.pidle == [] and s.npidle == 0


@pytest.mark.parametrize(("fds", "armed", "wakeups"), [(True, False, 1), (True, True, 0), (False, False, 0)])
def test_last_p_going_idle_hands_fd_events_to_the_poller(rig: Rig, fds: bool, armed: bool, wakeups: int) -> None:
    s = rig.s
    if fds:
        s.netpoll.backend.fds[99] = object()
    s.netpoll.armed = armed
    with s.lock:
        pidleput(s, s.allp[0])
        assert rig.wakeups == 0  # one P still runs: it polls fds itself
        pidleput(s, s.allp[1])
    assert rig.wakeups == wakeups


def test_acquirep_releasep_transitions(rig: Rig) -> None:
    p = rig.s.allp[0]
    m, other = M(0, 0), M(1, 0)
    acquirep(m, p)
    assert (p.status, p.m, m.p) == (PStatus.RUNNING, m, p)
    with pytest.raises(Throw, match=r"acquirep: P 0 is RUNNING, owned by <M 0"):
        acquirep(other, p)
    assert p.m is m and other.p is None
    with pytest.raises(Throw, match=r"releasep: M 1 does not hold a running P \(None\)"):
        releasep(other)
    assert releasep(m) is p
    assert (p.status, p.m, m.p) == (PStatus.IDLE, None, None)
    with pytest.raises(Throw, match=r"releasep: M 0 does not hold a running P \(None\)"):
        releasep(m)
    p.status = PStatus.SYSCALL
    with pytest.raises(Throw, match="acquirep: P 0 is SYSCALL, owned by None"):
        acquirep(m, p)
    assert m.p is None and p.m is None
    p.status = PStatus.IDLE
    acquirep(m, p)
    p.m = other  # the P moved on (a retake) but m still points at it
    with pytest.raises(Throw, match="releasep: M 0 does not hold a running P"):
        releasep(m)
    assert p.status is PStatus.RUNNING and m.p is p


@pytest.mark.parametrize(("spinning", "idlep"), [(1, True), (0, False)])
def test_wakep_starts_no_m_while_one_spins_or_no_p_is_idle(rig: Rig, spinning: int, idlep: bool) -> None:
    s = rig.s
    if idlep:
        rig.idle_all()
    s.nmspinning = spinning
    wakep(s)
    assert rig.woken == [] and s.allm == [] and s.nmspinning == spinning and s.nspinstart == 0
    assert s.npidle == (2 if idlep else 0)


def test_wakep_registers_a_new_spinning_m_with_an_idle_p(rig: Rig) -> None:
    s = rig.s
    rig.idle_all()
    p1 = s.allp[1]
    wakep(s)
    assert len(s.allm) == 1
    m = s.allm[0]
    assert rig.woken == [(m, True)] and m.nextp is p1 and m.spinning is True
    assert s.nmspinning == 1 and s.nspinstart == 1 and s.npidle == 1 and s.pidle == [s.allp[0]]
    assert m.thread is not None and m.thread.name == "mn-M0" and not m.thread.is_alive()
    wakep(s)  # one spinner at a time
    assert len(rig.woken) == 1 and s.nmspinning == 1


def test_wakep_prefers_an_idle_m(rig: Rig) -> None:
    s = rig.s
    rig.idle_all()
    m = rig.idle_m()
    wakep(s)
    assert rig.woken == [(m, False)] and s.midle == [] and s.nmidle == 0 and len(s.allm) == 1
    assert m.nextp is s.allp[1] and m.spinning is True and s.nmspinning == 1


def test_startm_without_an_idle_p_gives_the_spinning_count_back(rig: Rig) -> None:
    s = rig.s
    m = rig.idle_m()
    s.nmspinning = 1  # the caller counted the M it wanted as spinning
    idle.startm(s, None, True)
    assert rig.woken == [] and s.nmspinning == 0 and s.midle == [m] and m.nextp is None


def test_spinning_count_changes_only_through_idle(rig: Rig) -> None:
    """startspinning/dropspinning count an M in and out of nmspinning (with its own flag), a
    count that would go negative throws, and pidlegetspinning takes an idle P and counts its M
    in one hold, or nothing when no P is idle."""
    s = rig.s
    m = M(0, 0)
    idle.startspinning(s, m)
    assert m.spinning and s.nmspinning == 1
    idle.dropspinning(s, m)
    assert not m.spinning and s.nmspinning == 0
    with pytest.raises(Throw, match="negative nmspinning"):
        idle.dropspinning(s, m)
    s.nmspinning = 0
    assert idle.pidlegetspinning(s) is None and s.nmspinning == 0
    rig.idle_all()
    p = idle.pidlegetspinning(s)
    assert p is s.allp[1] and s.nmspinning == 1 and s.npidle == 1  # the idle list is LIFO


def test_startm_while_stopping_gives_the_spinning_count_back(rig: Rig) -> None:
    s = rig.s
    rig.idle_all()
    s.stopping = True
    s.nmspinning = 1  # the caller counted the M it wanted as spinning
    idle.startm(s, None, True)
    assert rig.woken == [] and s.nmspinning == 0 and s.npidle == 2


def test_handoffp_starts_an_m_for_a_p_with_work(rig: Rig) -> None:
    s = rig.s
    p = s.allp[0]
    p.runnext = mkg(1)
    m = rig.idle_m()
    handoffp(s, p, "syscall")
    assert rig.woken == [(m, False)] and m.nextp is p and m.spinning is False
    assert s.nhandoff == 1 and s.nmspinning == 0 and s.pidle == []


def test_handoffp_starts_an_m_when_the_global_queue_has_work(rig: Rig) -> None:
    s = rig.s
    with s.lock:
        s.runq.put(mkg(1))
    handoffp(s, s.allp[0], "syscall")
    assert len(s.allm) == 1 and rig.woken == [(s.allm[0], True)]
    assert s.allm[0].nextp is s.allp[0] and s.allm[0].spinning is False


@pytest.mark.parametrize("who", ["idle P", "spinning M"])
def test_handoffp_idles_an_empty_p_when_someone_can_find_work(rig: Rig, who: str) -> None:
    s = rig.s
    p0, p1 = s.allp
    if who == "idle P":
        with s.lock:
            pidleput(s, p1)
    else:
        s.nmspinning = 1
    handoffp(s, p0, "syscall")
    assert rig.woken == [] and s.allm == [] and s.nhandoff == 1
    assert s.pidle == ([p1, p0] if who == "idle P" else [p0]) and s.npidle == len(s.pidle)
    assert s.nmspinning == (0 if who == "idle P" else 1)


def test_handoffp_starts_a_spinner_when_nobody_else_would_look(rig: Rig) -> None:
    s = rig.s
    p = s.allp[0]
    handoffp(s, p, "syscall")  # no spinner and no idle P: the P is handed to a spinning M
    assert len(s.allm) == 1
    m = s.allm[0]
    assert rig.woken == [(m, True)] and m.nextp is p and m.spinning is True
    assert s.nmspinning == 1 and s.pidle == [] and s.npidle == 0


def waitingg(gid: int) -> G:
    g = mkg(gid)
    casgstatus(g, GStatus.RUNNABLE, GStatus.RUNNING)
    casgstatus(g, GStatus.RUNNING, GStatus.WAITING)
    g.waitreason = WaitReason.CHAN_RECEIVE
    return g


def quiet(rig: Rig, nm: int = 2) -> Sched:
    """quiet: every M idle, nothing queued, two Gs parked on a channel (ids 2, then 1)."""
    s = rig.s
    for _ in range(nm):
        rig.idle_m()
    s.allgs.add(waitingg(2))
    s.allgs.add(waitingg(1))
    return s


def test_checkdead_reports_a_deadlock_listing_every_g(rig: Rig) -> None:
    s = quiet(rig)
    with s.lock:
        dead = checkdead(s)
    assert isinstance(dead, Deadlock)
    assert str(dead).startswith("all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive, ")
    assert [x.split(" [")[0] for x in dead.goroutines] == ["goroutine 1", "goroutine 2"]
    assert all("[chan receive, " in x for x in dead.goroutines)


def test_checkdead_is_silent_while_an_m_runs_or_none_exists(rig: Rig) -> None:
    s = rig.s
    s.allgs.add(waitingg(1))
    with s.lock:
        assert checkdead(s) is None  # no M yet: main is not queued
    rig.idle_m()
    s.allm.append(M(1, 0))  # a running M (or one in a syscall)
    with s.lock:
        s.runq.put(mkg(5))  # even queued work is fine: that M will find it
        assert checkdead(s) is None
    s.stopping = True
    s.allm.pop()
    with s.lock:
        assert checkdead(s) is None  # stopping: the outcome is decided already


def test_checkdead_throws_on_queued_work_with_every_m_idle(rig: Rig) -> None:
    s = quiet(rig)
    s.netpoll.busy = True  # no excuse: whoever queued it should have started an M
    with s.lock:
        s.runq.putbatch([mkg(5), mkg(6)])
        with pytest.raises(Throw, match="checkdead: 2 runnable goroutines on the global queue but no M running"):
            checkdead(s)


def test_checkdead_throws_with_no_goroutines_left(rig: Rig) -> None:
    s = rig.s
    rig.idle_m()
    with s.lock, pytest.raises(Throw, match="checkdead: no goroutines left but the runtime was not stopped"):
        checkdead(s)


@pytest.mark.parametrize("why", ["poller busy", "sysmon polling", "timer", "fd waiter", "future"])
def test_checkdead_waits_for_whatever_can_still_wake_a_g(rig: Rig, monkeypatch: pytest.MonkeyPatch, why: str) -> None:
    s = quiet(rig)
    if why == "poller busy":
        s.netpoll.busy = True
    elif why == "sysmon polling":
        s.sysmon.polling = True
    elif why == "timer":
        s.timers.add(Timer(print, None), 1e9)
    elif why == "fd waiter":
        monkeypatch.setattr(s.netpoll, "waiting", lambda: True)
    else:
        monkeypatch.setattr(idle, "nfuturewait", 1)
    with s.lock:
        assert checkdead(s) is None
    assert rig.wakeups == 0


def test_checkdead_under_virtual_time_moves_the_clock_instead(rig: Rig) -> None:
    s = quiet(rig)
    vc = VirtualClock(10.0)
    s.timers.set_clock(vc)
    s.timers.add(Timer(print, None), 40.0)
    s.timers.add(Timer(print, None), 25.0)
    with s.lock:
        assert checkdead(s) is None
    assert (vc.now(), vc.jumps, vc.fire, rig.wakeups) == (25.0, 1, True, 1)


def test_checkdead_under_virtual_time_watches_fds_before_jumping(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    s = quiet(rig)
    vc = VirtualClock(10.0)
    s.timers.set_clock(vc)
    s.timers.add(Timer(print, None), 25.0)
    monkeypatch.setattr(s.netpoll, "waiting", lambda: True)
    with s.lock:
        assert checkdead(s) is None
    assert (vc.now(), vc.jumps, vc.fire, vc.wantquiet, rig.wakeups) == (10.0, 0, False, True, 1)
    s.netpoll.fdquiet = True  # the poller's quiet watch saw nothing
    with s.lock:
        assert checkdead(s) is None
    assert (vc.now(), vc.jumps, vc.fire, rig.wakeups) == (25.0, 1, True, 2)


def test_lockcheck_asserts_sched_lock_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under MN_DEBUG=lockcheck=1 (a Sched made with checking on has CheckedLocks) each function
    whose docstring says "sched.lock held" checks it."""
    _lock.configure(True)
    try:
        r = Rig(1, monkeypatch)
        s: Any = r.s
        p: P = s.allp[0]
        try:
            for fn, args in ((pidleput, (s, p)), (pidleget, (s,)), (checkdead, (s,))):
                with pytest.raises(Throw, match=f"{fn.__name__}: called without sched.lock held"):
                    fn(*args)
            assert s.npidle == 0 and s.pidle == []
            with s.lock:
                pidleput(s, p)
                assert pidleget(s) is p
        finally:
            s.netpoll.close()
    finally:
        _lock.configure(False)
