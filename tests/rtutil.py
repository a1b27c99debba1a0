"""Helpers for runtime tests: a park/ready semaphore built only on the core primitive, and
thread/fd accounting."""

from __future__ import annotations

import threading

import psutil

from mn_runtime._rt.g import G, WaitReason
from mn_runtime._rt.park import gopark, goready, gosched, preempt_requested


class Baton:
    """Baton is a counting semaphore on gopark/goready with one waiter at a time. Like a channel
    operation it checks the preemption flag when it does not park."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tokens = 0
        self.waiter: G | None = None

    def _commit(self, g: G, _: object) -> bool:
        with self.lock:
            if self.tokens:
                self.tokens -= 1
                return False
            assert self.waiter is None
            self.waiter = g
            return True

    async def wait(self) -> None:
        with self.lock:
            if self.tokens:
                self.tokens -= 1
                taken = True
            else:
                taken = False
        if taken:
            if preempt_requested():
                await gosched()
            return
        await gopark(self._commit, None, WaitReason.SEMACQUIRE)

    def signal(self) -> None:
        with self.lock:
            g = self.waiter
            self.waiter = None
            if g is None:
                self.tokens += 1
        if g is not None:
            goready(g)


def runtime_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("mn-")]


def num_fds() -> int:
    return psutil.Process().num_fds()
