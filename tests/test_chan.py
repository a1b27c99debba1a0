"""Channel tests: behaviour of Go's runtime/chan_test.go (TestChan, TestMultiConsumer) and
test/chan (sieve, fifo, goroutines, nonblock, powser), close races, and a many-producer,
many-consumer checksum, at several procs."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime._rt.waitq import Sudog, WaitQ

pytestmark = pytest.mark.concurrency


# --- the wait queue, without threads ---


def test_waitq_fifo_and_o1_remove() -> None:
    q = WaitQ()
    sgs = [Sudog(None, i) for i in range(5)]  # type: ignore[arg-type]
    for sg in sgs:
        q.enqueue(sg)
    assert len(q) == 5
    assert q.remove(sgs[2]) and not q.remove(sgs[2])
    assert q.remove(sgs[4])  # the tail
    assert q.remove(sgs[0])  # the head
    assert [sg.elem for sg in q] == [1, 3]
    q.push_front(sgs[0])
    assert [q.dequeue().elem for _ in range(3)] == [0, 1, 3]  # type: ignore[union-attr]
    assert q.dequeue() is None and len(q) == 0 and q.first is None and q.last is None


def test_waitq_rejects_double_enqueue() -> None:
    q = WaitQ()
    sg = Sudog(None)  # type: ignore[arg-type]
    q.enqueue(sg)
    with pytest.raises(mn.errors.Throw, match="already on a queue"):
        q.enqueue(sg)


# --- bad input ---


def test_bad_capacity() -> None:
    with pytest.raises(ValueError, match="capacity must be >= 0"):
        mn.Chan(-1)
    with pytest.raises(TypeError, match="capacity must be an int"):
        mn.Chan(1.5)  # type: ignore[arg-type]


def test_closed_channel_errors() -> None:
    async def main() -> None:
        c: mn.Chan[int] = mn.Chan(1)
        c.close()
        with pytest.raises(mn.ChannelClosed, match="close of closed channel"):
            c.close()
        with pytest.raises(mn.ChannelClosed, match="send on closed channel"):
            await c.send(1)
        with pytest.raises(mn.ChannelClosed, match="send on closed channel"):
            c.try_send(1)
        with pytest.raises(mn.ChannelClosed, match="receive from closed channel"):
            await c.recv()
        assert await c.recv_ok() == (None, False)
        assert c.try_recv() == (None, False, True)

    mn.run(main, procs=1)


# --- TestChan over capacities ---


@pytest.mark.parametrize("cap", [0, 1, 2, 5, 16])
def test_chan_semantics(cap: int, procs: int, switchinterval: float) -> None:
    async def main() -> None:
        # An empty channel blocks a receiver until a send.
        c: mn.Chan[int] = mn.Chan(cap)
        got: list[int] = []

        async def recv1() -> None:
            got.append(await c.recv())

        g = mn.go(recv1)
        for _ in range(5):
            await mn.gosched()
        assert got == [] and not g.done
        await c.send(7)
        await g.join()
        assert got == [7]

        # A full channel blocks a sender until a receive.
        for i in range(cap):
            await c.send(i)
        assert len(c) == cap and c.cap == cap
        sent = []

        async def send1() -> None:
            await c.send(100)
            sent.append(True)

        g = mn.go(send1)
        for _ in range(5):
            await mn.gosched()
        assert sent == [] and not g.done
        for i in range(cap):
            assert await c.recv() == i
        assert await c.recv() == 100
        await g.join()

        # Close: buffered values first, then (None, False), and iteration ends.
        for i in range(cap):
            await c.send(i)
        c.close()
        assert [v async for v in c] == list(range(cap))
        assert await c.recv_ok() == (None, False)

        # FIFO across one sender and one receiver, many values.
        c2: mn.Chan[int] = mn.Chan(cap)

        async def producer() -> None:
            for i in range(300):
                await c2.send(i)
            c2.close()

        mn.go(producer)
        assert [v async for v in c2] == list(range(300))

    mn.run(main, procs=procs)


@pytest.mark.parametrize("cap", [0, 1, 16])
def test_multi_consumer_sum(cap: int, procs: int, switchinterval: float) -> None:
    """TestMultiConsumer: 4 producers, 8 consumers; every value arrives exactly once."""
    nwork, nper = 4, 300

    async def main() -> tuple[int, int]:
        q: mn.Chan[int] = mn.Chan(cap)
        results: mn.Chan[tuple[int, int]] = mn.Chan()
        wg = mn.WaitGroup()

        async def producer(base: int) -> None:
            for i in range(nper):
                await q.send(base + i)
            wg.done()

        async def consumer() -> None:
            n = s = 0
            async for v in q:
                n += 1
                s += v
            await results.send((n, s))

        wg.add(nwork)
        for w in range(nwork):
            mn.go(producer, w * nper)
        for _ in range(8):
            mn.go(consumer)
        await wg.wait()
        q.close()
        n = s = 0
        for _ in range(8):
            a, b = await results.recv()
            n += a
            s += b
        return n, s

    total = nwork * nper
    assert mn.run(main, procs=procs) == (total, total * (total - 1) // 2)


def test_buffered_fifo_many_senders(procs: int, switchinterval: float) -> None:
    """Each sender's values arrive in its own order, whichever receiver takes them."""

    async def main() -> dict[int, list[int]]:
        c: mn.Chan[tuple[int, int]] = mn.Chan(3)
        out: mn.Chan[list[tuple[int, int]]] = mn.Chan(4)
        wg = mn.WaitGroup()

        async def sender(k: int) -> None:
            for i in range(200):
                await c.send((k, i))
            wg.done()

        async def receiver() -> None:
            await out.send([v async for v in c])

        wg.add(4)
        for k in range(4):
            mn.go(sender, k)
        mn.go(receiver)
        await wg.wait()
        c.close()
        seq = await out.recv()
        per: dict[int, list[int]] = {}
        for k, i in seq:
            per.setdefault(k, []).append(i)
        return per

    per = mn.run(main, procs=procs)
    assert per == {k: list(range(200)) for k in range(4)}


