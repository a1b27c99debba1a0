"""The demo workload: it runs, narrates each phase, and its closing table matches stats()."""

from __future__ import annotations

import io

import pytest

from mn_runtime._rt import gil
from mn_runtime.demo import run_demo

pytestmark = pytest.mark.concurrency


def test_demo_shows_steals_syscalls_and_netpoll() -> None:
    out = io.StringIO()
    st = run_demo(procs=4, out=out, quick=True)
    text = out.getvalue()
    for phase in ("1. fan-out", "2. syscalls", "3. timers", "summary per P:", "summary per M", "totals:"):
        assert phase in text
    assert st["steals"] > 0
    assert st["gil_enabled"] == gil.gil_enabled()
    assert ("the GIL is enabled" if st["gil_enabled"] else "the GIL is disabled (free-threaded Python)") in text
    assert st["syscalls"] == 12
    assert st["timers_fired"] >= 1000
    # Each of the timer phase's 1000 sleeps (the demo's only timers, each readying one G) fired on
    # an M looking for work or on the poller thread, which injected the G it woke.
    fired_by_poller = st["timers_fired"] - st["timers_fired_by_ms"]
    assert 0 <= st["timers_fired_by_ms"] <= st["timers_fired"]
    assert st["netpoll_injected"] >= fired_by_poller
    # The echo phase parks clients and servers in IO wait: fd events readied them (taken by the
    # running Ms' own polls while Ps run, or by the poller thread when every P is idle).
    assert st["netpoll_fd_events"] > 0
    assert st["latency"]["count"] > 0
    assert f"Gs run (schedules)           {st['gs_run']}" in text
    assert sum(p["gs_run"] for p in st["per_p"]) == st["gs_run"]
