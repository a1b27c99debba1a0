"""allgs: the table of every G that has not exited (Go's allgs and goidgen).

Go adds a G to allgs once, when it is first allocated, and recycles dead Gs through per-P free
lists, so `allglock` is rare there. Here every G is a new object, added by newproc and removed by
goexit: two table changes per goroutine, from whichever M creates or ends it. One lock around one
dict made spawning on two Ms contend for it (stress/benchmarks/locks.py, "spawn x2"), so the table is
split into NSHARD shards by G id, each a dict under its own lock, and ids come from per-P caches
of IDBATCH consecutive ids (Go's pp.goidcache), refilled under `idlock`: spawning Ms on different
Ps then touch different shards nearly always and the id lock once per IDBATCH Gs.

Invariants: a G is in exactly one shard, shard id % NSHARD, from newproc until goexit (or run()'s
teardown) removes it; a shard changes only under its lock; `ncreated` (ids handed out, Go's
goidgen) changes only under `idlock`, a P's id cache only on its owner M. Readers that need every
G (dumps, checkdead, teardown) lock the shards one at a time: the listing is each shard's exact
state at the moment it was read, which is what a dump or a stopped world needs. checkdead calls
`snapshot` with every M idle, when nobody adds or removes Gs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import lock as _lock

if TYPE_CHECKING:
    from .g import G
    from .p import P

__all__ = ["IDBATCH", "NSHARD", "GTable"]

NSHARD = 16
IDBATCH = 16


class GTable:
    """GTable is allgs split in NSHARD locked shards, with goidgen handed out in per-P batches."""

    __slots__ = ("idlock", "locks", "ncreated", "shards")

    def __init__(self) -> None:
        self.shards: list[dict[int, G]] = [{} for _ in range(NSHARD)]
        self.locks = [_lock.new("allglock") for _ in range(NSHARD)]
        self.idlock = _lock.new("goidlock")
        self.ncreated = 0

    def newid(self, p: P | None) -> int:
        """newid hands out the next G id: from p's cache (p's owner M calls it), else, and to
        refill that cache, from ncreated under idlock."""
        if p is not None:
            nxt = p.goidcache
            if nxt < p.goidcacheend:
                p.goidcache = nxt + 1
                return nxt
        lock = self.idlock
        lock.acquire()
        first = self.ncreated + 1
        self.ncreated += IDBATCH if p is not None else 1
        lock.release()
        if p is not None:
            p.goidcache = first + 1
            p.goidcacheend = first + IDBATCH
        return first

    def created(self, allp: list[P]) -> int:
        """created: how many Gs have been made (ids handed out less those still in the Ps' caches;
        the caches read without their owners, a count for stats)."""
        return self.ncreated - sum(p.goidcacheend - p.goidcache for p in allp)

    def add(self, gp: G) -> None:
        """add puts gp, whose id is set, in its shard."""
        gid = gp.id
        i = gid % NSHARD
        lock = self.locks[i]
        lock.acquire()  # hot path: acquire/release cost half of a with block
        self.shards[i][gid] = gp
        lock.release()

    def remove(self, gp: G) -> None:
        """remove takes gp out of its shard (goexit)."""
        gid = gp.id
        i = gid % NSHARD
        lock = self.locks[i]
        lock.acquire()
        try:
            del self.shards[i][gid]
        finally:
            lock.release()

    def __len__(self) -> int:
        """The number of Gs in the table (each shard's size read without its lock: a count for
        stats and num_goroutine, exact once the Gs it counts have been added or removed)."""
        return sum(len(s) for s in self.shards)

    def snapshot(self, locked: bool = True) -> list[G]:
        """snapshot lists every G in the table, by id. locked=False (a signal handler that may
        have interrupted a holder on its own thread) copies each shard without its lock, retrying
        a shard that changed under the copy."""
        out: list[G] = []
        for i, shard in enumerate(self.shards):
            if locked:
                lock = self.locks[i]
                lock.acquire()
                try:
                    out.extend(shard.values())
                finally:
                    lock.release()
            else:
                out.extend(_copy(shard))
        out.sort(key=lambda g: g.id)
        return out

    def take_all(self) -> list[G]:
        """take_all empties the table and returns what it held (run()'s teardown)."""
        out: list[G] = []
        for i, shard in enumerate(self.shards):
            lock = self.locks[i]
            lock.acquire()
            try:
                out.extend(shard.values())
                shard.clear()
            finally:
                lock.release()
        return out


def _copy(shard: dict[int, Any]) -> list[Any]:
    for _ in range(100):
        try:
            return list(shard.values())
        except RuntimeError:  # the dict changed size during the copy
            continue
    return []
