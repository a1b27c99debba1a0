"""errors: every exception mn_runtime raises to users, and the internal fatal error.

User errors are ordinary exceptions a program may catch; all are exported from `mn_runtime`:

  ChannelClosed           send on a closed channel, close of a closed channel, `Chan.recv` after
                          close (Go's panics "send on closed channel", "close of closed channel")
  Deadlock                run() ends because no goroutine can ever be woken (Go's fatal error
                          "all goroutines are asleep - deadlock!")
  ClosedError             an operation on a closed connection, listener or fd, or one parked on it
                          when another goroutine closed it ("use of closed network connection");
                          an OSError
  DeadlineExceeded        the root of both deadline errors below; a TimeoutError, so
                          `except TimeoutError` catches every mn_runtime timeout too:
    IOTimeout             a socket operation passed its deadline (Go's os.ErrDeadlineExceeded,
                          "i/o timeout"); raised by mn.net reads, writes, accepts and connects;
                          the connection stays usable once the deadline moves (net.DeadlineExceeded
                          is this class)
    ContextDeadlineExceeded
                          a context's deadline passed (Go's context.DeadlineExceeded, "context
                          deadline exceeded"); returned by `ctx.err()` and raised by operations
                          that wait on a context (context.DeadlineExceeded is this class)
  Canceled                a context was cancelled (Go's context.Canceled, "context canceled");
                          returned by `ctx.err()` and raised by operations waiting on the context

`Throw` is different: a runtime invariant broke (Go's ``throw``). It is never the user's fault and
never expected; the runtime stops and the message asks for a bug report. It derives from
BaseException, as KeyboardInterrupt does, so a goroutine's `except Exception:` cannot swallow it.
"""

from __future__ import annotations

__all__ = [
    "Canceled",
    "ChannelClosed",
    "ClosedError",
    "ContextDeadlineExceeded",
    "DeadlineExceeded",
    "Deadlock",
    "IOTimeout",
    "Throw",
]


class Throw(BaseException):
    """A broken runtime invariant (Go's ``throw``): the message names the function that found it."""

    def __init__(self, msg: str) -> None:
        super().__init__(f"fatal error: {msg} (mn_runtime internal error; please report it)")


class Deadlock(RuntimeError):
    """No goroutine can ever be woken: every one is parked on something nothing will signal.

    ``str(err)`` starts with Go's text "all goroutines are asleep - deadlock!" followed by a listing
    of every goroutine with its wait reason and where it is suspended; ``err.goroutines`` holds the
    same listing as a list of strings, one per goroutine.
    """

    def __init__(self, listing: list[str]) -> None:
        self.goroutines = listing
        body = "\n\n".join(listing)
        super().__init__("all goroutines are asleep - deadlock!\n\n" + body)


class ChannelClosed(Exception):
    """An operation a closed channel cannot do: send on it, close it again, or `recv` after close.

    The message is Go's: "send on closed channel", "close of closed channel", or
    "receive from closed channel" for `Chan.recv` (Go's two-value receive is `Chan.recv_ok`).
    """


class ClosedError(OSError):
    """An operation on a closed connection, listener or fd; also raised in every G that was parked
    on it when another G closed it. The message is Go's "use of closed network connection"."""

    def __init__(self, msg: str = "use of closed network connection") -> None:
        super().__init__(msg)


class DeadlineExceeded(TimeoutError):
    """A deadline passed: the root of IOTimeout (a socket deadline) and ContextDeadlineExceeded (a
    context's deadline). `except mn.DeadlineExceeded` catches both."""


class IOTimeout(DeadlineExceeded):
    """A network operation passed its deadline (Go's os.ErrDeadlineExceeded, "i/o timeout"). The
    connection is still usable once the deadline is moved or cleared. Also `mn.net.DeadlineExceeded`."""

    def __init__(self, msg: str = "i/o timeout") -> None:
        super().__init__(msg)


class ContextDeadlineExceeded(DeadlineExceeded):
    """A context's deadline passed (Go's context.DeadlineExceeded). Also
    `mn.context.DeadlineExceeded`."""

    def __init__(self, msg: str = "context deadline exceeded") -> None:
        super().__init__(msg)


class Canceled(Exception):
    """The context was cancelled (Go's context.Canceled). Also `mn.context.Canceled`."""

    def __init__(self, msg: str = "context canceled") -> None:
        super().__init__(msg)
