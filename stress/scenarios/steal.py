"""steal: an imbalanced recursive spawn tree, every G started on one P; others must steal."""

from __future__ import annotations

import random

import mn_runtime as mn
from stress.report import Ctx

NAME = "steal"
DOC = "steal storm: imbalanced random spawn tree started from one G; leaf count exact; steals reported"
DEPTH = 6


def fanout(key: int, depth: int) -> int:
    """fanout is the tree's shape: children of node `key` (0 = leaf), a function of key alone."""
    if depth == 0:
        return 0
    r = random.Random(key)
    return r.choice((0, 1, 2, 3, 5, 8)) if depth < DEPTH else 8


def leaves(key: int, depth: int) -> int:
    k = fanout(key, depth)
    if k == 0:
        return 1
    return sum(leaves(key * 31 + i + 1, depth - 1) for i in range(k))


async def node(key: int, depth: int) -> int:
    k = fanout(key, depth)
    if k == 0:
        x = 0
        for i in range(200):  # a little CPU, so the tree takes time to drain
            x += i * i
        return 1
    gs = [mn.go(node, key * 31 + i + 1, depth - 1) for i in range(k)]
    n = 0
    for g in gs:
        n += await g.join()
    return n


async def main(ctx: Ctx) -> None:
    rounds = 0
    while not ctx.expired():
        key = ctx.rng.randrange(1 << 30)
        want = leaves(key, DEPTH)
        got = await mn.go(node, key, DEPTH).join()
        ctx.check(got == want, f"steal tree {key}: {got} leaves, want {want}")
        ctx.add(want)
        rounds += 1
    ctx.note("trees", rounds)
    ctx.note("steals", mn.stats()["steals"])
