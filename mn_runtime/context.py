"""context: cancellation trees (Go's context package) whose done() is an mn Chan.

    ctx, cancel = mn.context.with_cancel(mn.context.background())
    ...
    idx, _, _ = await mn.select(mn.Recv(ctx.done()), mn.Recv(work))
    if isinstance(ctx.err(), mn.context.Canceled): ...

A cancelable context keeps its children in a set under its own lock; cancelling it closes its done
channel, records the error and cancels every child (lock order: parent before child, as Go's
cancelCtx.cancel holds the parent's mutex while cancelling children). A child removes itself from
its parent when cancelled on its own. Deadlines are runtime timers (sched.timers) whose function,
running on the poller thread, cancels the context: closing a channel only readies Gs, never blocks.

`err()` returns None while the context is live, else an exception that says why: a `Canceled`
(cancel() was called, here or on an ancestor) or a `DeadlineExceeded` (the deadline passed), both
defined in mn_runtime.errors (see there for the other errors). Test it with isinstance, or
`raise ctx.err()`; each call returns a new exception, so raising it in several goroutines does not
mix their tracebacks.
"""

from __future__ import annotations

from typing import Any

from . import time as _time
from ._rt import lock as _lock
from ._rt import tls as _tls
from ._rt.timers import Timer
from .chan import Chan
from .errors import Canceled
from .errors import ContextDeadlineExceeded as DeadlineExceeded

__all__ = [
    "Canceled",
    "Context",
    "DeadlineExceeded",
    "background",
    "with_cancel",
    "with_deadline",
    "with_timeout",
    "with_value",
]


# Why a context ended, as recorded (the class; err() makes the exception).
ErrType = type[Canceled] | type[DeadlineExceeded]


class Context:
    """Context carries a done channel, an error once done, an optional deadline, and values."""

    __slots__ = ("parent",)

    def __init__(self, parent: Context | None) -> None:
        self.parent = parent

    def done(self) -> Chan[Any]:
        """done is a channel that is closed when this context is cancelled."""
        assert self.parent is not None
        return self.parent.done()

    def err(self) -> Canceled | DeadlineExceeded | None:
        """err is None until done() is closed, then a Canceled or DeadlineExceeded exception (a new
        one per call)."""
        assert self.parent is not None
        return self.parent.err()

    def deadline(self) -> float | None:
        """deadline is the instant this context expires on mn.now()'s clock, or None."""
        assert self.parent is not None
        return self.parent.deadline()

    def value(self, key: Any) -> Any:
        """value is the value with_value bound to key here or in an ancestor, or None."""
        return self.parent.value(key) if self.parent is not None else None

    def _cancelable(self) -> _CancelCtx | None:
        """_cancelable is the nearest cancelable ancestor-or-self (Go's parentCancelCtx)."""
        return self.parent._cancelable() if self.parent is not None else None


