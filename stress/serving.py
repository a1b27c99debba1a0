"""serving: what the stress servers share (resp_server, http_server): the accept loop, and reads
and writes that treat a peer that went away or fell silent as the end of the connection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


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


async def read_some(c: Any, idle_timeout: float) -> bytes:
    """read_some reads what has arrived on c, waiting at most idle_timeout seconds (no limit if
    0); b"" when the peer closed, reset the connection or sent nothing in time."""
    import time

    import mn_runtime as mn

    if idle_timeout > 0:
        c.set_read_deadline(time.monotonic() + idle_timeout)
    try:
        return await c.read(65536)  # type: ignore[no-any-return]
    except (mn.net.DeadlineExceeded, ConnectionResetError):
        return b""


async def write_or_gone(c: Any, data: bytes | bytearray) -> bool:
    """write_or_gone writes all of data to c; False if the peer has gone (reset, broken pipe)."""
    try:
        await c.write(data)
    except (ConnectionResetError, BrokenPipeError):
        return False
    return True
