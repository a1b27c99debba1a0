"""Debug instruments: schedtrace lines, goroutine dumps, MN_DEBUG, latency metrics, signal dumps."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime import debug
from mn_runtime._rt import tls as _tls

pytestmark = pytest.mark.concurrency

SCHED_RE = re.compile(
    r"^SCHED (\d+)ms: gomaxprocs=(\d+) idleprocs=(\d+) threads=(\d+) spinningthreads=(\d+)"
    r" idlethreads=(\d+) runqueue=(\d+) gil=(on|off) \[([\d ]*)\]$"
)


def _parse(line: str) -> dict[str, Any]:
    m = SCHED_RE.match(line)
    assert m, f"not a schedtrace line: {line!r}"
    keys = ("ms", "gomaxprocs", "idleprocs", "threads", "spinningthreads", "idlethreads", "runqueue")
    out: dict[str, Any] = {k: int(v) for k, v in zip(keys, m.groups()[:7], strict=True)}
    out["gil"] = m.group(8) == "on"
    out["runqs"] = [int(x) for x in m.group(9).split()]
    return out


async def _recv_forever(ch: mn.Chan[int]) -> int:
    return await ch.recv()


def test_schedtrace_agrees_with_stats(procs: int, switchinterval: float) -> None:
    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        gs = [mn.go(_recv_forever, ch) for _ in range(6)]
        await mn.sleep(0.02)  # every receiver parks; other Ms go idle
        s = _tls.cur
        assert s is not None
        for _ in range(50):  # retry until a quiet moment: before and after agree
            a = mn.stats()
            line = debug.schedtrace_line(s)
            b = mn.stats()
            keys = ("idle_procs", "threads", "spinning_threads", "idle_threads", "global_runq", "runq")
            if all(a[k] == b[k] for k in keys):
                break
            await mn.sleep(0.002)
        t = _parse(line)
        assert t["gomaxprocs"] == procs == len(t["runqs"])
        assert t["idleprocs"] == a["idle_procs"] <= procs - 1  # main's P is busy
        assert t["threads"] == a["threads"]
        assert t["idlethreads"] == a["idle_threads"]
        assert t["spinningthreads"] == a["spinning_threads"]
        assert t["runqueue"] == a["global_runq"]
        assert t["runqs"] == a["runq"]
        assert t["gil"] == a["gil_enabled"]
        for _ in gs:
            await ch.send(1)
        for g in gs:
            assert await g.join() == 1

    mn.run(main, procs=procs)


def test_schedtrace_lines_printed(capfd: pytest.CaptureFixture[str], procs: int) -> None:
    async def main() -> None:
        for _ in range(12):
            await mn.sleep(0.01)

    mn.run(main, procs=procs, schedtrace=20)
    lines = [ln for ln in capfd.readouterr().err.splitlines() if ln.startswith("SCHED")]
    assert len(lines) >= 2
    parsed = [_parse(ln) for ln in lines]
    assert all(p["gomaxprocs"] == procs and len(p["runqs"]) == procs for p in parsed)
    assert [p["ms"] for p in parsed] == sorted(p["ms"] for p in parsed)
    assert all(0 <= p["idleprocs"] <= procs and p["threads"] >= 1 for p in parsed)


def test_scheddetail_from_mn_debug(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MN_DEBUG", "schedtrace=15,scheddetail=1,sigdump=0")

    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        g = mn.go(_recv_forever, ch)
        await mn.sleep(0.08)
        await ch.send(3)
        await g.join()

    mn.run(main, procs=2)
    err = capfd.readouterr().err
    heads = [ln for ln in err.splitlines() if ln.startswith("SCHED")]
    assert heads and all("[" not in h for h in heads)
    assert re.search(r"^  P0: status=\d schedtick=\d+ syscalltick=\d+ m=-?\d+ runqsize=\d+", err, re.M)
    assert re.search(r"^  P1: status=", err, re.M)
    assert re.search(r"^  M0: p=-?\d+ curg=-?\d+ spinning=(true|false) blocked=(true|false)", err, re.M)
    # G2 is runnable or parked in chan receive, depending on when sysmon sampled.
    assert re.search(r"^  G2: status=(1\(\)|4\(chan receive\)) m=-?\d+ _recv_forever$", err, re.M)


def test_dump_lists_chan_receive_with_file_line(switchinterval: float) -> None:
    line = _recv_forever.__code__.co_firstlineno + 1

    async def main() -> str:
        ch: mn.Chan[int] = mn.Chan()
        g = mn.go(_recv_forever, ch)
        await mn.sleep(0.02)
        dump = mn.dump_goroutines()
        await ch.send(1)
        await g.join()
        return dump

    for procs in (1, 4):
        dump = mn.run(main, procs=procs)
        blocks = {b.split(" ", 2)[1]: b for b in dump.split("\n\n")}
        assert set(blocks) == {"1", "2"}
        g2 = blocks["2"]
        assert re.match(r"goroutine 2 \[chan receive, \d+\.\d{3} s\]: _recv_forever\n", g2)
        assert f"test_debug._recv_forever(...)\n\t{__file__}:{line}" in g2
        assert "created by goroutine 1\n\t" + __file__ in g2
        waited = float(re.search(r"chan receive, (\d+\.\d+) s", g2).group(1))  # type: ignore[union-attr]
        assert 0.0 < waited < 5
        # The caller sees its own stack, down to the dump call.
        assert re.match(r"goroutine 1 \[running, M\d+ P\d+\]: ", blocks["1"])
        assert f"{__file__}:" in blocks["1"]


def test_deadlock_uses_the_listing() -> None:
    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        await _recv_forever(ch)

    with pytest.raises(mn.Deadlock) as ei:
        mn.run(main, procs=2)
    text = str(ei.value)
    assert text.startswith("all goroutines are asleep - deadlock!")
    assert "[chan receive, " in text
    assert f"{__file__}:{_recv_forever.__code__.co_firstlineno + 1}" in text


def test_latency_metrics_only_when_enabled(monkeypatch: pytest.MonkeyPatch, procs: int) -> None:
    async def work() -> None:
        for _ in range(5):
            await mn.gosched()

    async def main() -> dict[str, Any]:
        gs = [mn.go(work) for _ in range(20)]
        for g in gs:
            await g.join()
        return mn.stats()

    off = mn.run(main, procs=procs)
    assert off["latency"] is None and all(m["busy_s"] is None for m in off["per_m"])
    monkeypatch.setenv("MN_DEBUG", "metrics=1,sigdump=0")
    on = mn.run(main, procs=procs)
    lat = on["latency"]
    # One sample per schedule (the tracer is on before main is created).
    assert lat["count"] == on["gs_run"]
    assert 0 <= lat["p50_us"] <= lat["p90_us"] <= lat["p99_us"] <= lat["max_us"]
    assert sum(c for _, c in lat["buckets_us"]) == lat["count"]
    assert sum(m["busy_s"] for m in on["per_m"]) > 0
    assert len(on["netpoll_batch_sizes"]) == 8


def test_mn_debug_parsing() -> None:
    s = debug.parse_mn_debug("schedtrace=1000, scheddetail=1,metrics=0")
    assert (s.schedtrace, s.scheddetail, s.metrics, s.sigdump) == (1000, True, False, True)
    assert debug.parse_mn_debug("").sigdump is False
    with pytest.raises(ValueError, match="unknown setting 'shedtrace'"):
        debug.parse_mn_debug("shedtrace=10")
    with pytest.raises(ValueError, match="schedtrace must be a non-negative integer, got 'x'"):
        debug.parse_mn_debug("schedtrace=x")
    with pytest.raises(ValueError, match="needs a value"):
        debug.parse_mn_debug("metrics")


def test_bad_mn_debug_fails_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MN_DEBUG", "bogus=1")

    async def main() -> None:
        raise AssertionError("must not run")

    with pytest.raises(ValueError, match="MN_DEBUG: unknown setting 'bogus'"):
        mn.run(main, procs=1)
    monkeypatch.delenv("MN_DEBUG")
    with pytest.raises(ValueError, match="schedtrace must be a non-negative"):
        mn.run(main, procs=1, schedtrace=-5)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigusr1_prints_dump(capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MN_DEBUG", "sigdump=1")
    before = signal.getsignal(signal.SIGUSR1)

    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        g = mn.go(_recv_forever, ch)
        await mn.sleep(0.01)
        os.kill(os.getpid(), signal.SIGUSR1)
        await mn.sleep(0.05)
        await ch.send(1)
        await g.join()

    mn.run(main, procs=2)
    err = capfd.readouterr().err
    assert "SIGUSR1: goroutine dump" in err
    assert "goroutine 2 [chan receive, " in err
    assert signal.getsignal(signal.SIGUSR1) == before


def test_stats_is_a_typed_snapshot_that_reads_as_a_mapping() -> None:
    """mn.stats() and Chan.stats() return typed snapshots: attributes, the old mapping access, and
    plain dicts (JSON) from to_dict()."""
    import json

    async def main() -> tuple[Any, Any]:
        c: mn.Chan[int] = mn.Chan(3)
        await c.send(1)
        return mn.stats(), c.stats()

    s, cs = mn.run(main, procs=2)
    assert isinstance(s, debug.Stats) and isinstance(s.per_p[0], debug.PStats)
    assert s.procs == s["procs"] == 2 and len(s.per_p) == 2 and s.per_p[1].runq == s["per_p"][1]["runq"]
    assert s.goroutines == s["goroutines"] >= 1 and s.threads >= 1 and s.steals >= 0
    assert s.per_m[0].id == s["per_m"][0]["id"]
    with pytest.raises(KeyError):
        s["no_such_field"]
    with pytest.raises(AttributeError):
        s.procs = 3  # type: ignore[misc]  # a snapshot is read-only
    d = s.to_dict()
    assert type(d) is dict and type(d["per_p"][0]) is dict and set(d) == set(s)
    json.dumps(d)
    assert (cs.qcount, cs.dataqsiz, cs.closed) == (1, 3, False)
    assert cs == {"qcount": 1, "dataqsiz": 3, "sendq": 0, "recvq": 0, "closed": False}


def test_signal_dump_does_not_wait_for_allglock_held_by_its_own_thread() -> None:
    """A signal handler runs on the main thread between two bytecodes, possibly while that thread
    holds a lock of the G table (run() queueing main or tearing down): the dump must not wait."""
    import types

    from mn_runtime import debug as _debug
    from mn_runtime._rt.allgs import GTable

    table = GTable()
    for gid in (2, 1, 17):
        table.add(types.SimpleNamespace(id=gid))  # type: ignore[arg-type]
    fake = types.SimpleNamespace(allgs=table)
    with table.locks[1]:  # held by this thread, as by the main thread the handler interrupts
        t0 = time.monotonic()
        gs = _debug._allgs_from_handler(fake)  # type: ignore[arg-type]
        assert time.monotonic() - t0 < 2
    assert [g.id for g in gs] == [1, 2, 17]
