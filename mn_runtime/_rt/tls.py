"""tls: the runtime's state that every floor may read, at the bottom of the import order.

`cur` is the one runtime of this process (None while none runs): run() sets it before it starts
any M and clears it after the last one has stopped (runtime.py), so a reader on a runtime thread
always sees the scheduler it runs under. It lives here rather than in sched.py so that the modules
below the scheduler can find it without importing it.

`tls` is the per-thread part: `tls.m` is the M this thread runs (None off the runtime's Ms);
`tls.glist` is the poller thread's batch of readied Gs (None elsewhere).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .g import G
    from .m import M
    from .sched import Sched

cur: Sched | None = None


class _TLS(threading.local):
    m: M | None = None
    glist: list[G] | None = None


tls = _TLS()
