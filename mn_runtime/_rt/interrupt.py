"""interrupt: what Ctrl-C does to a running runtime, and how run() ends its threads and goroutines.

Python delivers SIGINT to the main thread only, as a KeyboardInterrupt raised where that thread
runs Python code. While run() is active that thread waits for the runtime to stop (`wait_done`,
timed waits of POLL seconds: see there why not one long wait), so the first Ctrl-C reaches run()
itself, whatever the Ms do. Then:

  1. `begin`: the runtime stops (`sched.stop`), which asks every running G to yield at its next
     runtime call (its preempt flag: sched.stop); a second SIGINT from here on writes one line to
     stderr and exits the process at once with status 130 (the shell's code for "killed by
     SIGINT"), since the user has asked twice.
  2. `join_ms`: run() waits for the Ms. An M whose G reaches a runtime call, or is parked, exits
     within a scheduling round. An M inside a blocking `syscall` or in long pure-Python work cannot
     be interrupted: after INTERRUPT_GRACE seconds run() stops waiting and abandons it. Its thread
     is a daemon, so it does not hold the interpreter at exit; its G is left alone (never resumed,
     its coroutine not touched while it may still run).
  3. `throw_into`: every G left, main first, gets the KeyboardInterrupt thrown into its coroutine,
     so its `except`/`finally` blocks run (they cannot await: the runtime is gone). The exception
     that comes out of main's coroutine carries main's frames: run() raises it, so the traceback
     shows where the user's program was, not the scheduler.
  4. `end`: the previous SIGINT handler comes back.

Without an interrupt run() waits for every M as long as it takes (a syscall's result is discarded,
docs/design.md "run() and shutdown"), and the Gs left are closed (GeneratorExit), as before.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .g import G
    from .m import M
    from .sched import Sched

__all__ = ["INTERRUPT_GRACE", "POLL", "begin", "end", "join_ms", "throw_into", "wait_done"]

# INTERRUPT_GRACE: after Ctrl-C, how long run() waits for an M that does not come back (a G inside
# a blocking syscall or computing without runtime calls) before abandoning it.
INTERRUPT_GRACE = 0.5

EXIT_STATUS = 130  # 128 + SIGINT, what a shell reports for a process ended by Ctrl-C

# POLL: how often a waiting run() wakes to let Python run a pending signal handler. A blocking
# lock wait is meant to be interrupted by SIGINT, but on the free-threaded build a signal that
# arrives just before the thread parks is seen only when it next runs Python code (the wait
# stayed asleep for good in tests/test_interrupt.py); a timed wait bounds that delay.
POLL = 0.05

_prev_handler: Any = None
_armed = False


def wait_done(sched: Sched) -> None:
    """wait_done waits until the runtime stops (sched.done), waking every POLL seconds so a
    Ctrl-C is raised here promptly."""
    done = sched.done
    while not done.wait(POLL):
        pass


def _second_sigint(signum: int, frame: Any) -> None:
    try:
        os.write(2, b"mn_runtime: interrupted again while shutting down; exiting now\n")
    finally:
        os._exit(EXIT_STATUS)


def begin(sched: Sched, exc: KeyboardInterrupt) -> None:
    """begin: the first Ctrl-C. Stops the runtime with exc and arms the second-Ctrl-C exit."""
    global _prev_handler, _armed
    sched.stop(error=exc)
    if not _armed and threading.current_thread() is threading.main_thread():
        try:
            _prev_handler = signal.signal(signal.SIGINT, _second_sigint)
            _armed = True
        except (ValueError, OSError):  # not the main interpreter, or signals unavailable
            pass


def end() -> None:
    """end puts back the SIGINT handler begin replaced (run() is about to return or raise)."""
    global _prev_handler, _armed
    if _armed:
        _armed = False
        prev, _prev_handler = _prev_handler, None
        try:
            signal.signal(signal.SIGINT, prev if prev is not None else signal.default_int_handler)
        except (ValueError, OSError):
            pass


def join_ms(
    sched: Sched, ms: list[M], interrupted: KeyboardInterrupt | None
) -> tuple[list[M], KeyboardInterrupt | None]:
    """join_ms joins the Ms' threads: all of them, however long, unless interrupted, when it gives
    up on those still running INTERRUPT_GRACE seconds after the interrupt. A Ctrl-C during the
    wait turns it into an interrupted one. Returns (the Ms abandoned, the interrupt if any)."""
    deadline = None if interrupted is None else time.monotonic() + INTERRUPT_GRACE
    alive: list[M] = []
    for m in ms:
        t = m.thread
        if t is None or t.ident is None:
            continue
        while True:
            try:
                if deadline is None:
                    t.join(POLL)  # timed, as wait_done: a Ctrl-C is raised here promptly
                    if t.is_alive():
                        continue
                else:
                    t.join(max(0.0, deadline - time.monotonic()))
                break
            except KeyboardInterrupt as e:  # Ctrl-C while run() waits for a busy M
                if interrupted is None:
                    interrupted = e
                    begin(sched, e)
                    deadline = time.monotonic() + INTERRUPT_GRACE
        if t.is_alive():
            alive.append(m)
    return alive, interrupted


def throw_into(gp: G) -> BaseException | None:
    """throw_into throws a KeyboardInterrupt into gp's suspended coroutine so its handlers run,
    then closes it; returns what came out of the coroutine (the KeyboardInterrupt, with gp's
    frames, if nothing caught it). A new exception per G: a raise adds the frames it passes to the
    exception's traceback, so one shared instance would collect every G's frames.

    gp was abandoned first (DEAD), and is not running: its M exited, or is stuck in a syscall
    (the coroutine waits at the syscall's yield). If an abandoned M does step it meanwhile, the
    throw fails with "already executing" and the coroutine is left to that M.
    """
    coro = gp.coro
    gp.coro = None
    if coro is None:
        return None
    out: BaseException | None = None
    try:
        gp.ctx.run(coro.throw, KeyboardInterrupt())
    except StopIteration:
        pass
    except BaseException as e:  # exc itself, or whatever a handler raised instead
        out = e
    else:  # a handler awaited: it cannot, the runtime is gone
        try:
            coro.close()
        except BaseException:
            pass
    return out
