"""The mn_runtime command line.

    python -m mn_runtime run [--procs N] [--trace F] [--schedtrace MS] SCRIPT [args...]
    python -m mn_runtime demo [--procs N] [--trace F]
    python -m mn_runtime trace summary F [--top N]
    python -m mn_runtime trace plot F -o timeline.png

User mistakes (a missing script, a script without `async def main()`, an unreadable trace file)
print one line to stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import os
import runpy
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]

PROG = "python -m mn_runtime"


class UsageError(Exception):
    """A mistake in how the command was called: reported in one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def _millis(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of milliseconds, got {text}")
    return v


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="mn_runtime: a Go-like M:N runtime for Python coroutines")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{run,demo,trace}")
    r = sub.add_parser("run", help="run a script's async def main() on the runtime")
    r.add_argument("--procs", type=_positive_int, help="number of Ps (default $MN_PROCS or the CPU count)")
    r.add_argument("--trace", metavar="F", help="record an execution trace to F (Chrome/Perfetto JSON)")
    r.add_argument("--schedtrace", type=_millis, metavar="MS", help="print a SCHED line every MS milliseconds")
    r.add_argument("script", help="a Python file defining async def main()")
    r.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script (its sys.argv[1:])")
    d = sub.add_parser("demo", help="watch the scheduler steal, hand off and poll (a CPU-mixed workload)")
    d.add_argument("--procs", type=_positive_int, help="number of Ps (default: the CPU count, at least 4)")
    d.add_argument("--trace", metavar="F", help="also record an execution trace to F")
    d.add_argument("--quick", action="store_true", help="a shorter run")
    t = sub.add_parser("trace", help="read an execution trace: summary or plot")
    tsub = t.add_subparsers(dest="tcmd", required=True, metavar="{summary,plot}")
    s = tsub.add_parser("summary", help="per-M utilization, Gs run, steals, handoffs, latency, longest Gs")
    s.add_argument("file")
    s.add_argument("--top", type=_positive_int, default=10, help="how many of the longest-running Gs to list")
    p = tsub.add_parser("plot", help="draw a timeline picture (needs matplotlib: pip install mn_runtime[plot])")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True, help="output picture: .png, .svg or .pdf")
    p.add_argument("--title", help="title for the picture")
    return ap


# Options `run` accepts after the script name too (as its usage line in the docs shows them).
_RUN_OPTS = ("--procs", "--trace", "--schedtrace")


def _hoist_run_options(argv: list[str]) -> list[str]:
    """_hoist_run_options moves our options that follow `run SCRIPT` in front of the script, so
    `run x.py a --procs 2` works; everything after `--` belongs to the script untouched."""
    if not argv or argv[0] != "run":
        return argv
    ours: list[str] = []
    rest: list[str] = []
    i = 1
    seen_script = False
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest.extend(argv[i + 1 :] if seen_script else argv[i:])
            break
        name = a.split("=", 1)[0]
        if name in _RUN_OPTS:
            ours.append(a)
            if "=" not in a and i + 1 < len(argv):
                ours.append(argv[i + 1])
                i += 1
        else:
            seen_script = seen_script or not a.startswith("-")
            rest.append(a)
        i += 1
    return ["run", *ours, *rest]


def _load_main(script: str) -> Any:
    if not os.path.exists(script):
        raise UsageError(f"{script}: no such file")
    if os.path.isdir(script):
        raise UsageError(f"{script}: is a directory, not a Python script")
    try:
        ns = runpy.run_path(script, run_name="__mn_runtime_script__")
    except SyntaxError as e:
        raise UsageError(f"{script}:{e.lineno}: syntax error: {e.msg}") from None
    fn = ns.get("main")
    if fn is None:
        raise UsageError(f"{script}: defines no main(); write `async def main():` for the runtime to run")
    if not inspect.iscoroutinefunction(fn):
        raise UsageError(f"{script}: main is not an async function; define it with `async def main():`")
    return fn


def _cmd_run(ns: argparse.Namespace) -> int:
    from .runtime import run

    script = ns.script
    fn = _load_main(script)
    sys.argv = [script, *ns.args]
    result = run(fn, procs=ns.procs, trace=ns.trace, schedtrace=ns.schedtrace)
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0


def _cmd_demo(ns: argparse.Namespace) -> int:
    from .demo import run_demo

    procs = ns.procs or max(4, os.cpu_count() or 1)
    run_demo(procs=procs, trace=ns.trace, quick=ns.quick)
    if ns.trace:
        print(f"\ntrace written to {ns.trace}: open it in https://ui.perfetto.dev, or run")
        print(f"  {PROG} trace summary {ns.trace}\n  {PROG} trace plot {ns.trace} -o timeline.png")
    return 0


def _cmd_trace(ns: argparse.Namespace) -> int:
    from .tracetools import TraceError, format_summary, load_trace, plot_timeline, summarize

    try:
        data = load_trace(ns.file)
    except TraceError as e:
        raise UsageError(str(e)) from None
    if ns.tcmd == "summary":
        print(format_summary(summarize(data), ns.top))
        return 0
    out = ns.output
    if os.path.splitext(out)[1].lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"{out}: the picture's name must end in .png, .svg or .pdf")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "trace plot needs matplotlib, which is not installed: pip install 'mn_runtime[plot]'"
        ) from None
    try:
        plot_timeline(data, out, ns.title)
    except OSError as e:
        raise UsageError(f"{out}: cannot write: {e.strerror}") from None
    print(f"wrote {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """main runs the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    ns = _parser().parse_args(_hoist_run_options(args))
    try:
        if ns.cmd == "run":
            return _cmd_run(ns)
        if ns.cmd == "demo":
            return _cmd_demo(ns)
        return _cmd_trace(ns)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as e:
        if _from_script(e):
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2


def _from_script(e: BaseException) -> bool:
    """_from_script: the exception escaped a goroutine of the user's program (run() notes that),
    so its traceback is the user's business, not a usage error."""
    return any("raised in goroutine" in n for n in getattr(e, "__notes__", None) or [])


if __name__ == "__main__":
    sys.exit(main())
