"""awaitcheck: reporting a forgotten `await` of the runtime's generator-based awaitables.

`ch.send(v)`, `ch.recv()`, `ch.recv_ok()`, `mn.sleep(s)`, `mn.gosched()` and `mn.syscall(fn)` return
generator-based coroutines (types.coroutine; corofn.py says why: one object per operation on the
hottest paths). Python reports "coroutine ... was never awaited" only for native coroutines, so a
missing `await` in front of these used to do nothing at all, silently.

With the check on, each of them returns an `Op` instead: a small wrapper that remembers where it
was called and, if it is dropped without being awaited, closes the operation and issues a
RuntimeWarning at that call site:

    prog.py:12: RuntimeWarning: Chan.send() was never awaited; write `await ch.send(...)`

The wrapper costs an object, a call and a finaliser per operation, far more than the default
path may spend on a check (the figures: docs/benchmarks.md, "Forgotten awaits"), so the
check is on only with `python -X dev` or `MN_DEBUG=awaitcheck=1`, for the length of a run().
Switching it on patches Chan's three methods (so the default path has no test at all); the three
module functions test `enabled` themselves. Awaitables defined with `async def` (mn.select,
Mutex.lock, WaitGroup.wait, Goroutine.join, ...) are native coroutines: Python warns for them.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Generator
from typing import Any

from .corofn import coroutine_function

__all__ = ["Op", "configure", "enabled", "take", "wrap"]

# enabled: the check is on for the run() in progress (set by configure, read racily).
enabled = False

_saved: dict[str, Any] = {}


class Op:
    """Op wraps one generator-based operation until it is awaited (see the module doc)."""

    __slots__ = ("awaited", "code", "coro", "lasti", "what")

    def __init__(self, coro: Any, what: str, depth: int) -> None:
        self.coro = coro
        self.what = what
        self.awaited = False
        f = sys._getframe(depth + 1)  # the caller of the public operation
        self.code = f.f_code
        self.lasti = f.f_lasti

    def __await__(self) -> Generator[Any, Any, Any]:
        # A generator of its own: __await__ may not return the coroutine itself.
        self.awaited = True
        return (yield from self.coro)

    def __del__(self) -> None:
        if self.awaited:
            return
        coro = self.coro
        try:
            coro.close()
        except BaseException:  # pragma: no cover - an unstarted generator closes quietly
            pass
        line = 0
        for start, end, ln in self.code.co_lines():
            if start <= self.lasti < end and ln is not None:
                line = ln
                break
        hint = self.what.split("(")[0].split(".")[-1]
        obj = "ch." if self.what.startswith("Chan.") else "mn."
        warnings.warn_explicit(
            f"{self.what} was never awaited; write `await {obj}{hint}(...)`",
            RuntimeWarning,
            self.code.co_filename,
            line,
        )

    def __repr__(self) -> str:
        return f"<mn_runtime operation {self.what}{' (awaited)' if self.awaited else ''}>"


def wrap(coro: Any, what: str, depth: int = 1) -> Op:
    """wrap returns coro inside an Op; depth counts the frames between the user and wrap's caller
    (1: wrap's caller is the public function the user called)."""
    return Op(coro, what, depth + 1)


def take(op: Op) -> Any:
    """take unwraps op for a caller that runs it itself (mn.go(ch.send, v)): it counts as awaited."""
    op.awaited = True
    return op.coro


def _method(orig: Callable[..., Any], what: str) -> Callable[..., Any]:
    def checked(*args: Any, **kwargs: Any) -> Op:
        return Op(orig(*args, **kwargs), what, 1)

    checked.__name__ = orig.__name__
    checked.__qualname__ = orig.__qualname__
    checked.__doc__ = orig.__doc__
    checked.__wrapped__ = orig  # type: ignore[attr-defined]
    return coroutine_function(checked)


def configure(on: bool) -> None:
    """configure switches the check on or off (run() calls it at its start and end)."""
    global enabled
    # The check patches the public Chan, which sits above the runtime's floors (chan.py imports
    # _rt); importing it here keeps _rt free of imports from above.
    from ..chan import Chan

    if on and not enabled:
        for name in ("send", "recv", "recv_ok"):
            orig = Chan.__dict__[name]
            _saved[name] = orig
            setattr(Chan, name, _method(orig, f"Chan.{name}()"))
    elif not on and enabled:
        for name, orig in _saved.items():
            setattr(Chan, name, orig)
        _saved.clear()
    enabled = on
