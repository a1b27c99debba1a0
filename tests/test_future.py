"""future tests: wait_future's park and wake-up from foreign threads, contexts, run() ending,
offload to the runtime's process pool and to other executors, aio with real asyncio sockets both
ways, and a Dask LocalCluster (skipped without the [dask] extra)."""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import os
import random
import threading
import time
from typing import Any

import psutil
import pytest

import mn_runtime as mn
from mn_runtime import context as mnctx
from mn_runtime import future as mnfuture
from mn_runtime._rt import idle

from .rtutil import runtime_threads

pytestmark = pytest.mark.concurrency


# Module-level functions: the process pool imports them by name in its workers.
def square(x: int) -> int:
    return x * x


def pid_after(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def barrier_pid(dirname: str, n: int) -> tuple[int, bool]:
    """barrier_pid notes its process in dirname and waits (up to 15 s) until n calls have: True
    when n calls ran at the same time."""
    with open(os.path.join(dirname, f"{os.getpid()}-{time.monotonic_ns()}"), "w"):
        pass
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if len(os.listdir(dirname)) >= n:
            return os.getpid(), True
        time.sleep(0.005)
    return os.getpid(), False


def fail(msg: str) -> None:
    raise ValueError(msg)


def make_lock() -> Any:
    return threading.Lock()


def spin(n: int) -> int:
    t = 0
    for i in range(n):
        t += i * i
    return t


def children() -> set[int]:
    return {c.pid for c in psutil.Process().children(recursive=True)}


_before: set[int] = set()


@pytest.fixture(autouse=True)
def _children_before() -> None:
    """Notes the child processes that exist before each test (a Dask cluster or another test may
    have left multiprocessing's resource tracker running): assert_clean looks for new ones."""
    _before.clear()
    _before.update(children())


def assert_clean() -> None:
    """assert_clean: run() left no child process (of those made during the test), no runtime
    thread, no goroutine counted as waiting on a future."""
    left = children() - _before
    assert not left, [psutil.Process(p).cmdline() for p in left]
    assert runtime_threads() == []
    assert idle.nfuturewait == 0


def _complete_later(fut: cf.Future[Any], value: Any, delay: float) -> threading.Thread:
    def body() -> None:
        time.sleep(delay)
        fut.set_result(value)

    t = threading.Thread(target=body)
    t.start()
    return t


# --- wait_future ---


def test_wait_future_from_threads(procs: int, switchinterval: float) -> None:
    """Goroutines wait on futures completed by plain threads at random moments (before, during
    and after the park); every result arrives once, to the right goroutine."""
    n = 300
    futs: list[cf.Future[int]] = [cf.Future() for _ in range(n)]
    rng = random.Random(7)
    delays = [rng.choice([0.0, 0.0, 0.0001, 0.001, 0.005]) for _ in range(n)]

    def completer(lo: int, hi: int) -> None:
        for i in range(lo, hi):
            if delays[i]:
                time.sleep(delays[i])
            futs[i].set_result(i * 3)

    got: list[int] = []
    lk = threading.Lock()

    async def waiter(i: int, wg: mn.WaitGroup) -> None:
        v = await mn.wait_future(futs[i])
        with lk:
            got.append(v - i * 3)
        wg.done()

    async def main() -> None:
        wg = mn.WaitGroup()
        wg.add(n)
        for i in range(n):
            mn.go(waiter, i, wg)
        threads = [threading.Thread(target=completer, args=(k * n // 4, (k + 1) * n // 4)) for k in range(4)]
        for t in threads:
            t.start()
        await wg.wait()
        for t in threads:
            t.join()

    mn.run(main, procs=procs)
    assert got == [0] * n
    assert idle.nfuturewait == 0


def test_wait_future_callback_races_commit(procs: int) -> None:
    """A future completed right as the goroutine parks: the callback fires on another thread
    during the commit, or inside add_done_callback; the G resumes exactly once either way (a
    second goready would throw, a lost one would hang and time out)."""
    rounds = 2000
    go_now: list[cf.Future[int]] = []
    cv = threading.Condition()

    def completer() -> None:
        for i in range(rounds):
            with cv:
                while len(go_now) <= i:
                    cv.wait()
                f = go_now[i]
            f.set_result(i)

    async def main() -> int:
        t = threading.Thread(target=completer)
        t.start()
        total = 0
        for _ in range(rounds):
            f: cf.Future[int] = cf.Future()
            with cv:
                go_now.append(f)
                cv.notify()
            total += await mn.wait_future(f)
        t.join()
        return total

    assert mn.run(main, procs=procs) == rounds * (rounds - 1) // 2
    assert idle.nfuturewait == 0


def test_wait_future_exception_and_done() -> None:
    async def main() -> None:
        f: cf.Future[int] = cf.Future()
        f.set_exception(KeyError("k"))
        with pytest.raises(KeyError):
            await mn.wait_future(f)  # already done: no park
        g: cf.Future[int] = cf.Future()
        threading.Timer(0.01, g.set_exception, args=(OSError("late"),)).start()
        with pytest.raises(OSError, match="late"):
            await mn.wait_future(g)
        h: cf.Future[int] = cf.Future()
        threading.Timer(0.01, h.cancel).start()
        with pytest.raises(cf.CancelledError):
            await mn.wait_future(h)

    mn.run(main, procs=2)


def test_future_wait_is_not_a_deadlock(procs: int) -> None:
    """main waits on a future a plain thread completes after 0.3 s: every M is idle meanwhile,
    but no Deadlock; a dump taken during the wait shows the wait reason "future"."""
    dumps: list[str] = []

    async def dumper(f: cf.Future[int]) -> None:
        await mn.sleep(0.1)
        dumps.append(mn.dump_goroutines())

    async def main() -> int:
        f: cf.Future[int] = cf.Future()
        t = _complete_later(f, 5, 0.3)
        mn.go(dumper, f)
        v = await mn.wait_future(f)
        t.join()
        return v

    t0 = time.monotonic()
    assert mn.run(main, procs=procs) == 5
    assert time.monotonic() - t0 >= 0.29
    assert len(dumps) == 1 and "[future" in dumps[0], dumps


def test_deadlock_after_future_still_detected() -> None:
    """The count of future waiters drops when the wait ends: a real deadlock afterwards is
    reported, with the waiter counted no more."""

    async def main() -> None:
        f: cf.Future[int] = cf.Future()
        _complete_later(f, 1, 0.05)
        await mn.wait_future(f)
        await mn.Chan().recv()

    with pytest.raises(mn.Deadlock, match="chan receive"):
        mn.run(main, procs=2)
    assert idle.nfuturewait == 0


def test_wait_future_context(procs: int) -> None:
    """A context that expires, is cancelled by another goroutine, or was already cancelled ends
    the wait with its error and cancels the future; a future that completes first leaves no hook
    in the context."""

    async def canceller(cancel: Any) -> None:
        await mn.sleep(0.02)
        cancel()

    async def main() -> None:
        f1: cf.Future[int] = cf.Future()
        ctx, cancel = mnctx.with_timeout(mnctx.background(), 0.03)
        t0 = time.monotonic()
        with pytest.raises(mnctx.DeadlineExceeded):
            await mn.wait_future(f1, ctx)
        assert time.monotonic() - t0 >= 0.025
        assert f1.cancelled()
        cancel()

        f2: cf.Future[int] = cf.Future()
        ctx2, cancel2 = mnctx.with_cancel(mnctx.background())
        mn.go(canceller, cancel2)
        with pytest.raises(mnctx.Canceled):
            await mn.wait_future(f2, ctx2)
        assert f2.cancelled()

        f3: cf.Future[int] = cf.Future()
        with pytest.raises(mnctx.Canceled):
            await mn.wait_future(f3, ctx2)  # already cancelled: no park
        assert f3.cancelled()

        parent, pcancel = mnctx.with_cancel(mnctx.background())
        child = mnctx.with_value(parent, "k", 1)
        for i in range(20):
            f4: cf.Future[int] = cf.Future()
            _complete_later(f4, i, 0.001 * (i % 3))
            assert await mn.wait_future(f4, child) == i
        assert parent._children == set()  # type: ignore[attr-defined]
        pcancel()

        # A running future cannot be cancelled: the context still ends the wait.
        f5: cf.Future[int] = cf.Future()
        assert f5.set_running_or_notify_cancel()
        ctx5, cancel5 = mnctx.with_timeout(mnctx.background(), 0.02)
        with pytest.raises(mnctx.DeadlineExceeded):
            await mn.wait_future(f5, ctx5)
        assert not f5.cancelled()
        f5.set_result(0)
        cancel5()

    mn.run(main, procs=procs)
    assert idle.nfuturewait == 0


def test_run_end_cancels_pending_futures(caplog: pytest.LogCaptureFixture) -> None:
    """Goroutines still waiting on futures when main returns: their futures are cancelled, and a
    future that cannot be cancelled (running) completing after run() readies nothing and logs no
    error from its callback."""
    pending: cf.Future[int] = cf.Future()
    running: cf.Future[int] = cf.Future()
    assert running.set_running_or_notify_cancel()

    async def waiter(f: cf.Future[int]) -> None:
        await mn.wait_future(f)

    async def main() -> None:
        mn.go(waiter, pending)
        mn.go(waiter, running)
        await mn.sleep(0.05)

    with caplog.at_level(logging.ERROR, logger="concurrent.futures"):
        mn.run(main, procs=2)
        assert pending.cancelled()
        running.set_result(1)  # after run(): its callback must do nothing
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert idle.nfuturewait == 0
    assert_clean()


def test_wait_future_bad_input() -> None:
    with pytest.raises(RuntimeError, match="needs a goroutine"):
        asyncio.run(mn.wait_future(cf.Future()))

    async def main() -> None:
        with pytest.raises(TypeError, match=r"needs a concurrent\.futures\.Future"):
            await mn.wait_future(3)
        loop = asyncio.new_event_loop()
        try:
            with pytest.raises(TypeError, match=r"asyncio future .* mn.aio"):
                await mn.wait_future(loop.create_future())
        finally:
            loop.close()

        class Refusing:
            """A future-like object whose add_done_callback fails: the goroutine gets the error."""

            def done(self) -> bool:
                return False

            def result(self) -> int:
                return 0

            def add_done_callback(self, fn: Any) -> None:
                raise RuntimeError("no callbacks here")

        with pytest.raises(RuntimeError, match="no callbacks here"):
            await mn.wait_future(Refusing())
        assert idle.nfuturewait == 0
        with pytest.raises(TypeError, match=r"ctx must be an mn\.context\.Context"):
            await mn.wait_future(cf.Future(), "ctx")
        with pytest.raises(TypeError, match="offload\\(\\) needs a callable"):
            await mn.offload(3)

        async def coro() -> None:
            pass

        with pytest.raises(TypeError, match="is async"):
            await mn.offload(coro)
        with pytest.raises(TypeError, match=r"executor must be a concurrent\.futures\.Executor"):
            await mn.offload(square, 2, executor=object())
        with pytest.raises(TypeError, match="aio\\(\\) needs an asyncio coroutine"):
            await mn.aio(coro)

    mn.run(main, procs=1)


# --- offload ---


def test_offload_thread_executor(procs: int) -> None:
    async def main() -> list[int]:
        with cf.ThreadPoolExecutor(4) as ex:
            out: mn.Chan[int] = mn.Chan(16)

            async def one(i: int) -> None:
                await out.send(await mn.offload(spin, i, executor=ex))

            for i in range(16):
                mn.go(one, i * 1000)
            return sorted([await out.recv() for _ in range(16)])

    assert mn.run(main, procs=procs) == sorted(spin(i * 1000) for i in range(16))


def test_offload_process_pool(tmp_path: Any) -> None:
    """The default pool runs calls in other processes, several at once, returns results and
    raises the function's exceptions; run() leaves no process or thread behind."""
    n = min(mnfuture.default_workers(), 4)

    async def main() -> None:
        out: mn.Chan[tuple[int, bool]] = mn.Chan(4)

        async def one() -> None:
            await out.send(await mn.offload(barrier_pid, str(tmp_path), n))

        for _ in range(n):  # the pool's first calls: each starts a worker
            mn.go(one)
        got = [await out.recv() for _ in range(n)]
        assert all(together for _, together in got)  # all n ran at once, in n workers
        assert len({pid for pid, _ in got}) == n and os.getpid() not in {pid for pid, _ in got}
        assert [await mn.offload(square, i) for i in range(5)] == [0, 1, 4, 9, 16]
        with pytest.raises(ValueError, match="boom"):
            await mn.offload(fail, "boom")
        kw = await mn.offload(sorted, [3, 1, 2], reverse=True)
        assert kw == [3, 2, 1]

    mn.run(main, procs=1)
    assert_clean()


def test_offload_unpicklable() -> None:
    async def main() -> None:
        with pytest.raises(TypeError, match=r"the function .*<lambda>.* cannot be pickled"):
            await mn.offload(lambda: 1)
        with pytest.raises(TypeError, match=r"argument 1 \(lock\) cannot be pickled"):
            await mn.offload(square, 1, threading.Lock())
        with pytest.raises(TypeError, match=r"keyword argument 'key' \(function\) cannot be pickled"):
            await mn.offload(sorted, [1], key=lambda x: x)
        with pytest.raises(TypeError, match=r"result of 'make_lock' \(lock\) cannot be pickled"):
            await mn.offload(make_lock)
        assert await mn.offload(square, 9) == 81  # the pool still works

    mn.run(main, procs=1)
    assert_clean()


@pytest.mark.parametrize("nprocs", [2, 4])
def test_offload_pool_started_while_ms_busy(nprocs: int) -> None:
    """The pool is created (its processes spawned) while other Ms run pure-Python loops and
    switch goroutines: spawn never forks the busy runtime, so the workers start and answer."""
    stop = threading.Event()
    lk = threading.Lock()
    spins = [0]

    async def busy() -> None:
        while not stop.is_set():
            spin(2000)
            with lk:
                spins[0] += 1
            await mn.gosched()

    async def main() -> list[int]:
        for _ in range(nprocs):
            mn.go(busy)
        await mn.sleep(0.05)
        out: mn.Chan[int] = mn.Chan(8)

        async def one(i: int) -> None:
            await out.send(await mn.offload(square, i))

        for i in range(8):
            mn.go(one, i)
        got = sorted([await out.recv() for _ in range(8)])
        stop.set()
        return got

    assert mn.run(main, procs=nprocs) == [i * i for i in range(8)]
    assert spins[0] > 0
    assert_clean()


# --- aio ---


def test_aio_client_against_mn_server(procs: int) -> None:
    """An asyncio client (asyncio.open_connection), run through mn.aio from goroutines, talks to
    an mn_runtime echo server."""

    async def serve(ln: Any) -> None:
        while True:
            try:
                c = await ln.accept()
            except mn.net.ClosedError:
                return
            mn.go(echo, c)

    async def echo(c: Any) -> None:
        with c:
            while True:
                data = await c.read(65536)
                if not data:
                    return
                await c.write(data)

    async def client(port: int, i: int) -> bytes:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        got = b""
        for k in range(5):
            msg = f"{i}:{k};".encode()
            w.write(msg)
            await w.drain()
            got += await r.readexactly(len(msg))
        w.close()
        await w.wait_closed()
        return got

    async def main() -> None:
        ln = mn.net.listen("tcp", "127.0.0.1:0")
        mn.go(serve, ln)
        port = ln.addr[1]
        out: mn.Chan[tuple[int, bytes]] = mn.Chan(8)

        async def one(i: int) -> None:
            await out.send((i, await mn.aio(client(port, i))))

        for i in range(8):
            mn.go(one, i)
        for _ in range(8):
            i, got = await out.recv()
            assert got == b"".join(f"{i}:{k};".encode() for k in range(5))
        ln.close()

    mn.run(main, procs=procs)
    assert_clean()


def test_mn_client_against_asyncio_server(procs: int) -> None:
    """An asyncio server started and stopped through mn.aio, with mn_runtime clients dialing it
    from goroutines."""

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while data := await r.read(65536):
            w.write(data.upper())
            await w.drain()
        w.close()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(handle, "127.0.0.1", 0)

    async def stop(srv: asyncio.Server) -> None:
        srv.close()
        await srv.wait_closed()

    async def main() -> None:
        srv = await mn.aio(start())
        port = srv.sockets[0].getsockname()[1]
        out: mn.Chan[bool] = mn.Chan(8)

        async def one(i: int) -> None:
            c = await mn.net.dial("tcp", f"127.0.0.1:{port}")
            with c:
                for k in range(5):
                    msg = f"hello {i} {k}".encode()
                    await c.write(msg)
                    got = b""
                    while len(got) < len(msg):
                        got += await c.read(len(msg) - len(got))
                    assert got == msg.upper()
            await out.send(True)

        for i in range(8):
            mn.go(one, i)
        assert [await out.recv() for _ in range(8)] == [True] * 8
        await mn.aio(stop(srv))

    mn.run(main, procs=procs)
    assert_clean()


def test_aio_exceptions_and_cancel() -> None:
    cancelled = threading.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def bad() -> None:
        await asyncio.sleep(0)
        raise LookupError("inside asyncio")

    async def main() -> None:
        with pytest.raises(LookupError, match="inside asyncio"):
            await mn.aio(bad())
        ctx, cancel = mnctx.with_timeout(mnctx.background(), 0.05)
        with pytest.raises(mnctx.DeadlineExceeded):
            await mn.aio(slow(), ctx)
        cancel()
        for _ in range(200):
            if cancelled.is_set():
                break
            await mn.sleep(0.01)
        assert cancelled.is_set()

    mn.run(main, procs=2)
    assert_clean()


def test_aio_tasks_cancelled_when_run_ends() -> None:
    """A goroutine still waiting in aio() when main returns: its task is cancelled, the loop
    closed, the "mn-aio" thread joined."""
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def waiter() -> None:
        await mn.aio(forever())

    async def main() -> None:
        mn.go(waiter)
        await mn.sleep(0.05)
        assert "mn-aio" in runtime_threads()

    t0 = time.monotonic()
    mn.run(main, procs=1)
    assert time.monotonic() - t0 < 10
    assert cancelled.is_set()
    assert_clean()


# --- Dask ---


def test_offload_dask_local_cluster() -> None:
    """mn.offload to a Dask client's executor, against a LocalCluster of two worker processes."""
    distributed = pytest.importorskip("distributed", reason="needs the [dask] extra (pip install 'mn_runtime[dask]')")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ex = client.get_executor()

        async def main() -> tuple[list[int], set[int]]:
            out: mn.Chan[tuple[int, int]] = mn.Chan(16)

            async def one(i: int) -> None:
                await out.send(
                    (await mn.offload(square, i, executor=ex), await mn.offload(pid_after, 0.05, executor=ex))
                )

            for i in range(16):
                mn.go(one, i)
            got = [await out.recv() for _ in range(16)]
            with pytest.raises(ValueError, match="on the cluster"):
                await mn.offload(fail, "on the cluster", executor=ex)
            # A Dask future itself (add_done_callback runs the callback on another thread).
            assert await mn.wait_future(client.submit(square, 12, pure=False)) == 144
            return sorted(v for v, _ in got), {pid for _, pid in got}

        squares, pids = mn.run(main, procs=2)
        assert squares == sorted(i * i for i in range(16))
        assert os.getpid() not in pids and len(pids) >= 1
    assert runtime_threads() == []