class _Background(Context):
    """_Background is never cancelled. Its done() is a fresh channel that nobody closes (Go's
    nil channel): a fresh one per call, so waiters abandoned in one run() leave nothing behind."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(None)

    def done(self) -> Chan[Any]:
        return Chan()

    def err(self) -> Canceled | DeadlineExceeded | None:
        return None

    def deadline(self) -> float | None:
        return None

    def __repr__(self) -> str:
        return "context.background()"


class _CancelCtx(Context):
    """_CancelCtx can be cancelled; its state (done channel, err, children) is under _lk."""

    __slots__ = ("_children", "_done", "_err", "_lk")

    def __init__(self, parent: Context) -> None:
        super().__init__(parent)
        self._lk = _lock.new("context.lock")
        self._done: Chan[Any] = Chan()
        self._err: ErrType | None = None
        self._children: set[_CancelCtx] | None = set()

    def done(self) -> Chan[Any]:
        return self._done

    def err(self) -> Canceled | DeadlineExceeded | None:
        with self._lk:
            err = self._err
        return err() if err is not None else None

    def _cancelable(self) -> _CancelCtx | None:
        return self

    def _cancel(self, remove: bool, err: ErrType) -> None:
        """_cancel closes done, records err and cancels the children; the first call wins."""
        with self._lk:
            if self._err is not None:
                return
            self._err = err
            children = self._children
            self._children = None
            self._done.close()
        for child in children or ():
            child._cancel(False, err)
        self._stop_timer()
        if remove:
            p = self.parent._cancelable() if self.parent is not None else None
            if p is not None:
                with p._lk:
                    if p._children is not None:
                        p._children.discard(self)

    def _stop_timer(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<context {type(self).__name__.strip('_')} err={self._err.__name__ if self._err else None}>"


class _TimerCtx(_CancelCtx):
    __slots__ = ("_deadline", "_timer")

    def __init__(self, parent: Context, deadline: float) -> None:
        super().__init__(parent)
        self._deadline = deadline
        self._timer: Timer | None = None

    def deadline(self) -> float | None:
        return self._deadline

    def _stop_timer(self) -> None:
        t = self._timer
        s = _tls.cur
        if t is not None and s is not None:
            s.timers.stop(t)


def _propagate(parent: Context, child: _CancelCtx) -> None:
    """_propagate arranges for child to be cancelled with parent (Go's propagateCancel)."""
    p = parent._cancelable()
    if p is None:
        return  # a background-rooted chain never cancels
    with p._lk:
        err = p._err
        if err is None:
            assert p._children is not None
            p._children.add(child)
            return
    child._cancel(False, err)


def _check_parent(parent: object) -> Context:
    if not isinstance(parent, Context):
        raise TypeError(f"context parent must be an mn.context.Context, got {type(parent).__name__}")
    return parent


_background = _Background()


def background() -> Context:
    """background is the root context: never cancelled, no deadline, no values."""
    return _background


class CancelFunc:
    """CancelFunc cancels its context and releases its resources; calling it again does nothing."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: _CancelCtx) -> None:
        self._ctx = ctx

    def __call__(self) -> None:
        self._ctx._cancel(True, Canceled)


def with_cancel(parent: Context) -> tuple[Context, CancelFunc]:
    """with_cancel returns a child of parent and a function that cancels it."""
    ctx = _CancelCtx(_check_parent(parent))
    _propagate(parent, ctx)
    return ctx, CancelFunc(ctx)


def _expire(ctx: _TimerCtx) -> None:
    ctx._cancel(True, DeadlineExceeded)


def with_deadline(parent: Context, deadline: float) -> tuple[Context, CancelFunc]:
    """with_deadline returns a child of parent cancelled with DeadlineExceeded at the instant
    `deadline` on the runtime's clock, mn.now() (time.monotonic() unless under virtual time), or
    earlier if parent's deadline is earlier. math.inf (or 100 years or more away): no deadline of
    its own, as with_cancel. NaN: ValueError; a time.time() value: ValueError (mn_runtime.time)."""
    _check_parent(parent)
    d = _time.deadline("with_deadline()", deadline, _time.now())
    if d is None:
        return with_cancel(parent)
    deadline = d
    pd = parent.deadline()
    if pd is not None and pd <= deadline:
        return with_cancel(parent)  # the parent's deadline fires first anyway (Go)
    s = _tls.cur
    if s is None:
        raise RuntimeError("with_deadline()/with_timeout() need a running runtime: call inside mn_runtime.run(main)")
    ctx = _TimerCtx(parent, float(deadline))
    _propagate(parent, ctx)
    if s.timers.now() >= deadline:
        ctx._cancel(True, DeadlineExceeded)
        return ctx, CancelFunc(ctx)
    with ctx._lk:
        if ctx._err is None:
            t = Timer(_expire, ctx)
            ctx._timer = t
            s.timers.add(t, float(deadline))
    return ctx, CancelFunc(ctx)


def with_timeout(parent: Context, seconds: float) -> tuple[Context, CancelFunc]:
    """with_timeout is with_deadline(parent, mn.now() + seconds); math.inf: no deadline."""
    _check_parent(parent)
    d = _time.duration("with_timeout()", seconds)
    if d is None:
        return with_cancel(parent)
    if _tls.cur is None:
        raise RuntimeError("with_deadline()/with_timeout() need a running runtime: call inside mn_runtime.run(main)")
    return with_deadline(parent, _time.now() + d)


class _ValueCtx(Context):
    __slots__ = ("_key", "_val")

    def __init__(self, parent: Context, key: Any, val: Any) -> None:
        super().__init__(parent)
        self._key = key
        self._val = val

    def value(self, key: Any) -> Any:
        if key == self._key:
            return self._val
        return super().value(key)


def with_value(parent: Context, key: Any, val: Any) -> Context:
    """with_value returns a child of parent whose value(key) is val."""
    return _ValueCtx(_check_parent(parent), key, val)
