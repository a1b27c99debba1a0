"""pollDesc state machine and epoll backend, driven by hand without Ms (design guide habit 10).

netpollblock is a coroutine: sending None runs it to its PARK trap (or to the end, when it need
not park); the test then plays the M's part (status WAITING, run the commit) and the waker's part
(netpollready, setdeadline, evict)."""

from __future__ import annotations

import contextvars
import functools
import os
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from mn_runtime._rt import polldesc as pdm
from mn_runtime._rt.g import G, GStatus, casgstatus
from mn_runtime._rt.netpoll import MODE_READ, MODE_WRITE
from mn_runtime._rt.netpoll_epoll import EpollBackend
from mn_runtime._rt.polldesc import PD_READY, PD_WAIT, PollDesc, netpollblock, netpollready
from mn_runtime._rt.traps import PARK
from mn_runtime.errors import Throw


async def _nothing() -> None:
    pass


_gid = 0


def mkg() -> G:
    global _gid
    _gid += 1
    coro = _nothing()
    coro.close()
    g = G(_gid, coro, contextvars.copy_context(), "t")
    casgstatus(g, GStatus.RUNNABLE, GStatus.RUNNING)
    return g


def mkpd() -> PollDesc:
    sched: Any = SimpleNamespace(lock=threading.Lock(), netpoll=SimpleNamespace(busy=False))
    return PollDesc(99, sched)


def start_block(pd: PollDesc, mode: int, g: G) -> tuple[Any, bool]:
    """start_block runs netpollblock to its park; returns (coro, parked) after the M's part."""
    coro = netpollblock(pd, mode)
    trap = coro.send(None)
    assert trap[0] is PARK
    casgstatus(g, GStatus.RUNNING, GStatus.WAITING)
    parked = trap[1](g, trap[2])
    if not parked:
        casgstatus(g, GStatus.WAITING, GStatus.RUNNABLE)
    return coro, parked


def finish(coro: Any) -> bool:
    with pytest.raises(StopIteration) as ei:
        coro.send(None)
    return ei.value.value


def test_ready_before_wait_is_consumed_without_parking() -> None:
    pd = mkpd()
    glist: list[G] = []
    netpollready(glist, pd, MODE_READ)
    assert pd.rg is PD_READY and pd.wg is None and glist == []
    assert finish(netpollblock(pd, MODE_READ)) is True
    assert pd.rg is None


def test_park_then_ready_counts_waiters() -> None:
    pd = mkpd()
    g = mkg()
    coro, parked = start_block(pd, MODE_READ, g)
    assert parked and pd.rg is g and pdm.netpollwaiting([pd])
    glist: list[G] = []
    netpollready(glist, pd, MODE_READ | MODE_WRITE)
    assert glist == [g] and g.status == GStatus.RUNNABLE
    assert pd.rg is PD_READY and pd.wg is PD_READY and not pdm.netpollwaiting([pd])
    assert finish(coro) is True
    assert pd.rg is None and pd.wg is PD_READY


def test_ready_between_block_and_commit_resumes_at_once() -> None:
    pd = mkpd()
    g = mkg()
    coro = netpollblock(pd, MODE_WRITE)
    trap = coro.send(None)
    assert pd.wg is PD_WAIT
    glist: list[G] = []
    netpollready(glist, pd, MODE_WRITE)  # the fd event lands before the M runs the commit
    assert glist == [] and pd.wg is PD_READY
    casgstatus(g, GStatus.RUNNING, GStatus.WAITING)
    assert trap[1](g, trap[2]) is False
    assert not pdm.netpollwaiting([pd])
    assert finish(coro) is True


def test_double_wait_throws() -> None:
    pd = mkpd()
    start_block(pd, MODE_READ, mkg())
    with pytest.raises(Throw, match="netpollblock: double wait"):
        netpollblock(pd, MODE_READ).send(None)
    # The other direction is independent.
    _, parked = start_block(pd, MODE_WRITE, mkg())
    assert parked and pdm.netpollwaiting([pd])


def test_past_deadline_fails_without_parking_and_clearing_restores() -> None:
    pd = mkpd()
    pdm.setdeadline(pd, MODE_READ, time.monotonic() - 1)
    assert pd.rd == -1 and pdm.netpollcheckerr(pd, MODE_READ) == pdm.POLL_ERR_TIMEOUT
    assert pdm.netpollcheckerr(pd, MODE_WRITE) == pdm.POLL_NO_ERROR
    assert finish(netpollblock(pd, MODE_READ)) is False
    assert pd.rg is None
    pdm.setdeadline(pd, MODE_READ, None)
    assert pdm.netpollcheckerr(pd, MODE_READ) == pdm.POLL_NO_ERROR


def test_deadline_in_past_wakes_parked_g() -> None:
    pd = mkpd()
    g = mkg()
    coro, parked = start_block(pd, MODE_READ, g)
    assert parked
    pdm.setdeadline(pd, MODE_READ | MODE_WRITE, time.monotonic() - 1)
    assert g.status == GStatus.RUNNABLE and not pdm.netpollwaiting([pd])
    assert finish(coro) is False
    assert pdm.netpollcheckerr(pd, MODE_READ) == pdm.POLL_ERR_TIMEOUT
    assert pdm.netpollcheckerr(pd, MODE_WRITE) == pdm.POLL_ERR_TIMEOUT


