"""errors: the exceptions mn_runtime raises to users, and the internal fatal error.

User errors (bad input, closed channels, deadlock) are ordinary exceptions a program may catch.
`Throw` is different: it means a runtime invariant broke (Go's ``throw``). It is never the user's
fault and never expected; the runtime stops and the message asks for a bug report.
"""

from __future__ import annotations

__all__ = ["ChannelClosed", "Deadlock", "Throw"]


class Throw(RuntimeError):
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
