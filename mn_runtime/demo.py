"""demo: a CPU-mixed workload that makes the scheduler show its moves, narrated as it runs.

    python -m mn_runtime demo [--procs N] [--trace demo.json]

Four phases, each built to make one mechanism happen, each followed by what the counters saw:
  1. fan-out: one goroutine starts many CPU-bound ones; they all land on its P's run queue, and
     the other Ms, finding their own queues empty, steal half of it at a time;
  2. syscalls: goroutines make blocking calls (hashing, sleeping in the OS) while CPU work waits;
     sysmon sees a P stuck in a syscall and hands it off to another M (handoffp);
  3. timers: many short sleeps; whichever notices a deadline first fires the timer: an M looking
     for work (it then runs the woken goroutine next), or the poller thread, which wakes at each
     deadline and injects the goroutines it woke in batches;
  4. network: a loopback echo server and clients; goroutines park in "IO wait" and epoll events
     ready them: taken by running Ms' own non-blocking polls while Ps run, by the poller thread
     when every P is idle (skipped where mn_runtime.net is missing).
Then a table per P and per M, and the totals.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from . import debug
from .runtime import go, gosched, run, sleep, syscall

__all__ = ["main", "run_demo"]

_COUNTERS = (
    "gs_run",
    "steals",
    "handoffs",
    "syscalls",
    "netpoll_wakeups",
    "netpoll_injected",
    "netpoll_fd_events",
    "netpoll_nonblocking",
    "timers_fired",
    "timers_fired_by_ms",
)


def _cpu(n: int) -> int:
    """_cpu: pure-Python work that holds the GIL (about n*0.1 us), yielding now and then."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFFFFFF
    return x


async def _cruncher(rounds: int, n: int) -> int:
    acc = 0
    for _ in range(rounds):
        acc ^= _cpu(n)
        await gosched()
    return acc


async def _chunk(n: int) -> int:
    return _cpu(n)


async def _fanout(waves: int, k: int, n: int) -> int:
    """_fanout starts k short CPU-bound goroutines per wave: they queue on this P, which cannot run
    them all, so Ms that ran dry steal half of its queue at a time."""
    acc = 0
    for _ in range(waves):
        gs = [go(_chunk, n) for _ in range(k)]
        for g in gs:
            acc ^= await g.join()
    return acc


def _hash(mb: int) -> str:
    return hashlib.sha256(b"\x5a" * (mb << 20)).hexdigest()[:12]


async def _blocker(i: int) -> str:
    if i % 2:
        await syscall(time.sleep, 0.03)  # an OS sleep: the M blocks, its P is retaken
        return "slept"
    return await syscall(_hash, 24)


async def _syscalls(k: int) -> None:
    gs = [go(_blocker, i) for i in range(k)] + [go(_cruncher, 10, 20_000) for _ in range(2 * k)]
    for g in gs:
        await g.join()


async def _sleeper(i: int) -> None:
    for j in range(5):
        await sleep(0.002 * (1 + (i + j) % 5))


async def _timers(k: int) -> None:
    gs = [go(_sleeper, i) for i in range(k)]
    for g in gs:
        await g.join()


async def _echo_conn(conn: Any) -> None:
    with conn:
        while True:
            data = await conn.read(4096)
            if not data:
                return
            await conn.write(data)


async def _echo_server(ln: Any, nconn: int) -> None:
    for _ in range(nconn):
        c = await ln.accept()
        go(_echo_conn, c)


async def _client(addr: str, rounds: int) -> int:
    from . import net

    got = 0
    conn = await net.dial("tcp", addr)
    with conn:
        for i in range(rounds):
            msg = b"ping %d " % i * 8
            await conn.write(msg)
            n = 0
            while n < len(msg):
                n += len(await conn.read(len(msg) - n))
            got += n
    return got


async def _network(nclients: int, rounds: int) -> int:
    from . import net

    ln = net.listen("tcp", "127.0.0.1:0")
    with ln:
        host, port = ln.addr[:2]
        srv = go(_echo_server, ln, nclients)
        cs = [go(_client, f"{host}:{port}", rounds) for _ in range(nclients)]
        total = 0
        for c in cs:
            total += await c.join()
        await srv.join()
    return total


def _delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in _COUNTERS}


def _have_net() -> bool:
    try:
        from . import net  # noqa: F401
    except ImportError:
        return False
    return True


