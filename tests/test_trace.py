"""Execution tracer: the trace of a known program, nesting per track, flow arrows, start/stop."""

from __future__ import annotations

import io
import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import mn_runtime as mn
import mn_runtime.trace as mntrace
from mn_runtime.trace import END, FLOW, START, write_trace

pytestmark = pytest.mark.concurrency

NWORK = 8
YIELDS = 3


def _load(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _gslices(data: dict[str, Any], pid: int = 1) -> list[dict[str, Any]]:
    return [e for e in data["traceEvents"] if e.get("ph") == "X" and e.get("pid") == pid and e.get("cat") == "g"]


def _assert_nested(data: dict[str, Any]) -> None:
    """Slices on one track never overlap: sorted by start, each starts after the previous ends."""
    tracks: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in data["traceEvents"]:
        if e.get("ph") == "X":
            tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    assert tracks
    for key, sl in tracks.items():
        sl.sort()
        for (a0, a1), (b0, _) in itertools.pairwise(sl):
            assert b0 >= a1 - 0.002, f"overlapping slices on track {key}: ({a0}, {a1}) and {b0}"


async def worker(i: int) -> int:
    for _ in range(YIELDS):
        await mn.gosched()
    return i


def test_known_program(tmp_path: Path, procs: int, switchinterval: float) -> None:
    for rep in range(2):
        path = tmp_path / f"t{rep}.json"

        async def main() -> dict[str, Any]:
            gs = [mn.go(worker, i) for i in range(NWORK)]
            assert sum([await g.join() for g in gs]) == sum(range(NWORK))
            return mn.stats()

        st = mn.run(main, procs=procs, trace=str(path))
        data = _load(path)
        _assert_nested(data)
        slices = _gslices(data)
        by_g: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for e in slices:
            by_g[e["name"]].append(e)
        workers = {n: s for n, s in by_g.items() if n.endswith(" worker")}
        assert len(workers) == NWORK
        for name, sl in workers.items():
            sl.sort(key=lambda e: e["ts"])
            assert [e["args"]["end"] for e in sl] == ["yield"] * YIELDS + ["end"], name
            assert all(0 <= e["args"]["p"] < procs for e in sl)
            assert all(e["args"]["latency_us"] >= 0 for e in sl)
        mtracks = {e["tid"] for e in slices}
        assert 1 <= len(mtracks) <= st["threads"]
        if procs == 1:
            assert mtracks == {0}
        ptracks = {e["tid"] for e in _gslices(data, pid=2)}
        assert ptracks <= set(range(procs))
        assert len(_gslices(data, pid=2)) == len(slices)
        assert data["otherData"]["gs_run"] == st["gs_run"]


async def _receiver(ch: mn.Chan[int]) -> int:
    return await ch.recv()


async def _sender(ch: mn.Chan[int]) -> None:
    await mn.sleep(0.01)  # the receiver is parked by now
    await ch.send(7)


def test_flow_links_readier_to_readied(tmp_path: Path, procs: int, switchinterval: float) -> None:
    for rep in range(3):
        path = tmp_path / f"f{rep}.json"

        async def main() -> int:
            ch: mn.Chan[int] = mn.Chan()
            r = mn.go(_receiver, ch)
            s = mn.go(_sender, ch)
            await s.join()
            return await r.join()

        assert mn.run(main, procs=procs, trace=str(path)) == 7
        data = _load(path)
        evs = data["traceEvents"]
        slices = _gslices(data)
        gid = {e["name"].split(" ", 1)[1]: e["args"]["g"] for e in slices}
        recv_slices = sorted((e for e in slices if e["args"]["g"] == gid["_receiver"]), key=lambda e: e["ts"])
        assert recv_slices[0]["args"]["end"] == "park: chan receive"
        resumed = recv_slices[1]
        # The flow that ends at the receiver's second slice starts inside a slice of the sender.
        fin = [e for e in evs if e.get("ph") == "f" and e["tid"] == resumed["tid"] and e["ts"] == resumed["ts"]]
        assert len(fin) == 1 and fin[0]["cat"] == "readied"
        starts = [e for e in evs if e.get("ph") == "s" and e["id"] == fin[0]["id"]]
        assert len(starts) == 1
        s = starts[0]
        enclosing = [
            e
            for e in slices
            if e["tid"] == s["tid"] and e["pid"] == s["pid"] and e["ts"] <= s["ts"] <= e["ts"] + e["dur"]
        ]
        assert [e["args"]["g"] for e in enclosing] == [gid["_sender"]]
        # Creation flows: main -> each goroutine it started.
        created = {e["id"] for e in evs if e.get("ph") == "s" and e["cat"] == "created"}
        assert len(created) == 2
        assert created == {e["id"] for e in evs if e.get("ph") == "f" and e["cat"] == "created"}


def test_start_stop_inside_program(tmp_path: Path, procs: int) -> None:
    path = tmp_path / "inside.json"

    async def main() -> int:
        assert not mntrace.is_tracing()
        mntrace.start(path)
        with pytest.raises(RuntimeError, match="already being recorded"):
            mntrace.start(path)
        assert mntrace.is_tracing()
        gs = [mn.go(worker, i) for i in range(4)]
        for g in gs:
            await g.join()
        n = mntrace.stop()
        with pytest.raises(RuntimeError, match="no trace is being recorded"):
            mntrace.stop()
        return n

    n = mn.run(main, procs=procs)
    data = _load(path)
    assert n == len(data["traceEvents"]) > 0
    _assert_nested(data)
    # main's own slice was open when the trace started, and another when it stopped.
    mains = sorted((e for e in _gslices(data) if e["args"]["g"] == 1), key=lambda e: e["ts"])
    assert mains[0]["ts"] == 0.0 and mains[0]["args"]["before_trace"] and mains[-1]["args"]["end"] == "trace stopped"
    assert len({e["name"] for e in _gslices(data) if e["name"].endswith("worker")}) == 4


def test_mn_trace_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "env.json"
    monkeypatch.setenv("MN_TRACE", str(path))

    async def main() -> int:
        return await mn.go(worker, 5).join()

    assert mn.run(main, procs=2) == 5
    assert any(e["name"].endswith(" worker") for e in _gslices(_load(path)))


def test_bad_trace_path_fails_before_running(tmp_path: Path) -> None:
    ran = []

    async def main() -> None:
        ran.append(1)

    with pytest.raises(FileNotFoundError):
        mn.run(main, procs=1, trace=str(tmp_path / "no" / "such" / "dir.json"))
    with pytest.raises(TypeError, match="trace path must be a str"):
        mn.run(main, procs=1, trace=42)  # type: ignore[arg-type]
    assert ran == []


def test_many_events_write_loadable_json() -> None:
    """300k raw events (the stress script does 1M) become a file json.load accepts."""
    n = 100_000
    events: list[tuple[Any, ...]] = []
    t = 0.0
    for i in range(n):
        t += 1e-6
        events.append((START, t, i, "w", 0, 1e-6, 0))
        t += 1e-6
        events.append((FLOW, t, (1 << 33) | (i << 1), i, i + 1))
        t += 1e-6
        events.append((END, t, i, "yield"))
    buf = io.StringIO()
    count = write_trace(buf, [((1, 0), events)], 0.0, t, 1, 0.0)
    data = json.loads(buf.getvalue())
    assert len(data["traceEvents"]) == count
    assert sum(1 for e in data["traceEvents"] if e.get("ph") == "X" and e["pid"] == 1) == n
    _assert_nested(data)