# --- test/chan programs ---


def test_sieve(procs: int, switchinterval: float) -> None:
    """Go's sieve.go: a chain of filter goroutines over unbuffered channels."""

    async def generate(ch: mn.Chan[int]) -> None:
        i = 2
        while True:
            await ch.send(i)
            i += 1

    async def filt(inp: mn.Chan[int], out: mn.Chan[int], prime: int) -> None:
        while True:
            i = await inp.recv()
            if i % prime:
                await out.send(i)

    async def main() -> list[int]:
        ch: mn.Chan[int] = mn.Chan()
        mn.go(generate, ch)
        primes = []
        for _ in range(40):
            prime = await ch.recv()
            primes.append(prime)
            ch1: mn.Chan[int] = mn.Chan()
            mn.go(filt, ch, ch1, prime)
            ch = ch1
        return primes

    primes = mn.run(main, procs=procs)
    expect = [n for n in range(2, 200) if all(n % d for d in range(2, n))][:40]
    assert primes == expect


def test_fifo(procs: int, switchinterval: float) -> None:
    """Go's fifo.go: buffered order, and a chain of Gs each released by the previous one."""

    async def main() -> None:
        c: mn.Chan[int] = mn.Chan(10)
        for i in range(10):
            await c.send(i)
        for i in range(10):
            assert await c.recv() == i

        n = 50
        order: list[int] = []

        async def chain(k: int, inp: mn.Chan[int], out: mn.Chan[int]) -> None:
            v = await inp.recv()
            order.append(k)
            assert v == k
            await out.send(v + 1)

        start: mn.Chan[int] = mn.Chan()
        inp = start
        for k in range(n):
            out: mn.Chan[int] = mn.Chan()
            mn.go(chain, k, inp, out)
            inp = out
        await start.send(0)
        assert await inp.recv() == n
        assert order == list(range(n))

    mn.run(main, procs=procs)


def test_goroutine_chain(procs: int) -> None:
    """Go's goroutines.go: a value passes through a chain of many goroutines, each adding one."""
    n = 2000

    async def f(left: mn.Chan[int], right: mn.Chan[int]) -> None:
        await left.send(await right.recv() + 1)

    async def main() -> int:
        leftmost: mn.Chan[int] = mn.Chan()
        right = leftmost
        for _ in range(n):
            left, right = right, mn.Chan()
            mn.go(f, left, right)
        await right.send(0)
        return await leftmost.recv()

    assert mn.run(main, procs=procs) == n


