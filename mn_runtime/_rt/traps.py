"""traps: what a goroutine's coroutine yields to the scheduler.

A trap is a small tuple whose first item is one of the kinds below; the M that steps the coroutine
(`sched.execute`) dispatches on it by identity. Only traps are yielded: the awaitables below, and
the channel operations (chan.py), which are generator-based coroutines that yield their PARK and
GOSCHED traps themselves to save a generator per park (corofn.py). A coroutine that yields
anything else awaited a foreign awaitable (an asyncio future, say) and gets a TypeError.

  (GOSCHED,)                        put me on the global queue and run something else
  (PARK, commit, arg, reason)       park me; then run commit(g, arg) -> bool (False: resume me)
  (PARK, None, lock, reason)        park me; then release lock (Go's goparkunlock)
  (SYSCALL, fn, args, kwargs)       run fn(*args, **kwargs) on this M with the P released
"""

from __future__ import annotations

import types
from collections.abc import Callable, Generator
from typing import Any

GOSCHED = 1
PARK = 2
SYSCALL = 3

GOSCHED_TRAP = (GOSCHED,)


@types.coroutine
def gosched_trap() -> Generator[Any, Any, None]:
    yield GOSCHED_TRAP


@types.coroutine
def park_trap(commit: Callable[[Any, Any], bool] | None, arg: Any, reason: Any) -> Generator[Any, Any, None]:
    yield (PARK, commit, arg, reason)


@types.coroutine
def syscall_trap(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Generator[Any, Any, Any]:
    return (yield (SYSCALL, fn, args, kwargs))
