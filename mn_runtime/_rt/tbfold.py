"""tbfold: a goroutine's exception as the user reads it, with the runtime's frames folded away.

An exception that escapes a goroutine travels through the scheduler before run() raises it: its
traceback holds the M's frames (execute, the run loop) around the user's, and often a runtime frame
at the raise point (a channel operation that found its channel closed). Those frames say nothing
the user can act on. fold() drops every traceback entry whose code lives in the mn_runtime package
and adds a note saying how many it hid, so the listing reads as the user's own call chain, the
way Python shows an asyncio task's error.

Not folded: `Throw` (a runtime bug: its frames are the report) and any exception whose traceback
holds no user frame at all. MN_DEBUG=fulltb=1 keeps every frame (debug.py).
"""

from __future__ import annotations

import os
from types import TracebackType

from ..errors import Throw

__all__ = ["fold", "is_runtime_file"]

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def is_runtime_file(filename: str) -> bool:
    """is_runtime_file: the code at filename is part of mn_runtime itself."""
    return filename.startswith(_PKG)


def _fold_tb(tb: TracebackType | None) -> tuple[TracebackType | None, int, bool]:
    """_fold_tb rebuilds tb without the runtime's entries: (new tb, entries hidden, any user entry)."""
    kept: list[TracebackType] = []
    hidden = 0
    while tb is not None:
        if is_runtime_file(tb.tb_frame.f_code.co_filename):
            hidden += 1
        else:
            kept.append(tb)
        tb = tb.tb_next
    if not kept:
        return None, hidden, False
    new: TracebackType | None = None
    for t in reversed(kept):
        new = TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return new, hidden, True


def fold(exc: BaseException, seen: set[int] | None = None) -> BaseException:
    """fold rewrites exc's traceback (and those of its cause, context and group members) without
    mn_runtime's frames; returns exc. Idempotent: a folded traceback has nothing left to fold."""
    if seen is None:
        seen = set()
    if id(exc) in seen or isinstance(exc, Throw):
        return exc
    seen.add(id(exc))
    tb, hidden, user = _fold_tb(exc.__traceback__)
    if user and hidden:
        exc.__traceback__ = tb
        exc.add_note(f"({hidden} mn_runtime frame{'s' if hidden != 1 else ''} hidden; MN_DEBUG=fulltb=1 shows them)")
    for sub in (exc.__cause__, exc.__context__):
        if sub is not None:
            fold(sub, seen)
    if isinstance(exc, BaseExceptionGroup):
        for sub in exc.exceptions:
            fold(sub, seen)
    return exc