def test_nonblock(procs: int, switchinterval: float) -> None:
    """Go's nonblock.go: try_send/try_recv never wait, and succeed once a partner is parked."""

    async def main() -> None:
        for cap in (0, 1):
            c: mn.Chan[int] = mn.Chan(cap)
            assert c.try_recv() == (None, False, False)
            if cap == 0:
                assert not c.try_send(1)

            # A parked receiver makes try_send succeed (poll with gosched until it is parked).
            got: list[int] = []

            async def r(c: mn.Chan[int], got: list[int]) -> None:
                got.append(await c.recv())

            g = mn.go(r, c, got)
            for _ in range(10_000):
                if c.try_send(42):
                    break
                await mn.gosched()
            else:
                pytest.fail("try_send never found the parked receiver")
            await g.join()
            assert got == [42]

            # A parked sender makes try_recv succeed.
            g = mn.go(c.send, 43)
            for _ in range(10_000):
                v, ok, received = c.try_recv()
                if received:
                    assert (v, ok) == (43, True)
                    break
                await mn.gosched()
            else:
                pytest.fail("try_recv never found the parked sender")
            await g.join()
            assert c.stats()["sendq"] == 0 and c.stats()["recvq"] == 0

    mn.run(main, procs=procs)


# --- powser: power series as networks of goroutines (Go's test/chan/powser1.go, a few terms) ---


def _series(gen: Any) -> mn.Chan[Fraction]:
    c: mn.Chan[Fraction] = mn.Chan()
    mn.go(gen, c)
    return c


def _split(u: mn.Chan[Fraction]) -> tuple[mn.Chan[Fraction], mn.Chan[Fraction]]:
    """_split copies a stream into two, serving whichever reader is ready first (select)."""
    a: mn.Chan[Fraction] = mn.Chan()
    b: mn.Chan[Fraction] = mn.Chan()

    async def run() -> None:
        while True:
            v = await u.recv()
            pa: mn.Chan[Fraction] | None = a
            pb: mn.Chan[Fraction] | None = b
            while pa is not None or pb is not None:
                i, _, _ = await mn.select(mn.Send(pa, v), mn.Send(pb, v))
                if i == 0:
                    pa = None
                else:
                    pb = None

    mn.go(run)
    return a, b


def _integ(c0: Fraction, u: mn.Chan[Fraction]) -> mn.Chan[Fraction]:
    async def gen(out: mn.Chan[Fraction]) -> None:
        await out.send(c0)
        i = 1
        while True:
            await out.send(await u.recv() / i)
            i += 1

    return _series(gen)


def _mul(u: mn.Chan[Fraction], v: mn.Chan[Fraction]) -> mn.Chan[Fraction]:
    async def gen(out: mn.Chan[Fraction]) -> None:
        us: list[Fraction] = []
        vs: list[Fraction] = []
        while True:
            us.append(await u.recv())
            vs.append(await v.recv())
            n = len(us)
            await out.send(sum((us[k] * vs[n - 1 - k] for k in range(n)), Fraction(0)))

    return _series(gen)


def test_powser(procs: int) -> None:
    async def main() -> tuple[list[Fraction], list[Fraction]]:
        async def ones(out: mn.Chan[Fraction]) -> None:
            while True:
                await out.send(Fraction(1))

        sq = _mul(_series(ones), _series(ones))  # 1/(1-x)^2 = sum (n+1) x^n
        a = [await sq.recv() for _ in range(8)]
        # exp(x) = 1 + integral of exp(x): a feedback loop through split.
        fb: mn.Chan[Fraction] = mn.Chan()
        e = _integ(Fraction(1), fb)
        out, back = _split(e)

        async def feed() -> None:
            while True:
                await fb.send(await back.recv())

        mn.go(feed)
        b = [await out.recv() for _ in range(8)]
        return a, b

    a, b = mn.run(main, procs=procs)
    assert a == [Fraction(n + 1) for n in range(8)]
    fact = 1
    want = []
    for n in range(8):
        want.append(Fraction(1, fact))
        fact *= n + 1
    assert b == want


# --- close races ---


