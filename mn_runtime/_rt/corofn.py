"""corofn: marking plain functions that return a coroutine as async functions.

Hot-path operations (Chan.recv, Conn.read, Conn.write) are plain functions that return the
coroutine doing the work instead of awaiting it inside an `async def` of their own: one coroutine
per call instead of two. To callers they are async functions, so go() must accept them
(`mn.go(conn.write, data)`) and inspect.iscoroutinefunction should say so (Python 3.12+).
"""

from __future__ import annotations

import inspect
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
