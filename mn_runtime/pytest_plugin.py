"""pytest_plugin: run `async def` tests on mn_runtime (installed as the `pytest11` entry point).

The plugin is off until used: it only touches tests marked `@pytest.mark.mn`.

    @pytest.mark.mn                                  # run under mn.run
    async def test_pipeline(): ...

    @pytest.mark.mn(procs=[1, 2, 4], chaos_seeds=20)  # 3 tests, each run under 20 chaos seeds
    async def test_counter(mn_procs): ...

Marker keywords:
    procs=N or [N, ...]   Ps; a list runs the test once per value (ids `procs=N`). Default: the
                          --mn-procs option's values, else run()'s default ($MN_PROCS or the CPUs)
    chaos_seeds=K         run it under chaos seeds start..start+K-1 (start: --mn-seed-start, 0)
    chaos=SEED            run it under this one chaos seed
    timeout=S             fail after S seconds with the goroutine dump (default: shortly before
                          pytest-timeout's limit, where that plugin has one for the test)
    leak_check=False      do not fail a test that leaves goroutines behind
    leak_timeout=S        how long goroutines still running at the end may take to finish (1.0)
    anything else         passed to mn.run() as is (for example runqsize=, seed=)

Command-line options: --mn-chaos-seeds K (every mn test, unless its marker says chaos_seeds),
--mn-seed-start N, --mn-chaos-seed SEED (every mn test under this one seed: replays a failure),
--mn-procs 1,2,4 (for mn tests whose marker names no procs).

A failure under a chaos seed names the seed and the command that replays it. A test whose main
returns while other goroutines are left (after leak_timeout) fails with their dump; a deadlock
fails with mn.Deadlock's dump. Fixtures: `mn_procs` (the test's Ps) and `mn_run` (a callable
that starts a fresh runtime with the test's procs and seed, for sync tests that drive mn.run
themselves). Sync fixtures run outside the runtime, once per test; a test rerun under several
seeds gets the same fixture values every time.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from . import runtime as _runtime
from ._rt import tls as _tls
from .errors import Deadlock

__all__ = ["LeakedGoroutines", "MnTimeout"]

MARKER = "mn"
# Marker keywords the plugin reads itself; the rest go to mn.run().
_OWN = ("procs", "chaos_seeds", "chaos", "timeout", "leak_check", "leak_timeout")
LEAK_TIMEOUT = 1.0
# The timeout with the dump fires this long before pytest-timeout's (a fraction of it, bounded).
TIMEOUT_MARGIN = (0.1, 2.0, 10.0)  # fraction, least seconds, most seconds

_procs_key = pytest.StashKey[int]()
_pt_deadline = pytest.StashKey[float]()
_report = pytest.StashKey[str]()


class LeakedGoroutines(AssertionError):
    """The test returned while other goroutines were still there (after leak_timeout)."""


class MnTimeout(AssertionError):
    """The test ran past its timeout; the message lists every goroutine."""


# --- options and marker ---


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("mn_runtime", "mn_runtime: async tests marked @pytest.mark.mn")
    g.addoption(
        "--mn-chaos-seeds",
        type=int,
        metavar="K",
        default=None,
        help="run every @pytest.mark.mn test under K chaos seeds (a marker's chaos_seeds wins)",
    )
    g.addoption("--mn-seed-start", type=int, metavar="N", default=0, help="the first chaos seed of a sweep (default 0)")
    g.addoption(
        "--mn-chaos-seed",
        type=int,
        metavar="SEED",
        default=None,
        help="run every mn test once under this chaos seed (replays a failure a sweep found)",
    )
    g.addoption(
        "--mn-procs",
        metavar="P[,P...]",
        default=None,
        help="Ps for mn tests whose marker names none: a list runs each such test once per value",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "mn(procs=None, chaos_seeds=None, chaos=None, timeout=None, leak_check=True, leak_timeout=1.0, **run_kwargs):"
        " run an async def test under mn_runtime.run (see mn_runtime.pytest_plugin)",
    )
    for opt in ("--mn-chaos-seeds", "--mn-seed-start", "--mn-chaos-seed"):
        v = config.getoption(opt)
        if v is not None and v < 0:
            raise pytest.UsageError(f"{opt} must be a non-negative integer, got {v}")
    if config.getoption("--mn-procs") is not None:
        try:
            _parse_procs(config.getoption("--mn-procs"), "--mn-procs")
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None


def _parse_procs(value: object, what: str) -> list[int]:
    """_parse_procs reads procs as the marker ("2", [1, 2]) or --mn-procs ("1,2,4") gives them;
    raises ValueError saying what is wrong."""
    if isinstance(value, str):
        try:
            value = [int(x) for x in value.split(",")]
        except ValueError:
            raise ValueError(f"{what}: expected Ps such as 1,2,4, got {value!r}") from None
    items = value if isinstance(value, (list, tuple)) else [value]
    out = []
    for n in items:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{what}: each procs value must be an int >= 1, got {n!r}")
        out.append(n)
    if not out:
        raise ValueError(f"{what}: needs at least one procs value")
    return out


def _check_marker(mark: pytest.Mark, where: str) -> None:
    """_check_marker raises ValueError for a marker keyword of the wrong type or range."""
    if mark.args:
        raise ValueError(f"{where}: takes keyword arguments only, got {mark.args!r}")
    for k in ("chaos_seeds", "chaos"):
        v = mark.kwargs.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            raise ValueError(f"{where}: {k} must be a non-negative int, got {v!r}")
    for k in ("timeout", "leak_timeout"):
        v = mark.kwargs.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf")):
            raise ValueError(f"{where}: {k} must be a positive number of seconds, got {v!r}")


def _marker(node: Any) -> pytest.Mark | None:
    return node.get_closest_marker(MARKER)  # type: ignore[no-any-return]


def _marked(collector: Any, obj: object) -> bool:
    if any(m.name == MARKER for m in getattr(obj, "pytestmark", ())):
        return True
    return collector.get_closest_marker(MARKER) is not None


@pytest.hookimpl(wrapper=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Any:
    # A marked test's closure must hold mn_procs for pytest_generate_tests to parametrize it: add
    # it as a usefixtures mark before pytest works out the function's fixtures.
    if inspect.isfunction(obj) and collector.funcnamefilter(name) and _marked(collector, obj):
        pytest.mark.usefixtures("mn_procs")(obj)
    return (yield)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    mark = _marker(metafunc.definition)
    if mark is None:
        return
    where = f"@pytest.mark.mn on {metafunc.definition.nodeid}"
    procs = mark.kwargs.get("procs")
    try:
        _check_marker(mark, where)
        if procs is None:
            opt = metafunc.config.getoption("--mn-procs")
            values = _parse_procs(opt, "--mn-procs") if opt is not None else [_runtime._resolve_procs(None)]
        else:
            values = _parse_procs(procs, where + ": procs")
    except ValueError as e:
        pytest.fail(str(e), pytrace=False)  # a collection error of this module, not a session abort
    metafunc.parametrize("mn_procs", values, indirect=True, ids=[f"procs={n}" for n in values])


# --- fixtures ---


@pytest.fixture
def mn_procs(request: pytest.FixtureRequest) -> int:
    """mn_procs: the number of Ps this test runs under (the marker's procs, one per test id)."""
    n = getattr(request, "param", None)
    if n is None:
        opt = request.config.getoption("--mn-procs")
        n = _parse_procs(opt, "--mn-procs")[0] if opt is not None else _runtime._resolve_procs(None)
    request.node.stash[_procs_key] = n
    return int(n)


@pytest.fixture
def mn_run(request: pytest.FixtureRequest, mn_procs: int) -> Callable[..., Any]:
    """mn_run(main, *args, **run_kwargs): mn.run in a fresh runtime with this test's procs, and
    under chaos with the seed given by --mn-chaos-seed (if any); keywords override them."""
    seed = request.config.getoption("--mn-chaos-seed")

    def run(main: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("procs", mn_procs)
        if seed is not None:
            kwargs.setdefault("chaos", seed)
        return _runtime.run(main, *args, **kwargs)

    return run


# --- running a marked test ---


def _seeds(item: pytest.Item, mark: pytest.Mark) -> list[int | None]:
    cfg = item.config
    replay = cfg.getoption("--mn-chaos-seed")
    if replay is not None:
        return [replay]
    k = mark.kwargs.get("chaos_seeds")
    if k is None:
        k = cfg.getoption("--mn-chaos-seeds")
    if k:
        start = cfg.getoption("--mn-seed-start")
        return list(range(start, start + k))
    return [mark.kwargs.get("chaos")]


def _others(me: Any) -> list[Any]:
    s = _tls.cur
    if s is None:
        return []
    return [g for g in s.allgs.snapshot() if g is not me]


def _dump(gs: Sequence[Any]) -> str:
    from ._rt.stack import format_goroutine

    now = time.monotonic()
    return "\n\n".join(format_goroutine(g, now) for g in gs)


async def _leak_check(grace: float) -> None:
    """_leak_check (goroutine 1, after the test returned) waits up to grace seconds for every other
    goroutine to finish, then fails with the dump of those left."""
    me = _runtime._gof(_runtime.current())  # the G, as the G table holds it
    deadline = time.monotonic() + grace
    delay = 0.001
    while True:
        left = _others(me)
        if not left:
            return
        if time.monotonic() >= deadline:
            raise LeakedGoroutines(
                f"the test returned and left {len(left)} goroutine(s) behind (waited {grace:g}s for them to"
                f" finish):\n\n{_dump(left)}"
            )
        await _runtime.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _test_main(fn: Callable[..., Any], kwargs: dict[str, Any], leak: float | None, box: list[Any]) -> Any:
    box.append(_tls.cur)  # for the timeout watchdog
    result = await fn(**kwargs)
    if leak is not None:
        await _leak_check(leak)
    return result


class _Watchdog:
    """_Watchdog: a plain thread that, at the deadline, stops the running test's runtime with an
    MnTimeout listing every goroutine. A thread rather than a runtime timer, so a test that
    deadlocks is still reported as a deadlock at once."""

    def __init__(self, seconds: float, box: list[Any], what: str) -> None:
        self.box = box
        self.what = what
        self.seconds = seconds
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        s = self.box[0] if self.box else None
        if s is None or _tls.cur is not s:
            return
        gs = s.allgs.snapshot()
        err = MnTimeout(f"{self.what} ran past its timeout of {self.seconds:.3g}s; its goroutines:\n\n{_dump(gs)}")
        s.stop(error=err)

    def __enter__(self) -> _Watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timer.cancel()
        self.timer.join()  # the test leaves no thread behind, as run() does not


def _timeout(item: pytest.Item, mark: pytest.Mark) -> float | None:
    """_timeout: seconds left for this run: the marker's timeout, or a little less than what is
    left of pytest-timeout's limit, whichever ends first."""
    own = mark.kwargs.get("timeout")  # checked by _check_marker
    left = None
    deadline = item.stash.get(_pt_deadline, None)
    if deadline is not None:
        left = max(0.01, deadline - time.monotonic())
    if own is None:
        return left
    return own if left is None else min(own, left)


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    # pytest-timeout is arming its timer: remember when it will fire, to fire our dump first.
    t = getattr(settings, "timeout", None)
    if t and t > 0 and isinstance(item, pytest.Function) and _marker(item) is not None:
        frac, least, most = TIMEOUT_MARGIN
        margin = min(max(least, t * frac), most, t / 2)
        item.stash[_pt_deadline] = time.monotonic() + t - margin


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    mark = _marker(pyfuncitem)
    if mark is None or not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    fn = pyfuncitem.obj
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {k: pyfuncitem.funcargs[k] for k in names}
    procs = pyfuncitem.funcargs.get("mn_procs") or pyfuncitem.stash.get(_procs_key, None)
    run_kwargs = {k: v for k, v in mark.kwargs.items() if k not in _OWN}
    leak: float | None = None
    if mark.kwargs.get("leak_check", True):
        leak = float(mark.kwargs.get("leak_timeout", LEAK_TIMEOUT))
    for seed in _seeds(pyfuncitem, mark):
        box: list[Any] = []
        kw = dict(run_kwargs)
        if seed is not None:
            kw["chaos"] = seed
        what = pyfuncitem.nodeid + (f" (chaos seed {seed})" if seed is not None else "")
        seconds = _timeout(pyfuncitem, mark)
        coro = _test_main(fn, kwargs, leak, box)
        coro.__qualname__ = fn.__qualname__  # goroutine 1 is named after the test in dumps and notes
        try:
            if seconds is None:
                _runtime.run(coro, procs=procs, **kw)
            else:
                with _Watchdog(seconds, box, what):
                    _runtime.run(coro, procs=procs, **kw)
        except BaseException as e:
            coro.close()  # never started where run() refused its arguments; a no-op otherwise
            if seed is not None and isinstance(e, Exception):
                note = _replay_note(pyfuncitem, seed, procs)
                e.add_note(note)
                pyfuncitem.stash[_report] = note
            if isinstance(e, (LeakedGoroutines, MnTimeout, Deadlock)):
                # The message holds the goroutine dump; the plugin's and runtime's frames add nothing.
                __tracebackhide__ = True
                raise e.with_traceback(None) from None
            raise
    return True


def _replay_note(item: pytest.Item, seed: int, procs: int | None) -> str:
    cmd = f"python -m pytest '{item.nodeid}' --mn-chaos-seed {seed}"
    text = f"mn_runtime: failed under chaos seed {seed} at procs={procs}; replay: {cmd}"
    if procs != 1:
        text += " (with procs > 1 the OS's thread scheduling also decides: a replay may need several tries)"
    return text


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    note = item.stash.get(_report, None)
    if note is not None and call.when == "call" and report.failed:
        report.sections.append(("mn_runtime chaos seed", note))
    return report
