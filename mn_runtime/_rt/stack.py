"""stack: where a suspended goroutine is, by walking its coroutine's cr_await chain.

A parked G's coroutine is suspended at an `await`; `cr_await` names what it awaits, which may be
another coroutine (follow it), a generator-based awaitable such as the runtime's traps (follow
gi_yieldfrom), or something else (stop). The frames on the way are the G's "stack", innermost last.

A G that is RUNNING is being stepped by another thread: its listing shows where it runs (M and
P), how long its P has run it without a schedule (as sysmon last saw it), and a snapshot of its
M's Python stack from the G's coroutine inward (sys._current_frames; a moment old by the time it
is printed), so a G that holds its M in a long computation or a blocking call made outside
`syscall` shows where. The G that asks for the dump reads its own stack from the calling frame.

The listing follows Go's traceback:

    goroutine 7 [chan receive, 1.250 s]:
    tests.test_debug.receiver(...)
    \t/path/to/test_debug.py:31
    created by goroutine 1
    \t/path/to/test_debug.py:40
"""

from __future__ import annotations

import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from .g import GStatus
from .tbfold import is_runtime_file

if TYPE_CHECKING:
    from .g import G

__all__ = ["coro_frames", "format_goroutine", "format_waited"]

MAX_DEPTH = 256
# LONG_SLICE: a running G's header says how long its slice has run once it is past sysmon's
# preemption limit (sysmon.FORCE_PREEMPT_NS): a G holding its M, worth pointing at.
LONG_SLICE = 10e-3


def coro_frames(coro: Any) -> list[FrameType]:
    """coro_frames lists the frames of a suspended coroutine chain, outermost first."""
    frames: list[FrameType] = []
    seen = 0
    while coro is not None and seen < MAX_DEPTH:
        seen += 1
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        nxt = getattr(coro, "cr_await", None)
        if nxt is None:
            nxt = getattr(coro, "gi_yieldfrom", None)
        coro = nxt
    return frames


def _frames_up_to(f: FrameType | None, top: Any) -> list[FrameType]:
    """_frames_up_to walks from frame f outward to top (a coroutine's frame) and returns the walk,
    outermost first; empty when top is not on f's chain."""
    frames: list[FrameType] = []
    while f is not None and len(frames) < MAX_DEPTH:
        frames.append(f)
        if f is top:
            frames.reverse()
            return frames
        f = f.f_back
    return []


def _own_frames(coro: Any) -> list[FrameType]:
    """_own_frames: the calling G's frames, from its coroutine's frame down to our caller."""
    return _frames_up_to(sys._getframe(2), getattr(coro, "cr_frame", None))


def _running_frames(g: G) -> list[FrameType]:
    """_running_frames: a snapshot of the frames of g, RUNNING on another M, from its coroutine's
    frame inward (outermost first); empty when its M is not inside it any more."""
    m = g.m
    coro = g.coro
    th = m.thread if m is not None else None
    top = getattr(coro, "cr_frame", None) if coro is not None else None
    if th is None or th.ident is None or top is None:
        return []
    return _frames_up_to(sys._current_frames().get(th.ident), top)


def _internal(frame: FrameType) -> bool:
    """_internal: frame runs mn_runtime's own code (a channel operation, Mutex.lock, select, the
    Group wrapper): left out of a listing that has user frames, which the wait reason explains."""
    return is_runtime_file(frame.f_code.co_filename)


def format_waited(seconds: float) -> str:
    """format_waited: Go prints whole minutes; short waits matter here too, so seconds below one."""
    if seconds >= 60:
        return f"{int(seconds // 60)} minutes"
    return f"{seconds:.3f} s"


def format_goroutine(g: G, now: float | None = None, caller: G | None = None) -> str:
    """format_goroutine renders g as Go's traceback: header, suspended frames, "created by"."""
    if now is None:
        now = time.monotonic()
    status = g.status
    coro = g.coro
    if status == GStatus.WAITING and g.waitreason:
        state = f"{g.waitreason.value}, {format_waited(now - g.waitsince)}"
    else:
        state = status.name.lower()
        if status in (GStatus.RUNNING, GStatus.SYSCALL):
            m = g.m
            p = m.p if m is not None else None
            if m is not None:
                state += f", M{m.id}" + (f" P{p.id}" if p is not None else "")
            if status == GStatus.RUNNING and p is not None:
                tick, since = p.sysmontick[0], p.sysmontick[1]  # sysmon's last look (one tuple)
                if tick == p.schedtick and since and now - since >= LONG_SLICE:
                    state += f", {format_waited(now - since)} in this slice"
    lines = [f"goroutine {g.id} [{state}]: {g.name}"]
    frames: list[FrameType] = []
    if coro is not None:
        if g is caller:
            frames = _own_frames(coro)
        elif status != GStatus.RUNNING:
            frames = coro_frames(coro)
        else:
            frames = _running_frames(g)
    user = [f for f in frames if not _internal(f)] or frames
    for f in reversed(user):
        mod = f.f_globals.get("__name__", "?")
        lines.append(f"{mod}.{f.f_code.co_qualname}(...)")
        lines.append(f"\t{f.f_code.co_filename}:{f.f_lineno}")
    if g.parentid or g.createdat:
        lines.append(f"created by goroutine {g.parentid}" if g.parentid else "created by mn_runtime.run")
        text = createdat_text(g)
        if ":" in text:
            lines.append(f"\t{text}")
    return "\n".join(lines)


def createdat_text(g: G) -> str:
    """createdat_text is where g was created, as file:line (g.createdat holds the creator's code
    object and g.createdpc the instruction offset, or createdat is a label such as "run")."""
    code = g.createdat
    if isinstance(code, str):
        return code
    lasti = g.createdpc
    for start, end, line in code.co_lines():
        if start <= lasti < end and line is not None:
            return f"{code.co_filename}:{line}"
    return f"{code.co_filename}:?"
