"""scenarios: the stress scenarios `python -m stress` runs, one module each: NAME, DOC, `async def main(ctx)`."""

from __future__ import annotations

from types import ModuleType

from . import chan, mutex, netpoll, select, soak, spawn, steal, syscall, timer

SCENARIOS: dict[str, ModuleType] = {
    m.NAME: m for m in (spawn, chan, select, steal, timer, syscall, netpoll, mutex, soak)
}
