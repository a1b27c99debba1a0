"""The channel transfer: one locked step per direction (Chan._sendlocked, Chan._recvlocked), the
inlined copies on the hot path (Chan.send; recv_ok, the receive behind recv and `async for`), and
select's steps (lock order, poll order, pass 1 through the same locked steps).

TestInlineAgrees builds every state a channel can be in when an operation takes its lock (empty,
partly full, full, closed with and without values, waiting senders and receivers, plain and
select, a select another waker already won, one select waiting on both sides of an unbuffered
channel) and runs every entry point of a direction on its own copy of that state, without threads
or a scheduler: the inlined copies must do exactly what the locked step does, in what they return
or raise, the buffer, both queues, and which waiter wakes with what. The integration test then
mixes every entry point of both directions on shared channels at procs 1, 2 and 4.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Generator
from types import SimpleNamespace
from typing import Any

import pytest

import mn_runtime as mn
from mn_runtime._rt.g import RUNNABLE, WAITING
from mn_runtime._rt.tls import tls
from mn_runtime._rt.traps import PARK
from mn_runtime._rt.waitq import Sudog
from mn_runtime.select import _lockorder, _pollorder

pytestmark = pytest.mark.concurrency

# --- TestInlineAgrees: the states ---


class _World:
    """_World is one channel in a given state, with the waiting Gs (fakes: goready needs only a
    lock and a status outside a run) named so that outcomes can be compared across copies."""

    def __init__(self, cap: int) -> None:
        self.ch: mn.Chan[Any] = mn.Chan(cap)
        self.names: dict[int, str] = {}  # id(sudog) -> name
        self.sudogs: dict[str, Sudog] = {}
        self.gs: dict[str, Any] = {}

    def g(self, name: str, select: bool = False, won: bool = False) -> Any:
        gp = self.gs.get(name)
        if gp is None:
            gp = SimpleNamespace(
                lock=threading.Lock(), status=WAITING, param=None, sudog=None, selectdone=None, preempt=False
            )
            if select:
                gp.selectdone = threading.Lock()
                if won:  # another channel's waker won this select already
                    gp.selectdone.acquire()
            self.gs[name] = gp
        return gp

    def wait(self, q: str, name: str, elem: Any = None, select: bool = False, won: bool = False) -> None:
        gp = self.g(name, select, won)
        sg = Sudog(gp, elem, self.ch, select, 0 if select else -1)
        (self.ch.sendq if q == "send" else self.ch.recvq).enqueue(sg)
        self.names[id(sg)] = f"{name}/{q}"
        self.sudogs[f"{name}/{q}"] = sg

    def snapshot(self) -> tuple[Any, ...]:
        """snapshot: the channel and every waiter, by name, comparable across copies."""
        ch = self.ch
        woken = []
        for key, sg in sorted(self.sudogs.items()):
            gp = sg.g
            sel = None if gp.selectdone is None else gp.selectdone.locked()
            woken.append((key, gp.status.name, sg.success, sg.elem, gp.param is sg, sg.q is not None, sel))
        return (
            list(ch.buf),
            ch.closed,
            [self.names.get(id(sg), "self") for sg in ch.sendq],
            [self.names.get(id(sg), "self") for sg in ch.recvq],
            woken,
        )


def _state(name: str, cap: int) -> _World:
    """_state builds the named channel state on a fresh channel of capacity cap."""
    w = _World(cap)
    ch = w.ch
    full = list(range(10, 10 + cap))
    if name == "empty":
        pass
    elif name == "partial":
        ch.buf.append(10)
    elif name == "full":
        ch.buf.extend(full)
    elif name == "sender":  # a sender waits only while the buffer is full
        ch.buf.extend(full)
        w.wait("send", "s1", 20)
    elif name == "senders":
        ch.buf.extend(full)
        w.wait("send", "s1", 20)
        w.wait("send", "s2", 21)
    elif name == "receiver":
        w.wait("recv", "r1")
    elif name == "receivers":
        w.wait("recv", "r1")
        w.wait("recv", "r2")
    elif name == "select-receiver":
        w.wait("recv", "sel", select=True)
    elif name == "select-sender":
        ch.buf.extend(full)
        w.wait("send", "sel", 30, select=True)
    elif name == "won-receiver":  # only a select sudog whose select another waker won
        w.wait("recv", "sel", select=True, won=True)
    elif name == "won-then-receiver":
        w.wait("recv", "sel", select=True, won=True)
        w.wait("recv", "r1")
    elif name == "won-sender":
        ch.buf.extend(full)
        w.wait("send", "sel", 30, select=True, won=True)
    elif name == "won-then-sender":
        ch.buf.extend(full)
        w.wait("send", "sel", 30, select=True, won=True)
        w.wait("send", "s1", 20)
    elif name == "select-both":  # one select, a Recv and a Send case on one unbuffered channel
        w.wait("recv", "sel", select=True)
        w.wait("send", "sel", 30, select=True)
    elif name == "closed":
        ch.closed = True
    elif name == "closed-buffered":
        ch.buf.extend(full[:1])
        ch.closed = True
    else:
        raise AssertionError(name)
    return w


_STATES = [
    "empty",
    "partial",
    "full",
    "sender",
    "senders",
    "receiver",
    "receivers",
    "select-receiver",
    "select-sender",
    "won-receiver",
    "won-then-receiver",
    "won-sender",
    "won-then-sender",
    "select-both",
    "closed",
    "closed-buffered",
]


def _valid(name: str, cap: int) -> bool:
    """_valid: the state can exist at this capacity (the channel invariants of chan.py)."""
    if name == "partial":
        return cap >= 2
    if name in ("full", "closed-buffered"):
        return cap >= 1
    if name == "select-both":
        return cap == 0
    return True


_CASES = [(name, cap) for cap in (0, 1, 2) for name in _STATES if _valid(name, cap)]

# --- TestInlineAgrees: driving an entry point without a scheduler ---


def _drive(coro: Generator[Any, Any, Any] | Any) -> tuple[str, Any]:
    """_drive steps a channel coroutine once: ("done", value), ("raised", exception type), or
    ("parked", None) after releasing the lock its PARK trap hands the M (goparkunlock)."""
    try:
        trap = coro.send(None)
    except StopIteration as e:
        return "done", e.value
    except (mn.ChannelClosed, StopAsyncIteration) as e:
        return "raised", type(e)
    assert trap[0] == PARK, trap
    lock = trap[2] if trap[1] is None else None
    if lock is not None:
        lock.release()
    else:  # select's commit releases every channel lock
        assert trap[1](None, trap[2]) is True
    coro.close()
    return "parked", None


class _Me:
    """_Me makes the test thread look like an M running a G (tls.m.curg), for the paths that would
    park or that select needs; restores tls.m after."""

    def __enter__(self) -> Any:
        self.gp = SimpleNamespace(
            lock=threading.Lock(), status=WAITING, param=None, sudog=None, selectdone=None, preempt=False
        )
        self.old = tls.m
        tls.m = SimpleNamespace(curg=self.gp, rng=random.Random(1), p=None)  # type: ignore[assignment]
        return self.gp

    def __exit__(self, *exc: object) -> None:
        tls.m = self.old


def _send_outcome(how: str, w: _World, v: Any) -> tuple[str, Any]:
    """_send_outcome sends v on w's channel through one entry point and says what happened:
    ("sent", None), ("closed", None) or ("blocks", None); a path that parked must have queued
    one sudog of its own holding v, at the tail of sendq."""
    ch = w.ch
    with _Me():
        if how == "send":
            kind, r = _drive(ch.send(v))
            if kind == "parked":
                sg = ch.sendq.last
                assert sg is not None and id(sg) not in w.names and sg.elem == v and not sg.isselect
                ch.sendq.remove(sg)
                return "blocks", None
            if kind == "raised":
                assert r is mn.ChannelClosed
                return "closed", None
            return "sent", None
        if how == "try_send":
            try:
                return ("sent" if ch.try_send(v) else "blocks"), None
            except mn.ChannelClosed:
                return "closed", None
        if how == "select":
            kind, r = _drive(mn.select(mn.Send(ch, v), default=True))
            if kind == "raised":
                assert r is mn.ChannelClosed
                return "closed", None
            assert kind == "done", kind
            return ("blocks" if r == (-1, None, False) else "sent"), None
        if how == "step":  # the locked step itself, as every caller uses it
            ch.lock.acquire()
            r = ch._sendlocked(v)
            ch.lock.release()
            if r is None:
                return "blocks", None
            if r is False:
                return "closed", None
            if r is not True:
                r.ready(True)
            return "sent", None
    raise AssertionError(how)


def _recv_outcome(how: str, w: _World) -> tuple[str, Any]:
    """_recv_outcome receives from w's channel through one entry point: ("value", v),
    ("closed", None) or ("blocks", None); a path that parked must have queued one sudog of its
    own at the tail of recvq."""
    ch = w.ch
    with _Me():
        if how in ("recv_ok", "recv", "anext"):
            coro = ch.recv_ok() if how == "recv_ok" else ch.recv() if how == "recv" else ch.__anext__()
            kind, r = _drive(coro)
            if kind == "parked":
                sg = ch.recvq.last
                assert sg is not None and id(sg) not in w.names and not sg.isselect
                ch.recvq.remove(sg)
                return "blocks", None
            if kind == "raised":
                assert r is (StopAsyncIteration if how == "anext" else mn.ChannelClosed), (how, r)
                assert how != "recv_ok"
                return "closed", None
            if how == "recv_ok":
                v, ok = r
                return ("value", v) if ok else ("closed", None)
            return "value", r
        if how == "try_recv":
            v, ok, received = ch.try_recv()
            if not received:
                return "blocks", None
            return ("value", v) if ok else ("closed", None)
        if how == "select":
            kind, r = _drive(mn.select(mn.Recv(ch), default=True))
            assert kind == "done", kind
            i, v, ok = r
            if i == -1:
                return "blocks", None
            return ("value", v) if ok else ("closed", None)
        if how == "step":
            ch.lock.acquire()
            r = ch._recvlocked()
            ch.lock.release()
            if r is None:
                return "blocks", None
            v, ok, sg = r
            if sg is not None:
                sg.ready(True)
            return ("value", v) if ok else ("closed", None)
    raise AssertionError(how)


class TestInlineAgrees:
    """The inlined copies (send; recv_ok, recv, __anext__) and the locked step's callers
    (try_send, try_recv, select's pass 1) do what the locked step does, in every state."""

    @pytest.mark.parametrize(("state", "cap"), _CASES)
    def test_send(self, state: str, cap: int) -> None:
        want_w = _state(state, cap)
        want = _send_outcome("step", want_w, 99)
        for how in ("send", "try_send", "select"):
            w = _state(state, cap)
            got = _send_outcome(how, w, 99)
            assert got == want, (how, state, cap)
            assert w.snapshot() == want_w.snapshot(), (how, state, cap)

    @pytest.mark.parametrize(("state", "cap"), _CASES)
    def test_recv(self, state: str, cap: int) -> None:
        want_w = _state(state, cap)
        want = _recv_outcome("step", want_w)
        for how in ("recv_ok", "recv", "anext", "try_recv", "select"):
            w = _state(state, cap)
            got = _recv_outcome(how, w)
            assert got == want, (how, state, cap)
            assert w.snapshot() == want_w.snapshot(), (how, state, cap)

    def test_step_answers(self) -> None:
        """The step's own answers in the telling states, so that agreeing cannot mean agreeing on
        something wrong: FIFO through a full buffer, the waiter woken, the won select skipped."""
        w = _state("sender", 2)
        assert _recv_outcome("step", w) == ("value", 10)
        assert list(w.ch.buf) == [11, 20]  # the sender's value joined the tail
        assert w.gs["s1"].status is RUNNABLE and w.sudogs["s1/send"].success
        w = _state("won-then-receiver", 0)
        assert _send_outcome("step", w, 5) == ("sent", None)
        r1 = w.sudogs["r1/recv"]
        assert r1.elem == 5 and r1.success and w.gs["r1"].param is r1
        assert w.gs["sel"].status is WAITING and w.sudogs["sel/recv"].q is None  # dropped
        w = _state("select-both", 0)
        assert _send_outcome("step", w, 7) == ("sent", None)
        assert w.gs["sel"].selectdone.locked() and w.sudogs["sel/recv"].elem == 7
        assert w.sudogs["sel/send"].q is w.ch.sendq  # the select unlinks its loser itself
        assert _recv_outcome("step", _state("closed-buffered", 1)) == ("value", 10)
        assert _recv_outcome("step", _state("closed", 0)) == ("closed", None)
        assert _send_outcome("step", _state("closed-buffered", 1), 1) == ("closed", None)
        assert _send_outcome("step", _state("won-sender", 0), 1) == ("blocks", None)


# --- select's steps, without threads ---


def test_lockorder() -> None:
    a: mn.Chan[int] = mn.Chan()
    b: mn.Chan[int] = mn.Chan(1)
    locks = _lockorder((mn.Recv(a), mn.Send(b, 1), mn.Recv(None), mn.Send(a, 2), mn.Recv(b)))
    assert sorted(map(id, locks)) == list(map(id, locks))
    assert len(locks) == 2 and {id(a.lock), id(b.lock)} == set(map(id, locks))
    assert _lockorder((mn.Recv(None),)) == []
    with pytest.raises(TypeError, match=r"cases must be mn\.Recv or mn\.Send"):
        _lockorder((mn.Recv(a), a))  # type: ignore[arg-type]


def test_pollorder_is_a_uniform_seeded_permutation() -> None:
    rng = random.Random(7)
    counts: dict[tuple[int, ...], int] = {}
    for _ in range(6000):
        order = _pollorder(3, rng)
        counts[tuple(order)] = counts.get(tuple(order), 0) + 1
    assert len(counts) == 6 and all(sorted(k) == [0, 1, 2] for k in counts)
    assert all(800 < n < 1200 for n in counts.values()), counts  # 1000 each
    assert _pollorder(1, rng) == [0]
    r1, r2 = random.Random(3), random.Random(3)
    assert [_pollorder(5, r1) for _ in range(20)] == [_pollorder(5, r2) for _ in range(20)]


# --- every entry point of both directions on shared channels, at procs 1, 2 and 4 ---

_SENDS = ("send", "try_send", "select", "select_default")
_RECVS = ("recv", "recv_ok", "anext", "try_recv", "select", "select_default")


async def _send_with(how: str, ch: mn.Chan[Any], v: Any, other: mn.Chan[Any]) -> None:
    """_send_with sends v on ch through entry point how; the non-blocking ones retry (yielding)
    until the send happens. `other` is a channel nobody sends on, a second select case."""
    if how == "send":
        await ch.send(v)
    elif how == "select":
        i, _, _ = await mn.select(mn.Recv(other), mn.Send(ch, v))
        assert i == 1
    else:
        while not (ch.try_send(v) if how == "try_send" else (await mn.select(mn.Send(ch, v), default=True))[0] == 0):
            await mn.gosched()


async def _recv_with(how: str, ch: mn.Chan[Any], other: mn.Chan[Any]) -> tuple[Any, bool]:
    """_recv_with receives from ch through entry point how: (v, True), or (None, False) once ch is
    closed and drained."""
    if how == "recv":
        try:
            return await ch.recv(), True
        except mn.ChannelClosed:
            return None, False
    if how == "recv_ok":
        return await ch.recv_ok()
    if how == "anext":
        try:
            return await ch.__anext__(), True
        except StopAsyncIteration:
            return None, False
    if how == "select":
        i, v, ok = await mn.select(mn.Recv(other), mn.Recv(ch))
        assert i == 1
        return v, ok
    while True:
        if how == "try_recv":
            v, ok, received = ch.try_recv()
        else:
            i, v, ok = await mn.select(mn.Recv(ch), default=True)
            received = i == 0
        if received:
            return v, ok
        await mn.gosched()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("cap", [0, 1, 3])
def test_every_entry_point_mixed(cap: int, procs: int, switchinterval: float) -> None:
    """Each sender uses one send entry point and each receiver one receive entry point, all on one
    channel: every value arrives exactly once, each receiver sees each sender's values in the
    order sent (FIFO per sender, which every path keeps), and close ends every receiver."""
    per = 400

    async def main() -> tuple[list[list[tuple[int, int]]], int]:
        ch: mn.Chan[tuple[int, int]] = mn.Chan(cap)
        never: mn.Chan[Any] = mn.Chan()
        senders = mn.WaitGroup()
        receivers = mn.WaitGroup()
        got: list[list[tuple[int, int]]] = [[] for _ in _RECVS]

        async def sender(k: int, how: str) -> None:
            for i in range(per):
                await _send_with(how, ch, (k, i), never)
            senders.done()

        async def receiver(k: int, how: str) -> None:
            while True:
                v, ok = await _recv_with(how, ch, never)
                if not ok:
                    break
                got[k].append(v)
            receivers.done()

        receivers.add(len(_RECVS))
        for k, how in enumerate(_RECVS):
            mn.go(receiver, k, how)
        senders.add(len(_SENDS))
        for k, how in enumerate(_SENDS):
            mn.go(sender, k, how)
        await senders.wait()
        ch.close()
        await receivers.wait()
        st = ch.stats()
        assert st.sendq == 0 and st.recvq == 0 and st.qcount == 0 and st.closed
        return got, len(never.recvq)

    got, left = mn.run(main, procs=procs)
    assert left == 0  # every select's loser left the other channel's queue
    everything = sorted(v for vs in got for v in vs)
    assert everything == sorted((k, i) for k in range(len(_SENDS)) for i in range(per))
    for vs in got:
        for k in range(len(_SENDS)):
            mine = [i for kk, i in vs if kk == k]
            assert mine == sorted(mine), "a receiver saw one sender's values out of order"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rounds", range(3))
def test_select_partner_both_sides_unbuffered(rounds: int, procs: int) -> None:
    """Two Gs in selects, each with a Send and a Recv case on the same unbuffered channel, pair with
    each other (never with themselves) through the locked steps; repeated, since which side pairs
    first is a race."""

    async def main() -> int:
        ch: mn.Chan[int] = mn.Chan()
        wg = mn.WaitGroup()
        received = [0, 0]

        async def both(k: int) -> None:
            base = 1000 * k
            for i in range(200):
                idx, v, ok = await mn.select(mn.Send(ch, base + i), mn.Recv(ch))
                if idx == 1:
                    assert ok and v is not None
                    assert not base <= v < base + 200, "a select paired with itself"
                    received[k] += 1
            wg.done()

        wg.add(2)
        mn.go(both, 0)
        mn.go(both, 1)
        await wg.wait()
        # Both loops ended, so each of the 400 selects paired with one of the other G's: one
        # receive per pair.
        return sum(received)

    assert mn.run(main, procs=procs) == 200


def test_step_callers_named() -> None:
    """The locked steps are what try_send, try_recv and select's pass 1 call (not copies): a
    wrapped step sees every one of them."""
    calls: list[str] = []
    orig_s: Callable[..., Any] = mn.Chan._sendlocked
    orig_r: Callable[..., Any] = mn.Chan._recvlocked

    def s(self: mn.Chan[Any], v: Any) -> Any:
        calls.append("send")
        return orig_s(self, v)

    def r(self: mn.Chan[Any]) -> Any:
        calls.append("recv")
        return orig_r(self)

    mp = pytest.MonkeyPatch()
    mp.setattr(mn.Chan, "_sendlocked", s)
    mp.setattr(mn.Chan, "_recvlocked", r)
    try:
        ch: mn.Chan[int] = mn.Chan(1)
        ch.try_send(1)
        ch.try_recv()
        with _Me():
            _drive(mn.select(mn.Send(ch, 1), default=True))
            _drive(mn.select(mn.Recv(ch), default=True))
    finally:
        mp.undo()
    assert calls == ["send", "recv", "send", "recv"]
