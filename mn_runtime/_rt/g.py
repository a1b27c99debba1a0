"""g: the goroutine (G), its status machine, and the reasons it waits (Go's runtime2.go).

States (GStatus), one paragraph each, as runtime2.go documents them:

IDLE      Go's _Gidle: allocated, not yet started. No G is ever seen in it here: newproc builds a G
          RUNNABLE, because it publishes the G (allgs, a run queue) only as it queues it.
RUNNABLE  on a run queue (a P's runnext or ring, or the global queue) or in a batch being moved
          between them; not running, owned by whichever queue holds it.
RUNNING   its coroutine is being stepped by an M that holds a P; only that M touches it.
SYSCALL   its M is inside a blocking call made through `syscall()`, without a P it owns.
WAITING   parked by gopark: on a wait queue, a timer or a pollDesc, with `waitreason` saying which.
          Exactly one goready moves it back to RUNNABLE.
DEAD      its coroutine returned, raised, or was abandoned when run() ended.

Every change of `status` names the state it moves from and throws on a mismatch, naming both states
(Go's casgstatus / throw). Where two threads may attempt the same move, the check and the write
are made under the G's lock (`casgstatus`, goready's WAITING -> RUNNABLE, goexit's RUNNING -> DEAD
with its joiners): that is what makes a double goready an error rather than a lost G, with or
without the GIL. The two moves only the G's owner can make skip the lock but not the check:
RUNNABLE -> RUNNING in execute (the M that took the G off a queue owns it) and RUNNING -> WAITING
when it parks (the M running it). No other thread may write `status` then; a buggy second writer
(a double goready) checks under the lock and finds RUNNABLE or RUNNING, not WAITING, and throws;
and the lock the M took the G under (a run queue's), or the park's commit lock, orders the write
before any other thread's next read. The one exception to the check is `abandon`, which marks a
G DEAD from any state when the runtime ends and no M will run it again.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Coroutine
from contextvars import Context
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import Throw
from . import lock as _lock
from .lock import CheckedLock

_newlock = threading.Lock

if TYPE_CHECKING:
    from .m import M
    from .sema import JoinLot
    from .waitq import Sudog

__all__ = ["G", "GStatus", "WaitReason", "badgstatus", "casgstatus", "valid_transition"]


class GStatus(enum.IntEnum):
    IDLE = 0
    RUNNABLE = 1
    RUNNING = 2
    SYSCALL = 3
    WAITING = 4
    DEAD = 5


class WaitReason(enum.StrEnum):
    """Why a G is WAITING; the values are Go's texts where Go has one."""

    ZERO = ""
    CHAN_RECEIVE = "chan receive"
    CHAN_SEND = "chan send"
    CHAN_RECEIVE_NIL = "chan receive (nil chan)"
    CHAN_SEND_NIL = "chan send (nil chan)"
    SELECT = "select"
    SELECT_NO_CASES = "select (no cases)"
    SLEEP = "sleep"
    IO_WAIT = "IO wait"
    SYNC_MUTEX_LOCK = "sync.Mutex.Lock"
    SYNC_RWMUTEX_RLOCK = "sync.RWMutex.RLock"
    SYNC_RWMUTEX_LOCK = "sync.RWMutex.Lock"
    SYNC_COND_WAIT = "sync.Cond.Wait"
    SYNC_WAITGROUP_WAIT = "sync.WaitGroup.Wait"
    SYNC_ONCE = "sync.Once.Do"
    SEMACQUIRE = "semacquire"
    JOIN = "goroutine join"
    FUTURE = "future"
    FOREVER = "forever"


# _VALID[old] is a bit set of the states `old` may move to.
_VALID: list[int] = [0] * len(GStatus)


def _allow(old: GStatus, *news: GStatus) -> None:
    for new in news:
        _VALID[old] |= 1 << new


_allow(GStatus.RUNNABLE, GStatus.RUNNING)
_allow(GStatus.RUNNING, GStatus.RUNNABLE, GStatus.WAITING, GStatus.SYSCALL, GStatus.DEAD)
_allow(GStatus.SYSCALL, GStatus.RUNNING, GStatus.RUNNABLE)
_allow(GStatus.WAITING, GStatus.RUNNABLE)


