"""The mn_runtime command line.

    python -m mn_runtime run [--procs N] [--chaos SEED] [--trace F] [--schedtrace MS] SCRIPT [args...]
    python -m mn_runtime stress [--seeds N] [--procs 1,2,4] [--timeout S] [--jobs J] [--trace] SCRIPT [args...]
    python -m mn_runtime demo [--procs N] [--trace F]
    python -m mn_runtime trace summary F [--top N]
    python -m mn_runtime trace plot F -o timeline.png
    python -m mn_runtime --version

The installed console script `mn-runtime` is the same command. `run`'s options go before SCRIPT:
everything after the script's name is the script's own argument list (its sys.argv[1:]), options
included, so `run prog.py --procs 2` hands `--procs 2` to prog.py. `stress` also takes its own
options after SCRIPT (`stress prog.py --seeds 20`), and gives the script what follows a `--`.

User mistakes (a missing script, a script without `async def main()`, an unreadable trace file)
print one line to stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import runpy
import sys
import traceback
from collections.abc import Sequence
from typing import Any

__all__ = ["main", "prog_name"]

SCRIPT_ARGS_HELP = (
    "arguments for the script (its sys.argv[1:]); everything after SCRIPT goes to the script,"
    " options included, so put this command's options before SCRIPT"
)


class UsageError(Exception):
    """A mistake in how the command was called: reported in one line, exit status 2."""


def prog_name() -> str:
    """prog_name is how this command was invoked: the console script's name (`mn-runtime`), or
    `python -m mn_runtime`."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name.endswith(".py") or name in ("-c", "-m"):
        return "python -m mn_runtime"
    return name


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {n}")
    return n


def _seed(text: str) -> int:
    try:
        n = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer seed, got {n}")
    return n


def _millis(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of milliseconds, got {text}")
    return v


def _parser(prog: str) -> argparse.ArgumentParser:
    from . import __version__
    from .sweep import add_stress_parser

    ap = argparse.ArgumentParser(
        prog=prog,
        description="mn_runtime: a Go-like M:N runtime for Python coroutines",
        epilog="run's options go before SCRIPT: whatever follows the script's name is passed to the script."
        " stress takes its own options before or after SCRIPT.",
    )
    ap.add_argument("--version", action="version", version=f"mn_runtime {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{run,stress,demo,trace}")
    r = sub.add_parser(
        "run",
        help="run a script's async def main() on the runtime",
        description="Run SCRIPT's `async def main()` on the runtime; its return value, if an int, is the exit status.",
        epilog="Options go before SCRIPT: `run --procs 2 prog.py --procs 3` runs on 2 Ps and gives prog.py"
        " the arguments `--procs 3`.",
    )
    r.add_argument("--procs", type=_positive_int, help="number of Ps (default $MN_PROCS or the CPU count)")
    r.add_argument(
        "--chaos",
        type=_seed,
        metavar="SEED",
        help="run under chaos mode with this seed (default $MN_CHAOS); with --procs 1 a seed replays the same"
        " interleaving",
    )
    r.add_argument("--trace", metavar="F", help="record an execution trace to F (Chrome/Perfetto JSON)")
    r.add_argument("--schedtrace", type=_millis, metavar="MS", help="print a SCHED line every MS milliseconds")
    # Where `stress` asks its child runs to write their outcome (JSON); not for people.
    r.add_argument("--result-file", help=argparse.SUPPRESS)
    r.add_argument("script", metavar="SCRIPT", help="a Python file defining async def main()")
    r.add_argument("args", nargs=argparse.REMAINDER, help=SCRIPT_ARGS_HELP)
    add_stress_parser(sub, SCRIPT_ARGS_HELP)
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


def load_main(script: str) -> Any:
    """load_main runs SCRIPT's top level (as module `__mn_runtime_script__`) and returns its
    `async def main`; raises UsageError saying what is wrong with the script."""
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


def _write_result(path: str, outcome: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(outcome, f)


def _cmd_run(ns: argparse.Namespace) -> int:
    from .runtime import run

    script = ns.script
    if ns.result_file is None:
        fn = load_main(script)
        sys.argv = [script, *ns.args]
        return _status(run(fn, procs=ns.procs, trace=ns.trace, schedtrace=ns.schedtrace, chaos=ns.chaos))
    # A child run of `stress`: the same as above, and the outcome also goes to the result file.
    try:
        fn = load_main(script)
        sys.argv = [script, *ns.args]
        status = _status(run(fn, procs=ns.procs, trace=ns.trace, schedtrace=ns.schedtrace, chaos=ns.chaos))
    except UsageError as e:
        _write_result(ns.result_file, {"outcome": "usage", "type": "UsageError", "message": str(e)})
        raise
    except BaseException as e:
        _write_result(
            ns.result_file,
            {
                "outcome": "error",
                "type": type(e).__qualname__,
                "message": str(e).strip().split("\n", 1)[0] if str(e).strip() else "",
                "traceback": _user_traceback(e),
            },
        )
        raise
    _write_result(ns.result_file, {"outcome": "ok" if status == 0 else "status", "status": status})
    return status


def _user_traceback(e: BaseException) -> str:
    """_user_traceback formats e without the frames of this command line, which come first in
    every child run's traceback and say nothing about the script."""
    te = traceback.TracebackException.from_exception(e)
    here = os.path.abspath(__file__)
    te.stack = traceback.StackSummary.from_list([f for f in te.stack if os.path.abspath(f.filename) != here])
    return "".join(te.format())


def _status(result: Any) -> int:
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0


def _cmd_demo(ns: argparse.Namespace, prog: str) -> int:
    from .demo import run_demo

    procs = ns.procs or max(4, os.cpu_count() or 1)
    run_demo(procs=procs, trace=ns.trace, quick=ns.quick)
    if ns.trace:
        print(f"\ntrace written to {ns.trace}: open it in https://ui.perfetto.dev, or run")
        print(f"  {prog} trace summary {ns.trace}\n  {prog} trace plot {ns.trace} -o timeline.png")
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
    from .sweep import StressUsageError, cmd_stress, hoist_options

    args = list(sys.argv[1:] if argv is None else argv)
    if "stress" in args:
        # `stress SCRIPT [args] --seeds N` as well as `stress --seeds N SCRIPT [args]`.
        k = args.index("stress")
        if all(a.startswith("-") for a in args[:k]):
            args = [*args[: k + 1], *hoist_options(args[k + 1 :])]
    prog = prog_name()
    ns = _parser(prog).parse_args(args)
    try:
        if ns.cmd == "run":
            return _cmd_run(ns)
        if ns.cmd == "stress":
            return cmd_stress(ns, prog)
        if ns.cmd == "demo":
            return _cmd_demo(ns, prog)
        return _cmd_trace(ns)
    except (UsageError, StressUsageError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, OSError) as e:
        if not _from_script(e):
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
        print(_user_traceback(e), file=sys.stderr, end="")
        return 1
    except Exception as e:
        if ns.cmd != "run":
            raise
        # The script's own failure: its traceback, without this command line's frames.
        print(_user_traceback(e), file=sys.stderr, end="")
        return 1


def _from_script(e: BaseException) -> bool:
    """_from_script: the exception escaped a goroutine of the user's program (run() notes that),
    so its traceback is the user's business, not a usage error."""
    return any("raised in goroutine" in n for n in getattr(e, "__notes__", None) or [])


if __name__ == "__main__":
    sys.exit(main())
