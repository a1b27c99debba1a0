"""serving: what the stress servers share (resp, http): the accept loop, the limits
every connection lives under, and reads and writes that treat a peer that went away or fell
silent as the end of the connection.

The limits, one set per connection (docs/netpoller.md, "Servers under hostile clients"):

- idle timeout: a peer that sends nothing for this long is dropped;
- request timeout: a request (an HTTP request, a RESP command) must arrive whole within this long
  of its first byte, plus one second per `min_rate` bytes it has sent so far, however the bytes
  trickle in (a byte a second does not re-arm it, as it re-arms the idle timeout);
- output cap: once this many reply bytes wait to be written, the server stops parsing and reading
  until they are written (the peer's TCP window is the only buffer beyond it);
- write timeout: a write that makes no progress for this long closes the connection, so a peer
  that never reads holds neither the memory nor the goroutine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

# Replies are written in segments of at most this many bytes: small replies are joined into one
# send, a large one is sent in slices of a memoryview (no copy), and each segment gets a fresh
# write deadline, so the write timeout bounds the time without progress, not a reply's whole time.
SEGMENT = 256 * 1024


def add_limit_options(ap: argparse.ArgumentParser, idle: float, request: float) -> None:
    """add_limit_options adds the per-connection limits every server takes."""
    ap.add_argument("--idle-timeout", type=float, default=idle, help="drop clients idle this long (s; 0: never)")
    ap.add_argument(
        "--request-timeout",
        type=float,
        default=request,
        help="a request must arrive whole within this long of its first byte, plus 1 s per --min-rate bytes "
        "received (s; 0: no limit; default %(default)s)",
    )
    ap.add_argument(
        "--min-rate",
        type=float,
        default=64 * 1024,
        help="bytes per second that extend --request-timeout (0: none; default %(default)s)",
    )
    ap.add_argument(
        "--max-output",
        type=int,
        default=1 << 20,
        help="reply bytes buffered per connection before it stops reading and parsing (default %(default)s)",
    )
    ap.add_argument(
        "--write-timeout",
        type=float,
        default=30.0,
        help="close a connection whose writes make no progress this long (s; 0: never; default %(default)s)",
    )


def check_limits(ap: argparse.ArgumentParser, opts: argparse.Namespace) -> None:
    """check_limits rejects limits that make no sense, naming the option."""
    for name in ("idle_timeout", "request_timeout", "min_rate", "write_timeout"):
        if getattr(opts, name) < 0:
            ap.error(f"--{name.replace('_', '-')} must be >= 0, not {getattr(opts, name)}")
    if opts.max_output < 1:
        ap.error(f"--max-output must be >= 1, not {opts.max_output}")


async def accept_loop(address: str, handler: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """accept_loop listens on address, prints "listening on HOST:PORT" (the tests read the port
    from it) and runs handler(conn, *args) in a goroutine per connection until the listener is
    closed. An accept that fails for lack of resources (EMFILE and friends) backs off 10 ms and
    goes on, so one flood of clients cannot stop the others from being served."""
    import mn_runtime as mn

    ln = mn.net.listen("tcp", address)
    host, port = ln.addr[:2]
    print(f"listening on {host}:{port}", flush=True)
    while True:
        try:
            c = await ln.accept()
        except OSError as e:
            if isinstance(e, mn.net.ClosedError):
                return
            await mn.sleep(0.01)
            continue
        mn.go(handler, c, *args)


class RequestClock:
    """RequestClock is the deadline of the request in progress on one connection: its first byte's
    time plus `timeout`, plus one second per `min_rate` bytes of it received so far. The server
    calls update() after each parse with whether a request is incomplete, how many requests have
    completed (a change means the incomplete one is a new request) and its bytes so far."""

    __slots__ = ("done", "min_rate", "nbytes", "start", "timeout")

    def __init__(self, timeout: float, min_rate: float) -> None:
        self.timeout = timeout
        self.min_rate = min_rate
        self.start: float | None = None
        self.done = 0
        self.nbytes = 0

    def update(self, now: float, in_progress: bool, done: int, nbytes: int) -> None:
        if not in_progress:
            self.start = None
            return
        if self.start is None or done != self.done:
            self.start = now
            self.done = done
        self.nbytes = nbytes

    def deadline(self) -> float | None:
        """deadline is when the request in progress must be complete (None: no request, or no limit)."""
        if self.start is None or self.timeout <= 0:
            return None
        grace = self.nbytes / self.min_rate if self.min_rate > 0 else 0.0
        return self.start + self.timeout + grace


class Outbox:
    """Outbox holds one connection's replies until they are written. A reply is bytes, or a list
    of pieces (large values by reference). `full` says the output cap is reached: the server
    writes before it parses more."""

    __slots__ = ("cap", "pieces", "size")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.pieces: list[bytes] = []
        self.size = 0

    def add(self, reply: bytes | list[bytes]) -> None:
        if type(reply) is bytes:
            self.pieces.append(reply)
            self.size += len(reply)
        else:
            self.pieces += reply
            self.size += sum(map(len, reply))

    @property
    def full(self) -> bool:
        return self.size >= self.cap

    def segments(self) -> Iterator[bytes | memoryview]:
        """segments takes the queued replies (the outbox is empty after) and yields them as
        segments of at most SEGMENT bytes: small replies joined, large ones sliced."""
        pieces = self.pieces
        self.pieces = []
        self.size = 0
        if len(pieces) == 1 and len(pieces[0]) < SEGMENT:
            yield pieces[0]
            return
        batch: list[bytes] = []
        n = 0
        for p in pieces:
            if len(p) >= SEGMENT:
                if batch:
                    yield b"".join(batch)
                    batch = []
                    n = 0
                view = memoryview(p)
                for off in range(0, len(p), SEGMENT):
                    yield view[off : off + SEGMENT]
                continue
            batch.append(p)
            n += len(p)
            if n >= SEGMENT:
                yield b"".join(batch)
                batch = []
                n = 0
        if batch:
            yield b"".join(batch)


class Conn:
    """Conn wraps an mn_runtime.net.Conn with the server's limits: read() and flush() return
    b"" / False when the peer has gone or a limit ran out, and the caller just closes.

    Deadlines are re-armed lazily: a runtime timer is set only when a deadline must move earlier,
    or later by more than an eighth of its timeout (so the idle and write timeouts are honoured to
    within that eighth, and a busy connection does not set a timer per request)."""

    __slots__ = ("c", "clock", "idle_timeout", "out", "rd", "slack", "wd", "write_timeout")

    def __init__(self, c: Any, opts: argparse.Namespace) -> None:
        self.c = c
        self.idle_timeout: float = opts.idle_timeout
        self.write_timeout: float = opts.write_timeout
        self.slack = min(t for t in (opts.idle_timeout, opts.request_timeout, float("inf")) if t > 0) / 8
        self.out = Outbox(opts.max_output)
        self.clock = RequestClock(opts.request_timeout, opts.min_rate)
        self.rd: float | None = None  # the read deadline now set on c
        self.wd: float | None = None  # the write deadline now set on c

    async def read(self, partial: int, done: int) -> bytes:
        """read returns what has arrived (up to 64 KiB); b"" when the peer closed, reset the
        connection, sent nothing for the idle timeout or did not finish its request in time.
        partial: bytes received of an incomplete request (0: none); done: requests completed so
        far (the request clock restarts when it changes)."""
        import mn_runtime as mn

        now = time.monotonic()
        clock = self.clock
        clock.update(now, partial > 0, done, partial)
        want = now + self.idle_timeout if self.idle_timeout > 0 else None
        req = clock.deadline()
        if req is not None and (want is None or req < want):
            want = req
        rd = self.rd
        if want is None:
            if rd is not None:
                self.c.set_read_deadline(None)
                self.rd = None
        elif rd is None or want < rd or want - rd > self.slack:
            self.c.set_read_deadline(want)
            self.rd = want
        try:
            return await self.c.read(65536)  # type: ignore[no-any-return]
        except (mn.net.DeadlineExceeded, ConnectionResetError):
            return b""

    async def flush(self) -> bool:
        """flush writes every queued reply; False if the peer has gone or stopped reading."""
        if not self.out.pieces:
            return True
        for seg in self.out.segments():
            if not await self._send(seg):
                return False
        return True

    async def _send(self, data: bytes | memoryview) -> bool:
        import mn_runtime as mn

        t = self.write_timeout
        if t > 0:
            now = time.monotonic()
            wd = self.wd
            if wd is None or wd - now < t - t / 8:
                wd = now + t
                self.c.set_write_deadline(wd)
                self.wd = wd
        try:
            await self.c.write(data)
        except (mn.net.DeadlineExceeded, ConnectionResetError, BrokenPipeError):
            return False
        return True