class G:
    """G is a goroutine: a coroutine plus the scheduling state the runtime keeps about it.

    Users see it through `mn_runtime.Goroutine` (runtime.py), a handle with `id`, `name`, `done`
    and `join()`, which parks on this G's join lot (sema.JoinLot).
    Fields more than one thread may write (`joiners`, `result`, and `status` outside its owner's
    moves, see above) change only under `lock`.
    """

    __slots__ = (
        "__weakref__",
        "coro",
        "createdat",
        "createdpc",
        "ctx",
        "id",
        "joiners",
        "lock",
        "m",
        "name",
        "param",
        "parentid",
        "preempt",
        "readiedby",
        "result",
        "resume",
        "runnabletime",
        "selectdone",
        "status",
        "sudog",
        "traceseq",
        "waitreason",
        "waitsince",
    )

    def __init__(
        self,
        gid: int,
        coro: Coroutine[Any, Any, Any],
        ctx: Context,
        name: str,
        createdat: Any = "",
        createdpc: int = 0,
        parentid: int = 0,
    ) -> None:
        self.id = gid
        self.coro: Coroutine[Any, Any, Any] | None = coro
        self.ctx = ctx
        self.status = RUNNABLE  # see IDLE above: unpublished until newproc queues it
        # A plain lock unless lock checking is on: one global read, not a call, per G.
        self.lock = CheckedLock(_lock.LOCKS["g.lock"], "g.lock") if _lock.lockcheck else _newlock()
        self.waitreason = ZERO_REASON
        self.waitsince = 0.0
        self.m: M | None = None
        # param carries a value from the G that readies this one (Go's gp.param), e.g. the sudog
        # that won a select. Written before goready, read after the park returns.
        self.param: Any = None
        # resume: None, or the (value, exception) the next resume sends or throws into the
        # coroutine (a syscall's outcome held while the G waits for a P, or over a preemption);
        # one field, so execute checks one thing per resume. Owned by whichever M holds the G.
        self.resume: tuple[Any, BaseException | None] | None = None
        # preempt is set by sysmon when the G ran over its time slice; runtime calls check it and
        # yield (cooperative preemption). A racy flag by design: a late read only delays the yield.
        self.preempt = False
        self.result: Any = None
        # joiners: the parking lot of the Gs parked in join() on this G (sema.JoinLot): None until
        # the first join has to wait, then the lot, then EXITED once the G has finished (guarded
        # by lock). No lot until someone waits: most Gs are never joined, or only once finished.
        self.joiners: JoinLot | tuple[()] | None = None
        self.parentid = parentid
        # createdat, createdpc: where go() was called, as the caller's code object and instruction
        # offset (two fields, not a tuple: one object less per G), or a label ("run") and 0;
        # stack.createdat_text renders them.
        self.createdat: Any = createdat
        self.createdpc = createdpc
        self.name = name
        # selectdone is the "first waker wins" flag of a select in progress (Go's g.selectDone):
        # a Lock taken with acquire(blocking=False) is an atomic test-and-set without the GIL.
        self.selectdone: threading.Lock | None = None
        self.traceseq = 0
        self.readiedby = 0
        # runnabletime: when the G last became runnable; written only by an active tracer (before
        # the G is queued, so the queue's lock orders it before the M that runs the G reads it).
        self.runnabletime = 0.0
        # sudog: this G's cached sudog for channel waits (waitq.acquire_sudog); only it touches it.
        self.sudog: Sudog | None = None

    @property
    def done(self) -> bool:
        """True once the goroutine's function has returned (or the runtime abandoned it)."""
        return self.status == GStatus.DEAD

    def __repr__(self) -> str:
        return f"<G {self.id} {self.name} {self.status.name.lower()}>"


# ZERO_REASON: a running or runnable G's wait reason, as a module constant (one global load).
ZERO_REASON = WaitReason.ZERO

# EXITED in G.joiners: the G has finished; join() returns its result at once, and its join lot,
# if it had one, now belongs to goexit alone (sema.JoinLot).
EXITED: tuple[()] = ()

# Module constants for the hot path: an Enum class attribute lookup costs more than the transition.
IDLE = GStatus.IDLE
RUNNABLE = GStatus.RUNNABLE
RUNNING = GStatus.RUNNING
SYSCALL = GStatus.SYSCALL
WAITING = GStatus.WAITING
DEAD = GStatus.DEAD


def casgstatus(gp: G, old: GStatus, new: GStatus) -> None:
    """casgstatus moves gp from old to new, or throws if gp is not in old (Go's casgstatus).

    Every call passes two of the module constants above, and tests/test_runq.py checks each call
    site's pair against _VALID: an illegal move is a bug in the call site, found once by the test,
    so the hot path checks only what can differ at run time (the current state).

    The three moves of every park/ready cycle inline this body, because a Python call costs as
    much as the rest of it: WAITING -> RUNNABLE in park.goready and park.goready_into (every fd
    event's G) and RUNNING -> DEAD in sched.goexit (under the same lock hold as the result) with
    the lock, the owner's moves RUNNABLE -> RUNNING and RUNNING -> WAITING in sched.execute
    without it (see the module docstring). Each copy ends in badgstatus on a mismatch, and the
    same test holds those sites to the same table.
    """
    lock = gp.lock
    lock.acquire()
    if gp.status is not old:
        lock.release()
        badgstatus(gp, old, new)
    gp.status = new
    lock.release()


def badgstatus(gp: G, old: GStatus, new: GStatus) -> NoReturn:
    """badgstatus throws for a move from old to new that found gp in another state."""
    raise Throw(f"casgstatus: goroutine {gp.id}: bad transition {old.name} -> {new.name} (status is {gp.status.name})")


def valid_transition(old: GStatus, new: GStatus) -> bool:
    """valid_transition: may a G move from old to new? (the table casgstatus's callers obey)"""
    return bool((_VALID[old] >> new) & 1)


def abandon(gp: G) -> None:
    """abandon marks gp DEAD from whatever state it is in, and drops its joiners: the one status
    change outside casgstatus, made only when the runtime ends (a goroutine's exception ends it,
    or run() returns) and no M will step gp again. Its sudogs' references back to it are
    dropped (as goexit does), so the G is freed by reference counting once its coroutine is closed."""
    with gp.lock:
        gp.status = GStatus.DEAD
        gp.joiners = EXITED
    gp.sudog = None
    gp.param = None
