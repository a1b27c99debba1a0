"""syscall: running a blocking call on an M without blocking the P (Go's entersyscall/exitsyscall).

entersyscall moves the G to SYSCALL and the P to SYSCALL: the M no longer owns the P but remembers
it (m.oldp). If the call is short, exitsyscall takes the same P back (SYSCALL -> RUNNING under the
P's lock) and the G goes on as if nothing happened. If it is long, sysmon retakes the P
(SYSCALL -> IDLE) and hands it off (handoffp) so other Gs keep running; this M then outnumbers the
Ps. On return such an M tries any idle P, and failing that puts its G on the global queue and
sleeps (exitsyscall0).

While the call runs this thread holds no P, so it must not touch run queues; the call itself is
user code that normally releases the GIL (I/O, hashlib, time.sleep, C extensions).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .g import RUNNABLE, RUNNING, SYSCALL, G, casgstatus
from .idle import acquirep, pidleget, stopm
from .p import PStatus

if TYPE_CHECKING:
    from .m import M
    from .sched import Sched


def syscall(
    sched: Sched, m: M, gp: G, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bool, Any, BaseException | None]:
    """syscall runs fn for gp on m: (keep running gp on m?, result, exception)."""
    entersyscall(sched, m, gp)
    result: Any = None
    exc: BaseException | None = None
    try:
        result = fn(*args, **kwargs)
    except BaseException as e:  # delivered into the G, which may handle it
        exc = e
    return exitsyscall(sched, m, gp, result, exc), result, exc


def entersyscall(sched: Sched, m: M, gp: G) -> None:
    """entersyscall: gp RUNNING -> SYSCALL, m's P -> SYSCALL; m keeps it as oldp."""
    p = m.p
    assert p is not None
    casgstatus(gp, RUNNING, SYSCALL)
    with p.lock:
        p.syscalltick += 1
        p.status = PStatus.SYSCALL
        p.m = None
    m.p = None
    m.oldp = p
    m.insyscall = True
    m.nsyscall += 1
    tr = sched.tracer
    if tr is not None:
        tr.go_syscall(m, gp)
    sched.sysmon.note_syscall()


def exitsyscall(sched: Sched, m: M, gp: G, result: Any = None, exc: BaseException | None = None) -> bool:
    """exitsyscall gives m a P to go on running gp; False if gp went to the global queue instead.

    False also when the runtime stopped meanwhile: gp is then abandoned, as every other G.
    """
    m.insyscall = False
    p = m.oldp
    m.oldp = None
    assert p is not None
    tr = sched.tracer
    with p.lock:
        fast = p.status == PStatus.SYSCALL
        if fast:
            p.status = PStatus.RUNNING
            p.m = m
    if fast:
        m.p = p
        if sched.stopping:
            # run() is ending: gp is abandoned with every other G and never resumed, whether or
            # not sysmon retook the P during the call (find_runnable releases the P).
            m.curg = None
            return False
        casgstatus(gp, SYSCALL, RUNNING)
        if sched.chaos is not None:
            sched.chaos.after_syscall(gp)
        if tr is not None:
            tr.go_sysexit(m, gp, False)
        return True
    # sysmon took the P away (exitsyscallfast_pidle, then exitsyscall0). Taking an idle P and,
    # failing that, queueing gp happen in one sched.lock hold, as in Go's exitsyscall0: a P that
    # goes idle after this hold looks at the global queue under the same lock first (the tail of
    # find_runnable), and one that went idle before it is on the idle list. In two holds, the last
    # running M could go idle between them and gp would sit on the global queue with no M awake.
    brk = 0
    with sched.lock:
        stopping = sched.stopping
        np = None if stopping else pidleget(sched)
        if not stopping and np is None:
            m.curg = None
            casgstatus(gp, SYSCALL, RUNNABLE)
            # The G resumes on another M later: its outcome travels with it (execute sends or
            # throws gp.resume), written before the queue publishes the G.
            gp.resume = (result, exc)
            if tr is not None:
                tr.go_sysexit(m, gp, True)  # before another M can start gp (the tracer's locks are leaves)
            sched.runq.put(gp)
            brk = sched.mpolling
    if stopping:
        # run() is ending (after Ctrl-C it may have given up on this M and abandoned gp already,
        # so gp's status is not ours to move): leave gp alone, as the fast path does.
        m.curg = None
        return False
    if np is not None:
        acquirep(m, np)
        casgstatus(gp, SYSCALL, RUNNING)
        if tr is not None:
            tr.go_sysexit(m, gp, True)
        return True
    if brk:
        sched.netpoll.backend.mbreak()  # the M keeping the last P waits in epoll: gp is its work
    stopm(sched, m)  # on return m holds a P for find_runnable, or the runtime stops
    return False
