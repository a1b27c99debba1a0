"""snapshot: the one shape of every statistics snapshot the runtime hands out.

`mn.stats()`, its per-P, per-M and latency parts, and `Chan.stats()` each return a frozen dataclass
built on `Snapshot`: typed fields read as attributes (`s.goroutines`, `s.per_p[0].runq`), and the
same values read as a read-only mapping (`s["goroutines"]`, `dict(s)`, `for key in s`), which is
what these calls returned before they were typed. `to_dict()` gives plain dicts and lists all the
way down (for JSON).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

__all__ = ["Snapshot"]


class Snapshot(Mapping[str, Any]):
    """Snapshot: a frozen dataclass whose fields also read as a mapping (a subclass is decorated
    with @dataclasses.dataclass(frozen=True, eq=False); equality is the mapping's, so a snapshot
    equals a dict with the same items)."""

    __slots__ = ()
    _names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _fieldnames(cls) -> tuple[str, ...]:
        names = cls.__dict__.get("_names")
        if not names:
            names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
            cls._names = names
        return names

    def __getitem__(self, key: str) -> Any:
        if key in self._fieldnames():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._fieldnames())

    def __len__(self) -> int:
        return len(self._fieldnames())

    def to_dict(self) -> dict[str, Any]:
        """to_dict: the snapshot as plain dicts and lists (nested snapshots too)."""
        return {k: _plain(getattr(self, k)) for k in self._fieldnames()}


def _plain(v: Any) -> Any:
    if isinstance(v, Snapshot):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v
