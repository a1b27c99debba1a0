"""group: structured concurrency for goroutines (Go's golang.org/x/sync/errgroup).

    async with mn.Group(limit=8) as g:
        for url in urls:
            g.go(fetch, g.ctx, url)
    # here every goroutine started by g has finished

Each g.go(fn, *args, **kwargs) starts a wrapper goroutine at once (g.go never blocks); with `limit`, the
wrapper first acquires a slot of a FIFO Semaphore, so at most `limit` functions run at a time, in
the order they were started. The wrapper catches whatever fn raises (so it does not end run(), as
an escaping exception would), records it, and on the first one cancels `g.ctx`, which fn should
watch (`g.ctx.done()`) to stop early.

Leaving the `async with` block (or awaiting g.wait()) waits for every goroutine, cancels g.ctx,
and raises the first exception recorded, in order of occurrence. The others are attached to it as
notes (`"also raised in group: ..."`) and are all available, in order, in `g.errors`. If the body
of the block itself raises, g.ctx is cancelled at once, the goroutines are waited for, and the
body's exception propagates (with the goroutines' exceptions as notes).
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any

from . import context as _context
from . import runtime as _runtime
from ._rt import lock as _lock
from ._rt import tls as _tls
from ._rt.tls import tls
from .sync import Semaphore, WaitGroup

__all__ = ["Group"]


class Group:
    """Group(limit=None, parent=None): run goroutines as one unit (errgroup); see the module doc."""

    def __init__(self, limit: int | None = None, parent: _context.Context | None = None) -> None:
        if limit is not None:
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise TypeError(f"Group limit must be an int or None, got {type(limit).__name__}")
            if limit < 1:
                raise ValueError(f"Group limit must be >= 1, got {limit}")
        self.ctx, self._cancel = _context.with_cancel(parent if parent is not None else _context.background())
        self._sem = Semaphore(limit) if limit is not None else None
        self._wg = WaitGroup()
        self._lk = _lock.new("group.lock")
        self.errors: list[BaseException] = []

    def go(self, fn: Callable[..., Awaitable[Any]] | Coroutine[Any, Any, Any], *args: Any, **kwargs: Any) -> None:
        """go starts fn(*args, **kwargs) in a new goroutine of this group (after a free slot, with
        limit). It takes what mn.go() takes, checked by the same code: an async function and its
        arguments, or a coroutine object."""
        s = _tls.cur
        m = tls.m
        if s is None or m is None:
            _runtime._outside(fn, "Group.go")
        coro, name = _runtime._newcoro(fn, args, kwargs, "Group.go")
        wrapper = self._run(coro)
        self._wg.add(1)
        try:
            # Named after fn and created where Group.go was called, not after the wrapper: dumps,
            # deadlock reports and error notes show the user's function.
            f = sys._getframe(1)
            s.newproc(wrapper, name, m, f.f_code, f.f_lasti)
        except BaseException:
            self._wg.done()
            wrapper.close()
            coro.close()
            raise

    async def _run(self, coro: Coroutine[Any, Any, Any]) -> None:
        sem = self._sem
        try:
            if sem is not None:
                try:
                    await sem.acquire()
                except BaseException:  # the run ended while it waited: coro never starts
                    coro.close()
                    raise
            try:
                await coro
            finally:
                if sem is not None:
                    sem.release()
        except Exception as e:  # recorded for the group's owner; BaseException (exit) still ends run()
            with self._lk:
                first = not self.errors
                self.errors.append(e)
            if first:
                self._cancel()
        finally:
            self._wg.done()

    async def wait(self) -> None:
        """wait for every goroutine, cancel ctx, and raise the first exception (others as notes)."""
        await self._wg.wait()
        self._cancel()
        errs = self.errors
        if errs:
            first = errs[0]
            _note_others(first, errs[1:])
            raise first

    async def __aenter__(self) -> Group:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            await self.wait()
            return False
        self._cancel()
        await self._wg.wait()
        _note_others(exc, self.errors)
        return False


def _note_others(exc: BaseException, others: list[BaseException]) -> None:
    for e in others:
        note = f"also raised in group: {type(e).__name__}: {e}"
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)
