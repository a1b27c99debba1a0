"""The one table of the runtime's locks (mn_runtime/_rt/lock.py LOCKS and PLAIN): every lock the
code makes is named there, and docs/design.md's "Locks" section describes every one of them."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

import mn_runtime
from mn_runtime._rt import lock as _lock
from mn_runtime.errors import Throw

ROOT = pathlib.Path(mn_runtime.__file__).parent
DESIGN = ROOT.parent / "docs" / "design.md"
# Not the runtime's: the stress sweep's own bookkeeping runs outside any run().
OUTSIDE = {"sweep.py"}


def _calls() -> list[tuple[str, int, str, list[ast.expr]]]:
    """_calls: every call that makes a lock in mn_runtime, as (file, line, how, args)."""
    out = []
    for f in sorted(ROOT.rglob("*.py")):
        rel = str(f.relative_to(ROOT))
        if f.name in OUTSIDE or rel == "_rt/lock.py":
            continue
        for node in ast.walk(ast.parse(f.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            fn = node.func
            base = fn.value.id if isinstance(fn.value, ast.Name) else ""
            if (base, fn.attr) in (("threading", "Lock"), ("threading", "RLock")):
                out.append((rel, node.lineno, "threading." + fn.attr, node.args))
            elif fn.attr in ("new", "plain") and base in ("_lock", "lock"):
                out.append((rel, node.lineno, fn.attr, node.args))
    return out


def test_every_lock_is_made_through_the_table() -> None:
    bad = []
    made = set()
    for rel, line, how, args in _calls():
        if how.startswith("threading."):
            bad.append(f"{rel}:{line} makes a bare {how}(): use lock.new or lock.plain")
            continue
        name = args[0].value if args and isinstance(args[0], ast.Constant) else None
        table = _lock.LOCKS if how == "new" else _lock.PLAIN
        if name not in table:
            bad.append(
                f"{rel}:{line} lock.{how}({name!r}) names no entry of lock.{'LOCKS' if how == 'new' else 'PLAIN'}"
            )
        made.add(name)
    # sync.py makes its locks through an alias of lock.new.
    sync = (ROOT / "sync.py").read_text()
    made.update(re.findall(r'_newlock\("([^"]+)"', sync))
    assert bad == []
    unused = (set(_lock.LOCKS) | set(_lock.PLAIN)) - made - {"g.lock"}  # g.py makes CheckedLock itself
    assert unused == set(), f"table entries no code makes: {sorted(unused)}"


def test_design_doc_describes_every_lock() -> None:
    text = DESIGN.read_text()
    start = text.index("## Locks")
    section = text[start : text.index("\n## ", start + 1)]
    missing = [n for n in [*_lock.LOCKS, *_lock.PLAIN] if f"`{n}`" not in section]
    assert missing == [], "docs/design.md's Locks section does not name these locks"


def test_ranks_in_the_doc_match_the_table() -> None:
    """Each ranked lock has a row of the doc's table that names it with its rank: `name` (RANK."""
    text = DESIGN.read_text()
    start = text.index("## Locks")
    section = text[start : text.index("\n## ", start + 1)]
    names = {v: k[len("RANK_") :] for k, v in vars(_lock).items() if k.startswith("RANK_")}
    given: dict[str, set[str]] = {}
    for row in section.splitlines():
        if row.startswith("| `"):
            for name, rank in re.findall(r"`([^`]+)` \(([A-Za-z]+)", row.split("|")[1]):
                given.setdefault(name, set()).add(rank)
    bad = [
        f"{n}: {sorted(given.get(n, set()))} in the doc, {names[r]} in LOCKS"
        for n, r in _lock.LOCKS.items()
        if given.get(n) != {names[r]}
    ]
    assert bad == []


def test_new_and_plain_refuse_names_not_in_the_table() -> None:
    with pytest.raises(Throw, match=r"not in lock\.LOCKS"):
        _lock.new("no.such.lock")
    with pytest.raises(Throw, match=r"not in lock\.PLAIN"):
        _lock.plain("no.such.lock")
    _lock.configure(True)
    try:
        lk = _lock.new("p.lock", "p7.lock")
        assert isinstance(lk, _lock.CheckedLock) and lk.rank == _lock.RANK_P and lk.name == "p7.lock"
    finally:
        _lock.configure(False)
