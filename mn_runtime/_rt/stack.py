"""stack: where a suspended goroutine is, by walking its coroutine's cr_await chain.

A parked G's coroutine is suspended at an `await`; `cr_await` names what it awaits, which may be
another coroutine (follow it), a generator-based awaitable such as the runtime's traps (follow
gi_yieldfrom), or something else (stop). The frames on the way are the G's "stack", innermost last.
"""

from __future__ import annotations

import time
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .g import G


def coro_frames(coro: Any) -> list[FrameType]:
    """coro_frames lists the frames of a suspended coroutine chain, outermost first."""
    frames: list[FrameType] = []
    seen = 0
    while coro is not None and seen < 256:
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


def _internal(frame: FrameType) -> bool:
    fn = frame.f_code.co_filename
    return "/mn_runtime/_rt/" in fn.replace("\\", "/")


def format_goroutine(g: G, now: float | None = None) -> str:
    """format_goroutine renders g as Go's traceback header plus its suspended frames."""
    from .g import GStatus

    if now is None:
        now = time.monotonic()
    state = g.status.name.lower()
    if g.status == GStatus.WAITING and g.waitreason:
        state = g.waitreason.value
        waited = now - g.waitsince
        if waited >= 60:
            state += f", {int(waited // 60)} minutes"
        else:
            state += f", {waited:.3f} s"
    lines = [f"goroutine {g.id} [{state}]: {g.name}"]
    coro = g.coro
    if coro is not None:
        frames = coro_frames(coro)
        user = [f for f in frames if not _internal(f)] or frames
        for f in reversed(user):
            lines.append(f"\t{f.f_code.co_qualname}(...)")
            lines.append(f"\t\t{f.f_code.co_filename}:{f.f_lineno}")
    if g.parentid or g.createdat:
        lines.append(f"created by goroutine {g.parentid} at {g.createdat}")
    return "\n".join(lines)
