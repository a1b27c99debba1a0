"""corofn: marking plain functions that return a coroutine as async functions.

Hot-path operations are shaped for speed, not as `async def`:
- Chan.recv, Conn.read and Conn.write are plain functions that return the coroutine doing the work
  instead of awaiting it inside an `async def` of their own: one coroutine per call, not two.
- Chan.send and the receive behind Chan.recv are generator-based coroutines (types.coroutine)
  that yield their park trap themselves, without a gopark generator per park.
To callers they are async functions, so go() must accept them (`mn.go(conn.write, data)`,
`mn.go(ch.send, v)`), and inspect.iscoroutinefunction should say so (Python 3.12+).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

MARK = "_mn_coroutine_function"


def coroutine_function(fn: F) -> F:
    """coroutine_function marks fn (which returns a coroutine) as an async function."""
    setattr(fn, MARK, True)
    mark = getattr(inspect, "markcoroutinefunction", None)  # Python 3.12+
    if mark is not None:
        mark(fn)
    return fn


def is_coroutine_function(fn: object) -> bool:
    """is_coroutine_function: an async def function or a marked one (bound methods included)."""
    return inspect.iscoroutinefunction(fn) or getattr(fn, MARK, False) is True


def is_coroutine(obj: object) -> bool:
    """is_coroutine: a coroutine object, native or generator-based (types.coroutine)."""
    if inspect.iscoroutine(obj):
        return True
    return isinstance(obj, types.GeneratorType) and bool(obj.gi_code.co_flags & inspect.CO_ITERABLE_COROUTINE)
