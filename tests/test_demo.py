"""The demo workload: it runs, narrates each phase, and its closing table matches stats()."""

from __future__ import annotations

import io
import re

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
    # The timer phase's 200 goroutines sleep 5 times each: the demo's only timers (phase 2's sleeps
    # are OS sleeps in syscalls, the echo sets no deadlines), each readying one G.
    assert st["timers_fired"] == 200 * 5
    # Each fired on an M looking for work or on the poller thread, which injected the G it woke;
    # in the timer phase no fd is registered, so the poller injected those Gs and no others.
    lines = text.splitlines()
    line = lines[next(i for i, ln in enumerate(lines) if ln.startswith("3. timers:")) + 1]  # its counters
    m = re.search(r"\((\d+) Gs injected\), (\d+) timers fired \((\d+) by Ms looking for work\)", line)
    assert m is not None, line
    injected, fired, by_ms = (int(x) for x in m.groups())
    assert fired == 200 * 5 and by_ms == st["timers_fired_by_ms"], line
    assert injected == fired - by_ms, line
    assert st["netpoll_injected"] >= injected
    # The echo phase parks clients and servers in IO wait: fd events readied them (taken by the
    # running Ms' own polls while Ps run, or by the poller thread when every P is idle).
    assert st["netpoll_fd_events"] > 0
    assert st["latency"]["count"] > 0
    assert f"Gs run (schedules)           {st['gs_run']}" in text
    assert sum(p["gs_run"] for p in st["per_p"]) == st["gs_run"]