async def _demo(out: TextIO, quick: bool) -> dict[str, Any]:
    debug.enable_metrics()
    say: Callable[[str], None] = lambda s: print(s, file=out, flush=True)  # noqa: E731
    s0 = debug.stats()
    say(f"mn_runtime demo: {s0['procs']} Ps (GOMAXPROCS), goroutines start on whichever M holds a P")
    if s0["gil_enabled"]:
        say("the GIL is enabled: Ms take turns running Python; blocking calls (syscalls) run in parallel\n")
    else:
        say("the GIL is disabled (free-threaded Python): Ms with a P run goroutines' Python in parallel\n")
    scale = 1 if quick else 3
    phases: list[tuple[str, str, Callable[[], Any]]] = [
        (
            "1. fan-out",
            "one goroutine starts waves of 32 CPU-bound goroutines; idle Ms steal from its run queue",
            lambda: _fanout(4 * scale, 32, 20_000),
        ),
        (
            "2. syscalls",
            "12 goroutines block in the OS (hashing, sleeping) beside 24 CPU-bound ones; sysmon hands their Ps off",
            lambda: _syscalls(12),
        ),
        (
            "3. timers",
            "200 goroutines sleep 2-10 ms five times; Ms looking for work or the poller fire the timers",
            lambda: _timers(200),
        ),
    ]
    if _have_net():
        phases.append(
            (
                "4. network",
                "16 loopback echo clients and their server goroutines park in IO wait; epoll events ready them",
                lambda: _network(16, 20 * scale),
            )
        )
    else:
        say("(mn_runtime.net is not available: the network phase is skipped)\n")
    for title, what, fn in phases:
        say(f"{title}: {what}")
        before = debug.stats()
        t0 = time.perf_counter()
        await fn()
        dt = time.perf_counter() - t0
        d = _delta(before, debug.stats())
        say(
            f"   {dt * 1e3:7.1f} ms: {d['gs_run']} Gs run, {d['steals']} steals, {d['handoffs']} handoffs,"
            f" {d['syscalls']} syscalls, {d['netpoll_fd_events']} fd events"
            f" (taken in {d['netpoll_nonblocking']} polls by running Ms),"
            f" {d['netpoll_wakeups']} poller wake-ups ({d['netpoll_injected']} Gs injected),"
            f" {d['timers_fired']} timers fired ({d['timers_fired_by_ms']} by Ms looking for work)\n"
        )
    final = debug.stats()
    say(summary_table(final))
    return final


def summary_table(st: dict[str, Any]) -> str:
    """summary_table renders stats() as the demo's closing table."""
    lines = ["summary per P:", f"  {'P':>3} {'Gs run':>8} {'steals':>7} {'stolen from':>12} {'global takes':>13}"]
    for p in st["per_p"]:
        lines.append(f"  {p['id']:>3} {p['gs_run']:>8} {p['steals']:>7} {p['stolen_from']:>12} {p['global_takes']:>13}")
    lines += ["summary per M (OS thread):", f"  {'M':>3} {'Gs run':>8} {'busy ms':>9} {'CPU ms':>8}"]
    for m in st["per_m"]:
        busy = f"{m['busy_s'] * 1e3:9.1f}" if m["busy_s"] is not None else f"{'-':>9}"
        cpu = f"{m['cpu_s'] * 1e3:8.0f}" if m["cpu_s"] is not None else f"{'-':>8}"
        lines.append(f"  {m['id']:>3} {m['gs_run']:>8} {busy} {cpu}")
    lat = st["latency"]
    lines.append("totals:")
    rows = [
        ("goroutines created", st["goroutines_created"]),
        ("Gs run (schedules)", st["gs_run"]),
        ("steals", st["steals"]),
        ("syscalls / handoffs", f"{st['syscalls']} / {st['handoffs']}"),
        ("preemption requests", st["preempt_requests"]),
        ("fd events / by Ms' polls", f"{st['netpoll_fd_events']} / {st['netpoll_nonblocking']}"),
        ("poller wake-ups / batches", f"{st['netpoll_wakeups']} / {st['netpoll_batches']}"),
        ("Gs injected by the poller", st["netpoll_injected"]),
        ("timers fired / of them by Ms", f"{st['timers_fired']} / {st['timers_fired_by_ms']}"),
    ]
    if lat is not None and lat["count"]:
        rows.append(("sched latency p50 / p99", f"{lat['p50_us']:.0f} us / {lat['p99_us']:.0f} us"))
    for k, v in rows:
        lines.append(f"  {k:<28} {v}")
    return "\n".join(lines)


def run_demo(procs: int | None = None, trace: str | None = None, out: TextIO | None = None, quick: bool = False) -> Any:
    """run_demo runs the demo workload and prints its narration to out (stdout); returns stats()."""

    async def main() -> dict[str, Any]:
        return await _demo(out or sys.stdout, quick)

    return run(main, procs=procs, trace=trace)


def main() -> None:  # pragma: no cover - python -m mn_runtime demo is the entry point
    run_demo()
