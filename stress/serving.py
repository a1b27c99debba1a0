"""serving: the accept loop the stress servers share (resp_server, http_server)."""

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
