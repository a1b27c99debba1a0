"""The user-facing exceptions: one module (mn_runtime.errors), one hierarchy, instances from
ctx.err(), and Throw out of reach of `except Exception`."""

from __future__ import annotations

import pytest

import mn_runtime as mn
from mn_runtime import context as mnctx
from mn_runtime import errors, net


def test_deadline_errors_share_a_timeout_root() -> None:
    assert net.DeadlineExceeded is errors.IOTimeout
    assert mnctx.DeadlineExceeded is errors.ContextDeadlineExceeded
    assert mnctx.Canceled is errors.Canceled
    assert net.ClosedError is errors.ClosedError
    for cls in (errors.IOTimeout, errors.ContextDeadlineExceeded):
        assert issubclass(cls, errors.DeadlineExceeded) and issubclass(cls, TimeoutError)
    assert str(errors.IOTimeout()) == "i/o timeout"
    assert str(errors.ContextDeadlineExceeded()) == "context deadline exceeded"
    assert str(errors.Canceled()) == "context canceled"
    assert issubclass(errors.ClosedError, OSError)
    for name in errors.__all__:
        assert getattr(errors, name).__module__ == "mn_runtime.errors"


def test_ctx_err_is_an_instance() -> None:
    async def main() -> tuple[object, object, object]:
        ctx, cancel = mnctx.with_cancel(mnctx.background())
        before = ctx.err()
        cancel()
        tctx, _ = mnctx.with_timeout(mnctx.background(), 0.001)
        await tctx.done().recv_ok()
        return before, ctx.err(), tctx.err()

    before, canceled, expired = mn.run(main, procs=1)
    assert before is None
    assert isinstance(canceled, errors.Canceled) and str(canceled) == "context canceled"
    assert isinstance(expired, errors.ContextDeadlineExceeded) and isinstance(expired, TimeoutError)
    assert not isinstance(canceled, type)


def test_throw_is_not_caught_by_except_exception() -> None:
    assert not issubclass(errors.Throw, Exception)
    caught = False
    with pytest.raises(errors.Throw, match="fatal error: x"):
        try:
            raise errors.Throw("x")
        except Exception:
            caught = True
    assert not caught


def test_goroutine_error_shows_the_users_frames() -> None:
    """run() raises a goroutine's exception with the user's frames and one runtime frame (run's
    raise), the scheduler's and the channel's folded away, and a note naming the goroutine, its
    function and where it was created."""
    import traceback

    from mn_runtime._rt.tbfold import is_runtime_file

    async def sender(ch: mn.Chan[int]) -> None:
        await ch.send(1)  # closed: raises ChannelClosed inside chan.py

    async def main() -> None:
        ch: mn.Chan[int] = mn.Chan()
        ch.close()
        g = mn.go(sender, ch)
        await g.join()

    with pytest.raises(errors.ChannelClosed) as ei:
        mn.run(main, procs=2)
    frames = traceback.extract_tb(ei.value.__traceback__)
    runtime = [f for f in frames if is_runtime_file(f.filename)]
    assert [f.name for f in runtime] == ["run"], frames
    assert frames[-1].name == "sender" and (frames[-1].line or "").startswith("await ch.send(1)")
    notes = "\n".join(ei.value.__notes__)
    assert "raised in goroutine 2 (test_goroutine_error_shows_the_users_frames.<locals>.sender)" in notes
    assert f"created at {__file__}:" in notes and "mn_runtime frames hidden" in notes
