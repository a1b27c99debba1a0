"""select tests: Go's test/chan select3 (blocking table), doubleselect, and runtime/chan_test.go's
TestSelectFairness and TestSelectStress; plus the same channel twice, cleanup of losing cases,
seeded replay, and the deadlock detector on a select with no cases."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import mn_runtime as mn

pytestmark = pytest.mark.concurrency


def _queues_empty(*chans: mn.Chan[Any]) -> bool:
    return all(c.stats()["sendq"] == 0 and c.stats()["recvq"] == 0 for c in chans)


# --- basics ---


def test_select_bad_cases() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"cases must be mn.Recv or mn.Send"):
            await mn.select(mn.Chan())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"Recv\(\) needs a Chan or None"):
            mn.Recv(3)  # type: ignore[arg-type]

    mn.run(main, procs=1)


def test_select_default_and_closed() -> None:
    async def main() -> None:
        a: mn.Chan[int] = mn.Chan()
        b: mn.Chan[int] = mn.Chan(1)
        assert await mn.select(mn.Recv(a), mn.Send(a, 1), default=True) == (-1, None, False)
        assert await mn.select(default=True) == (-1, None, False)
        assert await mn.select(mn.Recv(None), mn.Send(None, 1), default=True) == (-1, None, False)
        assert await mn.select(mn.Recv(a), mn.Send(b, 5)) == (1, None, True)
        assert await mn.select(mn.Recv(a), mn.Recv(b)) == (1, 5, True)
        b.close()
        assert await mn.select(mn.Recv(a), mn.Recv(b)) == (1, None, False)
        with pytest.raises(mn.ChannelClosed, match="send on closed channel"):
            await mn.select(mn.Send(b, 1))
        with pytest.raises(mn.ChannelClosed, match="send on closed channel"):
            await mn.select(mn.Send(b, 1), default=True)
        assert _queues_empty(a, b)

    mn.run(main, procs=1)


@pytest.mark.parametrize("cases", [(), (mn.Recv(None), mn.Send(None, 1))], ids=["no-cases", "nil-cases"])
def test_select_no_cases_deadlock(cases: tuple[Any, ...]) -> None:
    async def main() -> None:
        await mn.select(*cases)

    with pytest.raises(mn.Deadlock, match="all goroutines are asleep") as ei:
        mn.run(main, procs=2)
    assert "select (no cases)" in str(ei.value)


def test_parked_select_woken_by_close(procs: int, switchinterval: float) -> None:
    async def main() -> None:
        for _ in range(20):
            a: mn.Chan[int] = mn.Chan()
            b: mn.Chan[int] = mn.Chan()
            out: mn.Chan[tuple[int, Any, bool]] = mn.Chan(1)

            async def sel(a: mn.Chan[int], b: mn.Chan[int], out: mn.Chan[tuple[int, Any, bool]]) -> None:
                await out.send(await mn.select(mn.Recv(a), mn.Recv(b)))

            mn.go(sel, a, b, out)
            await mn.gosched()
            b.close()
            assert await out.recv() == (1, None, False)
            assert _queues_empty(a, b)

    mn.run(main, procs=procs)


# --- select3: which operations block ---


async def _blocks(f: Callable[[], Awaitable[Any]], patience: float) -> bool:
    """_blocks runs f in a new G and reports whether it is still waiting after `patience` s."""
    done: mn.Chan[bool] = mn.Chan(1)

    async def run() -> None:
        await f()
        await done.send(True)

    mn.go(run)
    idx, _, _ = await mn.select(mn.Recv(done), mn.Recv(mn.after(patience)))
    return idx == 1


def test_select3_blocking_table(procs: int) -> None:
    async def main() -> None:
        closed: mn.Chan[int] = mn.Chan(1)
        closed.close()

        def full() -> mn.Chan[int]:
            c: mn.Chan[int] = mn.Chan(1)
            c.try_send(1)
            return c

        # Every row gets fresh channels: a G left blocked by one row must not serve the next.
        table: list[tuple[str, Callable[[], Awaitable[Any]], bool]] = [
            ("recv nil", lambda: mn.select(mn.Recv(None)), True),
            ("send nil", lambda: mn.select(mn.Send(None, 1)), True),
            ("recv unbuffered", lambda: mn.Chan().recv(), True),
            ("send unbuffered", lambda: mn.Chan().send(1), True),
            ("recv empty buffered", lambda: mn.Chan(1).recv_ok(), True),
            ("send full buffered", lambda: full().send(2), True),
            ("recv closed", closed.recv_ok, False),
            ("send buffered with room", lambda: mn.Chan(1).send(1), False),
            ("recv full buffered", lambda: full().recv(), False),
            ("select default", lambda: mn.select(mn.Recv(mn.Chan()), default=True), False),
            ("select empty", lambda: mn.select(mn.Recv(mn.Chan()), mn.Send(mn.Chan(), 1)), True),
            ("select closed", lambda: mn.select(mn.Recv(mn.Chan()), mn.Recv(closed)), False),
            ("select room", lambda: mn.select(mn.Recv(mn.Chan()), mn.Send(mn.Chan(1), 1)), False),
        ]
        for name, f, want in table:
            # An operation that must block is given 30 ms to (wrongly) finish; one that must not
            # block is given 2 s, so a loaded machine cannot turn a slow start into a failure.
            assert await _blocks(f, 0.03 if want else 2.0) == want, name

    mn.run(main, procs=procs)


# --- doubleselect: values sent through selects over 4 channels arrive exactly once ---


def test_doubleselect(procs: int, switchinterval: float) -> None:
    n = 2000

    async def main() -> list[int]:
        cs: list[mn.Chan[int]] = [mn.Chan() for _ in range(4)]
        got: mn.Chan[int] = mn.Chan(64)

        async def sender() -> None:
            for i in range(n):
                await mn.select(*(mn.Send(c, i) for c in cs))
            for c in cs:
                c.close()

        async def mux(c: mn.Chan[int]) -> None:
            async for v in c:
                await got.send(v)

        mn.go(sender)
        for c in cs:
            mn.go(mux, c)
            mn.go(mux, c)  # two receivers per channel: Go's doubleselect "recver" pairs
        return [await got.recv() for _ in range(n)]

    vals = mn.run(main, procs=procs)
    assert sorted(vals) == list(range(n))


# --- TestSelectFairness: uniform choice among ready cases ---


def test_select_fairness(procs: int) -> None:
    trials = 4000

    async def main() -> list[int]:
        cs: list[mn.Chan[int]] = [mn.Chan(trials) for _ in range(2)]
        for c in cs:
            for i in range(trials):
                c.try_send(i)
        counts = [0, 0]
        for _ in range(trials):
            idx, _, ok = await mn.select(mn.Recv(cs[0]), mn.Recv(cs[1]))
            assert ok
            counts[idx] += 1
        return counts

    counts = mn.run(main, procs=procs)
    # Binomial(4000, 1/2): sigma ~ 31.6; 6 sigma leaves a false alarm probability below 1e-8.
    assert abs(counts[0] - trials / 2) < 190, counts


def test_select_seed_replays() -> None:
    async def main() -> list[int]:
        c1: mn.Chan[int] = mn.Chan(64)
        c2: mn.Chan[int] = mn.Chan(64)
        for i in range(64):
            c1.try_send(i)
            c2.try_send(i)
        return [(await mn.select(mn.Recv(c1), mn.Recv(c2)))[0] for _ in range(64)]

    a = mn.run(main, procs=1, seed=1234)
    b = mn.run(main, procs=1, seed=1234)
    c = mn.run(main, procs=1, seed=4321)
    assert a == b
    assert a != c  # equal with probability 2**-64


# --- TestSelectStress ---


def test_select_stress(procs: int, switchinterval: float) -> None:
    """Unbuffered and buffered channels, each driven by a plain sender/receiver and by selects
    over all four; every value sent is received once. The tallies are shared by goroutines on
    several Ms, so they change under a lock (`+=` on a list item is not atomic without the GIL)."""
    n = 600
    tally = threading.Lock()

    async def main() -> tuple[list[int], list[int]]:
        cs: list[mn.Chan[int]] = [mn.Chan(), mn.Chan(), mn.Chan(2), mn.Chan(3)]
        sent = [0] * 4
        recvd = [0] * 4
        wg = mn.WaitGroup()

        async def plain_sender(k: int) -> None:
            for _ in range(n):
                await cs[k].send(1)
                with tally:
                    sent[k] += 1
            wg.done()

        async def plain_receiver(k: int) -> None:
            for _ in range(n):
                v = await cs[k].recv()  # not `recvd[k] += await ...`: that reads recvd[k] before parking
                with tally:
                    recvd[k] += v
            wg.done()

        async def select_sender() -> None:
            left = [n] * 4
            while any(left):
                cases = [mn.Send(c if left[i] else None, 1) for i, c in enumerate(cs)]
                i, _, _ = await mn.select(*cases)
                left[i] -= 1
                with tally:
                    sent[i] += 1
            wg.done()

        async def select_receiver() -> None:
            left = [n] * 4
            while any(left):
                cases = [mn.Recv(c if left[i] else None) for i, c in enumerate(cs)]
                i, v, ok = await mn.select(*cases)
                assert ok
                left[i] -= 1
                with tally:
                    recvd[i] += v
            wg.done()

        wg.add(10)
        for k in range(4):
            mn.go(plain_sender, k)
            mn.go(plain_receiver, k)
        mn.go(select_sender)
        mn.go(select_receiver)
        await wg.wait()
        assert _queues_empty(*cs)
        return sent, recvd

    sent, recvd = mn.run(main, procs=procs)
    assert sent == recvd == [2 * n] * 4


# --- the same channel in several cases ---


def test_same_channel_twice_ready(procs: int) -> None:
    async def main() -> list[int]:
        c: mn.Chan[int] = mn.Chan(200)
        for i in range(200):
            c.try_send(i)
        seen = [0, 0]
        vals = []
        for _ in range(200):
            i, v, _ = await mn.select(mn.Recv(c), mn.Recv(c))
            seen[i] += 1
            vals.append(v)
        assert vals == list(range(200))
        return seen

    seen = mn.run(main, procs=procs)
    assert min(seen) > 40  # each index chosen (Binomial(200, 1/2) < 40: p < 1e-17)


def test_same_channel_twice_parked(procs: int, switchinterval: float) -> None:
    """A parked select with two receive cases, or a send and a receive, on one channel: a single
    partner completes exactly one case, and no sudog is left behind."""

    async def main() -> None:
        for it in range(30):
            c: mn.Chan[int] = mn.Chan()
            out: mn.Chan[tuple[int, Any, bool]] = mn.Chan(1)

            async def sel(it: int, c: mn.Chan[int], out: mn.Chan[tuple[int, Any, bool]]) -> None:
                if it % 2:
                    await out.send(await mn.select(mn.Recv(c), mn.Recv(c)))
                else:
                    await out.send(await mn.select(mn.Send(c, 7), mn.Recv(c)))

            mn.go(sel, it, c, out)
            if it % 2:
                await c.send(it)
                i, v, ok = await out.recv()
                assert i in (0, 1) and v == it and ok
            else:
                assert await c.recv() == 7
                assert await out.recv() == (0, None, True)
            assert _queues_empty(c)

    mn.run(main, procs=procs)


def test_select_losers_removed(procs: int, switchinterval: float) -> None:
    """Many parked selects over shared channels, each woken by one case: the queues end empty."""

    async def main() -> None:
        cs: list[mn.Chan[int]] = [mn.Chan() for _ in range(3)]
        res: mn.Chan[int] = mn.Chan(100)
        nsel = 60

        async def sel() -> None:
            _, v, _ = await mn.select(*(mn.Recv(c) for c in cs))
            await res.send(v)

        for _ in range(nsel):
            mn.go(sel)
        for i in range(nsel):
            await cs[i % 3].send(i)
        got = sorted([await res.recv() for _ in range(nsel)])
        assert got == list(range(nsel))
        assert _queues_empty(*cs)

    mn.run(main, procs=procs)


def test_two_selects_opposite_order_no_deadlock(procs: int, switchinterval: float) -> None:
    """Selects naming the same channels in opposite orders on different Ms cannot deadlock
    (channels are locked in one global order)."""

    async def main() -> int:
        a: mn.Chan[int] = mn.Chan()
        b: mn.Chan[int] = mn.Chan()
        n = 500
        total = 0

        async def one() -> None:
            for i in range(n):
                await mn.select(mn.Send(a, i), mn.Send(b, i))

        mn.go(one)
        for _ in range(n):
            _, v, _ = await mn.select(mn.Recv(b), mn.Recv(a))
            total += v
        return total

    assert mn.run(main, procs=procs) == 500 * 499 // 2


def test_pseudo_random_send(procs: int) -> None:
    """Go's TestPseudoRandomSend: a select with two Send cases on one unbuffered channel, against a
    receiver that yields first (so the select parks with both sudogs queued on the channel), picks
    either case at random."""

    async def main() -> list[int]:
        c: mn.Chan[int] = mn.Chan()
        n = 100
        got: list[int] = []

        async def receiver() -> None:
            for _ in range(n):
                await mn.gosched()
                got.append(await c.recv())

        g = mn.go(receiver)
        for _ in range(n):
            await mn.select(mn.Send(c, 1), mn.Send(c, 0))
        await g.join()
        return got

    got = mn.run(main, procs=procs)
    assert len(got) == 100
    # Binomial(100, 1/2) <= 10: p < 1e-15.
    assert got.count(0) > 10 and got.count(1) > 10, got


def test_select_send_and_recv_same_channel_invariant_checked(monkeypatch: pytest.MonkeyPatch, procs: int) -> None:
    """With lock checking on, every wait checks the channel invariants; a select parked with a Send
    and a Recv case on one unbuffered channel (sudogs on both queues) satisfies them."""
    monkeypatch.setenv("MN_DEBUG", "lockcheck=1")

    async def main() -> int:
        c: mn.Chan[int] = mn.Chan()
        total = 0

        async def sel() -> None:
            for i in range(50):
                await mn.select(mn.Send(c, i), mn.Recv(c))

        g = mn.go(sel)
        for _ in range(50):
            await mn.sleep(0)
            total += await c.recv()
        await g.join()
        return total

    assert mn.run(main, procs=procs) == sum(range(50))


def test_channel_invariant_check_finds_a_broken_state() -> None:
    """checkinv throws when two different Gs wait to send and to receive on one channel."""
    from types import SimpleNamespace

    from mn_runtime._rt.waitq import Sudog
    from mn_runtime.errors import Throw

    c: mn.Chan[int] = mn.Chan()
    with c.lock:
        c.checkinv("test")  # empty: fine
        c.sendq.enqueue(Sudog(SimpleNamespace(selectdone=None), 1, c))  # type: ignore[arg-type]
        c.checkinv("test")  # one sender: fine
        c.recvq.enqueue(Sudog(SimpleNamespace(selectdone=None), None, c))  # type: ignore[arg-type]
        with pytest.raises(Throw, match="senders and receivers wait at once"):
            c.checkinv("test")
    b: mn.Chan[int] = mn.Chan(2)
    with b.lock:
        b.sendq.enqueue(Sudog(SimpleNamespace(selectdone=None), 1, b))  # type: ignore[arg-type]
        with pytest.raises(Throw, match="a sender waits while the buffer has room"):
            b.checkinv("test")