def test_stale_deadline_timer_does_nothing() -> None:
    pd = mkpd()
    g = mkg()
    start_block(pd, MODE_READ, g)
    stale = (pd, MODE_READ, pd.rseq)
    pdm.setdeadline(pd, MODE_READ, None)  # moves the sequence on
    pdm._deadlinefired(stale)
    assert pd.rg is g and pd.rd == 0 and g.status == GStatus.WAITING
    pdm._deadlinefired((pd, MODE_READ, pd.rseq))  # the current sequence does fire
    assert pd.rg is None and pd.rd == -1 and g.status == GStatus.RUNNABLE


def test_evict_wakes_both_directions_and_close_checks_waiters() -> None:
    pd = mkpd()
    gr, gw = mkg(), mkg()
    cr, _ = start_block(pd, MODE_READ, gr)
    cw, _ = start_block(pd, MODE_WRITE, gw)
    with pytest.raises(Throw, match="pollclose: fd 99 closed without evict"):
        pdm.pollclose(pd)
    pdm.evict(pd)
    assert gr.status == GStatus.RUNNABLE and gw.status == GStatus.RUNNABLE
    assert not pdm.netpollwaiting([pd])
    assert finish(cr) is False and finish(cw) is False
    assert pdm.netpollcheckerr(pd, MODE_READ) == pdm.POLL_ERR_CLOSING
    # A wait after close does not park.
    assert finish(netpollblock(pd, MODE_READ)) is False


def test_pollclose_with_waiter_throws() -> None:
    pd = mkpd()
    start_block(pd, MODE_READ, mkg())
    with pd.lock:
        pd.closing = True  # evict skipped on purpose
    with pytest.raises(Throw, match="closed with a waiter"):
        pdm.pollclose(pd)


# --- the epoll backend: stale events for a closed and reused fd ---


class _Hooked:
    """Wraps an epoll object; runs `hook` after epoll_wait returned, before events are handled."""

    def __init__(self, ep: Any, hook: Any) -> None:
        self.ep = ep
        self.hook = hook

    def poll(self, timeout: float, maxevents: int) -> list[tuple[int, int]]:
        ev = self.ep.poll(timeout, maxevents)
        if self.hook is not None:
            h, self.hook = self.hook, None
            h()
        return ev

    def __getattr__(self, name: str) -> Any:
        return getattr(self.ep, name)


@pytest.mark.parametrize("genuine", [False, True])
def test_reused_fd_gets_no_stale_event_and_keeps_genuine_ones(genuine: bool) -> None:
    be = EpollBackend()
    a1, a2 = socket.socketpair()
    b1 = b2 = None
    try:
        a1.setblocking(False)
        pda = PollDesc(a1.fileno())
        be.register(a1.fileno(), pda)
        glist: list[G] = []
        be.collect(glist)  # the first writable edge of a1
        pda.wg = None
        a2.send(b"old")  # a1 readable: an event for the old holder of the number is queued
        fdnum = a1.fileno()
        pdb: list[PollDesc] = []

        def reuse() -> None:
            nonlocal b1, b2
            be.deregister(fdnum, pda)
            a1.close()
            b1, b2 = socket.socketpair()
            if b1.fileno() != fdnum:  # make the new socket take the old number
                os.dup2(b1.fileno(), fdnum)
                b1.close()
                b1 = socket.socket(fileno=fdnum)
            b1.setblocking(False)
            pd = PollDesc(fdnum)
            be.register(fdnum, pd)
            pdb.append(pd)
            if genuine:
                b2.send(b"new")

        ep = be.ep
        be.ep = _Hooked(ep, reuse)  # type: ignore[assignment]
        be.collect(glist)
        be.ep = ep
        pd = pdb[0]
        assert pd.rg is None, "an event of the fd's previous holder reached the new pollDesc"
        assert be.nstale >= 1
        be.collect(glist)  # the re-armed fd reports what is genuinely ready now
        assert pd.wg is PD_READY, "the new socket's writable edge was lost"
        assert (pd.rg is PD_READY) == genuine
        assert glist == []
    finally:
        for s in (a1, a2, b1, b2):
            if s is not None:
                s.close()
        be.close()


def test_event_of_fd_registered_during_a_wait_is_not_lost() -> None:
    """An fd registered while another thread sits in epoll_wait (between collect noting regseq and
    the wait returning): its first edge comes back in that wait, is ambiguous (it could be the old
    holder's), and must reach the pollDesc one poll later."""

    class _Before(_Hooked):
        def poll(self, timeout: float, maxevents: int) -> list[tuple[int, int]]:
            h, self.hook = self.hook, None
            if h is not None:
                h()
            return self.ep.poll(timeout, maxevents)

    for _ in range(3):
        be = EpollBackend()
        s1, s2 = socket.socketpair()
        try:
            s1.setblocking(False)
            pd = PollDesc(s1.fileno())
            glist: list[G] = []
            ep = be.ep
            be.ep = _Before(ep, functools.partial(be.register, s1.fileno(), pd))  # type: ignore[assignment]
            be.collect(glist)
            be.ep = ep
            assert pd.wg is None and be.nstale == 1, "an ambiguous event was delivered"
            be.collect(glist)
            assert pd.wg is PD_READY, "the first writable edge of a freshly registered fd was lost"
        finally:
            s1.close()
            s2.close()
            be.close()
