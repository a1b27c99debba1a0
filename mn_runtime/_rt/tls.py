"""tls: per-thread runtime state. `tls.m` is the M this thread runs (None off the runtime's Ms);
`tls.glist` is the poller thread's batch of readied Gs (None elsewhere)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .g import G
    from .m import M


class _TLS(threading.local):
    m: M | None = None
    glist: list[G] | None = None
    sched: Any = None


tls = _TLS()
