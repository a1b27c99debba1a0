"""timechan: the former home of after, Timer and Ticker, now in mn_runtime.time (kept so that
`from mn_runtime.timechan import ...` still works)."""

from __future__ import annotations

from .time import Ticker, Timer, after

__all__ = ["Ticker", "Timer", "after"]
