"""Bad input gets a clear, specific exception; the API refuses use outside a runtime."""

from __future__ import annotations

import math
import time

import pytest

import mn_runtime as mn


async def _ok() -> int:
    return 1


def test_go_outside_runtime() -> None:
    with pytest.raises(RuntimeError, match=r"go\(\) called outside a running runtime"):
        mn.go(_ok)


@pytest.mark.parametrize(
    "call",
    [lambda: mn.sleep(1), mn.gosched, lambda: mn.syscall(time.sleep, 0), mn.current, mn.num_goroutine, mn.gomaxprocs],
)
def test_friends_outside_runtime(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuntimeError, match="needs a running runtime"):
        call()


def test_run_inside_runtime() -> None:
    async def main() -> str:
        try:
            mn.run(_ok)
        except RuntimeError as e:
            return str(e)
        return ""

    assert "inside a goroutine" in mn.run(main, procs=1)


@pytest.mark.parametrize(
    ("procs", "exc", "msg"),
    [
        (0, ValueError, "at least 1, got 0"),
        (-3, ValueError, "got -3"),
        ("2", TypeError, "must be an int, got str"),
        (2.0, TypeError, "got float"),
        (True, TypeError, "got bool"),
    ],
)
def test_bad_procs(procs: object, exc: type[Exception], msg: str) -> None:
    with pytest.raises(exc, match=msg):
        mn.run(_ok, procs=procs)  # type: ignore[arg-type]


def test_bad_procs_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MN_PROCS", "lots")
    with pytest.raises(ValueError, match="MN_PROCS must be a positive integer, got 'lots'"):
        mn.run(_ok)
    monkeypatch.setenv("MN_PROCS", "3")

    async def main() -> int:
        return mn.gomaxprocs()

    assert mn.run(main) == 3


def test_go_rejects_non_coroutines() -> None:
    def plain() -> int:
        return 1

    async def main() -> list[str]:
        errs = []
        for bad in (plain, 42, "text", print, lambda: 3):
            try:
                mn.go(bad)  # type: ignore[arg-type]
            except TypeError as e:
                errs.append(str(e))
        return errs

    errs = mn.run(main, procs=1)
    assert len(errs) == 5
    assert "plain function 'test_go_rejects_non_coroutines.<locals>.plain'" in errs[0]
    assert "got int: 42" in errs[1]
    assert "got str" in errs[2]
    assert "returned int, not a coroutine" in errs[4] or "plain function" in errs[4]


def test_methods_that_return_coroutines_count_as_async_functions() -> None:
    """Chan.recv and Conn.read/write are plain functions returning a coroutine, Chan.send a
    generator-based coroutine (corofn.py): go() takes them as async functions and syscall()
    refuses them."""

    async def main() -> tuple[int, int, list[str]]:
        ch: mn.Chan[int] = mn.Chan()
        g = mn.go(ch.recv)
        await ch.send(7)
        mn.go(ch.send, 8)  # a generator-based coroutine function
        got = await ch.recv()
        mn.go(ch.send(9))  # and its coroutine object
        errs = []
        for fn in (ch.recv, ch.send):
            try:
                await mn.syscall(fn)
            except TypeError as e:
                errs.append(str(e))
        assert await ch.recv() == 9
        return await g.join(), got, errs

    v, got, errs = mn.run(main, procs=2)
    assert v == 7 and got == 8
    assert "syscall() runs blocking functions; Chan.recv is async" in errs[0]
    assert "Chan.send is async" in errs[1]


def test_go_accepts_coroutine_objects_and_kwargs() -> None:
    async def add(a: int, b: int = 0) -> int:
        return a + b

    async def main() -> tuple[int, int]:
        g1 = mn.go(add(1, b=2))
        g2 = mn.go(add, 5, b=6)
        return await g1.join(), await g2.join()

    assert mn.run(main, procs=2) == (3, 11)


def test_go_with_args_and_coroutine_object_is_an_error() -> None:
    async def main() -> str:
        try:
            mn.go(_ok(), 1)  # type: ignore[call-arg]
        except TypeError as e:
            return str(e)
        return ""

    assert "arguments given with a coroutine object" in mn.run(main, procs=1)


def test_sleep_inputs() -> None:
    async def main() -> list[str]:
        out = []
        for bad, exc in ((math.nan, ValueError), ("1", TypeError), (None, TypeError), (True, TypeError)):
            try:
                await mn.sleep(bad)  # type: ignore[arg-type]
            except exc as e:
                out.append(str(e))
        t = time.monotonic()
        await mn.sleep(-5)
        await mn.sleep(0)
        out.append(f"{time.monotonic() - t < 0.05}")
        return out

    out = mn.run(main, procs=1)
    assert out == [
        "sleep() got NaN seconds",
        "sleep() needs a number of seconds, got str",
        "sleep() needs a number of seconds, got NoneType",
        "sleep() needs a number of seconds, got bool",
        "True",
    ]


def test_syscall_inputs() -> None:
    async def main() -> list[str]:
        out = []
        try:
            await mn.syscall(5)  # type: ignore[arg-type]
        except TypeError as e:
            out.append(str(e))
        try:
            await mn.syscall(_ok)
        except TypeError as e:
            out.append(str(e))
        return out

    out = mn.run(main, procs=1)
    assert out[0] == "syscall() needs a callable, got int"
    assert "is async: await it directly" in out[1]


def test_awaiting_foreign_awaitable_is_a_type_error() -> None:
    import asyncio

    async def main() -> str:
        try:
            await asyncio.sleep(0)
        except TypeError as e:
            return str(e)
        return ""

    assert "not an mn_runtime operation" in mn.run(main, procs=1)


def test_current_identifies_goroutine() -> None:
    async def who() -> int:
        return mn.current().id

    async def main() -> tuple[int, int, int]:
        g = mn.go(who)
        return mn.current().id, g.id, await g.join()

    me, gid, seen = mn.run(main, procs=2)
    assert me == 1 and gid == seen and gid > 1


def test_one_runtime_per_process() -> None:
    import threading

    started = threading.Event()
    release = threading.Event()

    async def holder() -> None:
        started.set()
        await mn.syscall(release.wait, 5)

    t = threading.Thread(target=mn.run, args=(holder,), kwargs={"procs": 1})
    t.start()
    assert started.wait(5)
    try:
        with pytest.raises(RuntimeError, match="already active"):
            mn.run(_ok, procs=1)
    finally:
        release.set()
        t.join(10)
    assert not t.is_alive()