@pytest.mark.parametrize("cap", [0, 2])
def test_close_races(cap: int, procs: int, switchinterval: float) -> None:
    """Close while senders and receivers are parked or arriving on other Ms: every value sent
    successfully is received exactly once; every sender either succeeds or raises."""

    async def sender(c: mn.Chan[int], k: int, sent: list[int], failed: list[int], wg: mn.WaitGroup) -> None:
        try:
            await c.send(k)
            sent.append(k)
        except mn.ChannelClosed:
            failed.append(k)
        wg.done()

    async def receiver(c: mn.Chan[int], recvd: list[int], wg: mn.WaitGroup) -> None:
        async for v in c:
            recvd.append(v)
        wg.done()

    async def main() -> None:
        for it in range(15):
            c: mn.Chan[int] = mn.Chan(cap)
            sent: list[int] = []
            recvd: list[int] = []
            failed: list[int] = []
            wg = mn.WaitGroup()

            wg.add(12)
            for k in range(6):
                mn.go(sender, c, k, sent, failed, wg)
                mn.go(receiver, c, recvd, wg)
            for _ in range(it % 3):
                await mn.gosched()
            c.close()
            await wg.wait()
            assert sorted(sent + failed) == list(range(6))
            assert sorted(recvd) == sorted(sent)
            st = c.stats()
            assert st["sendq"] == 0 and st["recvq"] == 0 and st["qcount"] == 0

    mn.run(main, procs=procs)


# --- many producers, many consumers, exact checksum ---


def _mpmc(total: int, procs: int, cap: int) -> tuple[int, int]:
    async def main() -> tuple[int, int]:
        c: mn.Chan[int] = mn.Chan(cap)
        res: mn.Chan[tuple[int, int]] = mn.Chan(8)
        per = total // 8

        async def producer(base: int) -> None:
            for i in range(base, base + per):
                await c.send(i)

        async def consumer() -> None:
            n = s = 0
            async for v in c:
                n += 1
                s += v
            await res.send((n, s))

        for _ in range(8):
            mn.go(consumer)
        async with mn.Group() as g:
            for k in range(8):
                g.go(producer, k * per)
        c.close()
        n = s = 0
        for _ in range(8):
            a, b = await res.recv()
            n += a
            s += b
        return n, s

    return mn.run(main, procs=procs)


@pytest.mark.parametrize("procs", [1, 4])
def test_mpmc_checksum(procs: int, switchinterval: float) -> None:
    """2*10^5 messages through 8 producers and 8 consumers (10^6: the slow test below)."""
    total = 200_000 if switchinterval > 1e-5 else 40_000
    assert _mpmc(total, procs, 128) == (total, total * (total - 1) // 2)


def test_mpmc_checksum_million() -> None:
    """10^6 messages, 8 producers, 8 consumers (about 3 s on 2 cores, so run once, at procs=4)."""
    total = 1_000_000
    assert _mpmc(total, 4, 128) == (total, total * (total - 1) // 2)


def test_sudog_cache_is_reused_and_checked() -> None:
    """A G's channel waits reuse its one cached sudog (acquire_sudog/release_sudog), which drops the
    value and the channel when given back; giving back a sudog that is still queued, or a select's,
    is an internal error (Go's releaseSudog checks)."""
    import contextvars

    from mn_runtime._rt.g import G
    from mn_runtime._rt.waitq import acquire_sudog, release_sudog
    from mn_runtime.errors import Throw
    from mn_runtime.runtime import _gof

    seen: list[int] = []

    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()

        async def receiver() -> None:
            for _ in range(3):
                await ch.recv()  # parks each time: the sender sleeps first
                me = _gof(mn.current())  # the G behind the handle
                assert me.sudog is not None and me.sudog.elem is None and me.sudog.c is None
                seen.append(id(me.sudog))

        g = mn.go(receiver)
        for i in range(3):
            await mn.sleep(0.01)
            await ch.send(i)
        await g.join()

    mn.run(main, procs=1)
    assert len(seen) == 3 and len(set(seen)) == 1  # one sudog for all three waits

    async def nothing() -> None:
        pass

    coro = nothing()
    coro.close()
    gp = G(1, coro, contextvars.copy_context(), "t")
    sg = acquire_sudog(gp, 5, None)
    q = WaitQ()
    q.enqueue(sg)
    with pytest.raises(Throw, match="release_sudog: sudog still on a queue"):
        release_sudog(gp, sg)
    assert q.dequeue() is sg
    release_sudog(gp, sg)
    assert gp.sudog is sg and acquire_sudog(gp, 7, None) is sg and sg.elem == 7 and gp.sudog is None
    sel = Sudog(gp, None, None, True, 0)
    with pytest.raises(Throw, match="part of a select"):
        release_sudog(gp, sel)
