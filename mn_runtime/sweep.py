"""sweep: `python -m mn_runtime stress`, a chaos seed sweep of any program.

    python -m mn_runtime stress [--seeds N] [--procs 1,2,4] [--timeout S] [--jobs J] [--trace] SCRIPT [args...]

Each run is one fresh `python -m mn_runtime run --procs P --chaos SEED SCRIPT args` subprocess, so
a crash, a hang or leftover state in one run cannot touch another, and the command that ran is the
command that replays it. The child reports its outcome (ok, the exception's type and first line,
or main's non-zero exit status) in a small JSON file; a run that outlives --timeout is sent SIGQUIT,
prints its goroutine dump (mn_runtime/debug.py) and exits, or is killed after a grace period.

The contract for SCRIPT is that of `run`: it defines `async def main()`; a run fails when main or
any goroutine raises, or main returns a non-zero int (its exit status).

With procs=1 a chaos seed fixes the interleaving (mn_runtime/_rt/chaos.py, replay mode), so a
failing seed fails again when replayed; with more Ps the OS's thread scheduling also decides, and a
replay may need several tries.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["RunResult", "StressUsageError", "Sweep", "add_stress_parser", "cmd_stress"]

QUIT_GRACE = 5.0  # seconds a timed-out run gets to print its dump after SIGQUIT before SIGKILL
TAIL_LINES = 40  # lines of a failed run's stderr shown as its traceback
LIST_MOST = 10  # failures listed one by one, each with its replay command
# The options of `stress` itself, for the note when one follows the script's name.
_OWN_OPTIONS = (
    "--seeds",
    "--seed-start",
    "--procs",
    "--chaos",
    "--no-chaos",
    "--timeout",
    "--jobs",
    "--trace",
    "--trace-dir",
    "--json",
)
# The options above that take a value (as the next word, or after "=").
_VALUED = frozenset({"--seeds", "--seed-start", "--procs", "--timeout", "--jobs", "--trace-dir", "--json"})


def hoist_options(words: Sequence[str]) -> list[str]:
    """hoist_options rewrites the words after `stress` so that its own options may also follow
    SCRIPT, as in `stress SCRIPT [args] --seeds N --procs 1,2`: they move before SCRIPT, and the
    other words after SCRIPT stay the script's, in order. After a `--` every word is the
    script's (`stress SCRIPT -- --seeds 3` gives the script `--seeds 3`).
    """
    words = list(words)
    i = 0
    while i < len(words):  # skip the options before SCRIPT to find it
        w = words[i]
        if w == "--" or not w.startswith("-"):
            break
        i += 2 if w in _VALUED else 1
    if i >= len(words) or words[i] == "--":
        return words  # no script (argparse says so), or `--` before it
    head, script, tail = words[:i], words[i], words[i + 1 :]
    own: list[str] = []
    rest: list[str] = []
    j = 0
    while j < len(tail):
        w = tail[j]
        if w == "--":
            rest.extend(tail[j + 1 :])
            break
        name = w.split("=", 1)[0]
        if name in _OWN_OPTIONS:
            own.append(w)
            if name in _VALUED and "=" not in w and j + 1 < len(tail):
                own.append(tail[j + 1])
                j += 1
        else:
            rest.append(w)
        j += 1
    return [*head, *own, script, *rest]


def _procs_list(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        try:
            n = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected Ps as a list such as 1,2,4, got {text!r}") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"each procs value must be at least 1, got {n}")
        if n not in out:
            out.append(n)
    return out


def _count(text: str, least: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if n < least:
        raise argparse.ArgumentTypeError(f"expected an integer >= {least}, got {n}")
    return n


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text}")
    return v


def add_stress_parser(sub: Any, script_args_help: str) -> argparse.ArgumentParser:
    """add_stress_parser adds the `stress` subcommand to the CLI's subparsers."""
    st = sub.add_parser(
        "stress",
        help="run a script's main() under many chaos seeds, each in a fresh process; report failures and hangs",
        description="Run SCRIPT's `async def main()` once per chaos seed and procs value, each run in a fresh"
        " subprocess, and report the runs that raised, returned a non-zero status or hung, each with the"
        " command that replays it. Exit status 1 if any run failed or hung.",
        epilog="This command's own options may come before or after SCRIPT; the other words after SCRIPT"
        " are the script's arguments, and after `--` every word is (`stress prog.py -- --seeds 3`).",
    )
    st.add_argument("--seeds", type=lambda t: _count(t, 1), default=50, metavar="N", help="seeds to run (default 50)")
    st.add_argument(
        "--seed-start", type=lambda t: _count(t, 0), default=0, metavar="K", help="the first seed (default 0)"
    )
    st.add_argument(
        "--procs",
        type=_procs_list,
        default=[1],
        metavar="P[,P...]",
        help="run every seed at each of these Ps (default 1: only procs=1 replays a seed exactly)",
    )
    st.add_argument(
        "--chaos",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="chaos mode, seeded (the default); --no-chaos makes plain runs, which do not replay",
    )
    st.add_argument(
        "--timeout", type=_seconds, default=60.0, metavar="S", help="a run longer than S seconds hangs (default 60)"
    )
    st.add_argument(
        "--jobs",
        type=lambda t: _count(t, 1),
        default=os.cpu_count() or 1,
        metavar="J",
        help="runs at once (default: the CPU count)",
    )
    st.add_argument(
        "--trace",
        action="store_true",
        help="replay the first failing run of each kind once more, recording an execution trace"
        " (Perfetto, `trace plot`)",
    )
    st.add_argument("--trace-dir", default=".", metavar="DIR", help="where --trace writes its traces (default .)")
    st.add_argument("--json", metavar="F", help="also write every run's outcome to F as JSON")
    st.add_argument("script", metavar="SCRIPT", help="a Python file defining async def main()")
    st.add_argument("args", nargs=argparse.REMAINDER, help=script_args_help)
    return st


@dataclass
class RunResult:
    """RunResult: the outcome of one child run."""

    seed: int
    procs: int
    outcome: str  # "ok", "failed", "hung"
    kind: str = ""  # what failed: an exception type, "exit status N", "killed by SIGSEGV", "timeout"
    message: str = ""  # the exception's first line
    returncode: int | None = None
    seconds: float = 0.0
    stderr: str = field(default="", repr=False)
    traceback: str = field(default="", repr=False)
    dump: str = field(default="", repr=False)  # a hung run's goroutine dump
    replay: str = ""  # the command that replays this run
    trace: str = ""  # with --trace: the trace of the replay
    replayed: str = ""  # with --trace: what the replay did ("failed: T", "ok", "hung")


class StressUsageError(Exception):
    """A mistake in the command, or a script that cannot run at all (no main, a syntax error):
    reported in one line, once, not per seed; exit status 2."""


def _display_python() -> str:
    """_display_python: `python` when that is this interpreter on PATH, else its full path."""
    exe = sys.executable or "python"
    for name in ("python", "python3"):
        found = shutil.which(name)
        if found and os.path.realpath(found) == os.path.realpath(exe):
            return name
    return exe


def _display_prog(prog: str) -> list[str]:
    if prog == "python -m mn_runtime":
        return [_display_python(), "-m", "mn_runtime"]
    return [prog]


class Sweep:
    """Sweep: the runs of one `stress` command, run J at a time in subprocesses."""

    def __init__(
        self,
        script: str,
        args: Sequence[str],
        seeds: Sequence[int],
        procs: Sequence[int],
        chaos: bool = True,
        timeout: float = 60.0,
        jobs: int = 1,
        prog: str = "python -m mn_runtime",
        quiet: bool = False,
    ) -> None:
        self.script = script
        self.args = list(args)
        self.seeds = list(seeds)
        self.procs = list(procs)
        self.chaos = chaos
        self.timeout = timeout
        self.jobs = jobs
        self.prog = prog
        self.quiet = quiet
        self.results: list[RunResult] = []
        self.lock = threading.Lock()  # guards results, live and the progress counters
        self.live: set[subprocess.Popen[bytes]] = set()
        self.stopping = False
        self.usage: str | None = None
        self.elapsed = 0.0
        self._tty = sys.stderr.isatty()
        self._last_progress = 0.0
        self._last_n = -1
        self._started = 0.0

    # --- commands ---

    def run_options(self, seed: int, procs: int, trace: str | None = None) -> list[str]:
        """run_options: `run` and its options for one run; the script and its arguments follow."""
        out = ["run", "--procs", str(procs)]
        if self.chaos:
            out += ["--chaos", str(seed)]
        if trace is not None:
            out += ["--trace", trace]
        return out

    def replay_command(self, seed: int, procs: int, trace: str | None = None) -> str:
        """replay_command: the shell command that reruns one run, as the user would type it."""
        return shlex.join([*_display_prog(self.prog), *self.run_options(seed, procs, trace), self.script, *self.args])

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("MN_TRACE", None)  # every child would write the same file
        if not self.chaos:
            env.pop("MN_CHAOS", None)
        return env

    # --- running ---

    def run_one(self, seed: int, procs: int, tmp: str, trace: str | None = None) -> RunResult:
        """run_one runs one child and classifies its outcome."""
        rfile = os.path.join(tmp, f"result-{seed}-{procs}{'-trace' if trace else ''}.json")
        opts = self.run_options(seed, procs, trace)
        cmd = [sys.executable, "-m", "mn_runtime", *opts, "--result-file", rfile, self.script, *self.args]
        res = RunResult(seed, procs, "ok", replay=self.replay_command(seed, procs))
        t0 = time.monotonic()
        with self.lock:
            if self.stopping:
                res.outcome, res.kind = "failed", "interrupted"
                return res
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=self._env(),
                start_new_session=True,  # a Ctrl-C at the terminal reaches the sweep, which ends the runs
            )
            self.live.add(proc)
        hung = False
        try:
            try:
                _, err = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                hung = True
                try:
                    proc.send_signal(signal.SIGQUIT)
                    _, err = proc.communicate(timeout=QUIT_GRACE)
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    _, err = proc.communicate()
        finally:
            with self.lock:
                self.live.discard(proc)
        res.seconds = time.monotonic() - t0
        res.returncode = proc.returncode
        res.stderr = err.decode("utf-8", "replace")
        info: dict[str, Any] | None = None
        try:
            with open(rfile, encoding="utf-8") as f:
                info = json.load(f)
        except (OSError, ValueError):
            info = None
        if hung:
            res.outcome, res.kind = "hung", "timeout"
            k = res.stderr.find("SIGQUIT: quit")
            if k < 0:
                k = res.stderr.find("goroutine dump")
            res.dump = res.stderr[k:].strip() if k >= 0 else ""
            return res
        if info is not None and info.get("outcome") == "usage":
            raise StressUsageError(str(info.get("message", "cannot run the script")))
        if info is not None and info.get("outcome") == "error":
            res.outcome = "failed"
            res.kind = str(info.get("type", "Exception"))
            res.message = str(info.get("message", ""))
            res.traceback = str(info.get("traceback", ""))
        elif info is not None and info.get("outcome") == "status":
            res.outcome, res.kind = "failed", f"exit status {info.get('status')}"
        elif proc.returncode != 0:
            res.outcome = "failed"
            rc = proc.returncode
            if rc < 0:
                try:
                    res.kind = f"killed by {signal.Signals(-rc).name}"
                except ValueError:
                    res.kind = f"killed by signal {-rc}"
            else:
                res.kind = f"exit status {rc}"
            lines = res.stderr.strip().splitlines()
            res.message = lines[-1] if lines else ""
        return res

    def _progress(self, final: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        n = len(self.results)
        if not self._tty:
            if final and n == self._last_n:
                return  # the last line already said it
            if not final and now - self._last_progress < 2.0:
                return
        self._last_progress = now
        self._last_n = n
        total = len(self.seeds) * len(self.procs)
        failed = sum(r.outcome == "failed" for r in self.results)
        hung = sum(r.outcome == "hung" for r in self.results)
        line = f"stress {self.script}: {n}/{total} runs, {failed} failed, {hung} hung, {now - self._started:.1f}s"
        if self._tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def run(self) -> list[RunResult]:
        """run runs every (seed, procs) pair and returns the results sorted by seed, then procs."""
        self._started = time.monotonic()
        pairs = [(s, p) for s in self.seeds for p in self.procs]
        with tempfile.TemporaryDirectory(prefix="mn-stress-") as tmp:
            pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="mn-stress")
            try:
                futs = [pool.submit(self.run_one, s, p, tmp) for s, p in pairs]
                for fut in as_completed(futs):
                    try:
                        r = fut.result()
                    except StressUsageError as e:
                        self.usage = str(e)
                        self._stop()
                        break
                    with self.lock:
                        self.results.append(r)
                    self._progress()
            except BaseException:
                self._stop()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        self.elapsed = time.monotonic() - self._started
        if self.usage is None:
            self._progress(final=True)
        self.results.sort(key=lambda r: (r.seed, r.procs))
        return self.results

    def _stop(self) -> None:
        """_stop ends the sweep early: no new runs, and the live ones are killed."""
        with self.lock:
            self.stopping = True
            live = list(self.live)
        for proc in live:
            _kill_group(proc)

    def replay_with_traces(self, failures: Sequence[RunResult], trace_dir: str) -> None:
        """replay_with_traces runs each failure again with a trace recorded, and notes whether the
        replay failed the same way."""
        stem = os.path.splitext(os.path.basename(self.script))[0]
        os.makedirs(trace_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="mn-stress-") as tmp:
            for r in failures:
                path = os.path.join(trace_dir, f"{stem}-seed{r.seed}-procs{r.procs}.trace.json")
                again = self.run_one(r.seed, r.procs, tmp, trace=path)
                r.replay = self.replay_command(r.seed, r.procs, path)
                if again.outcome == "ok":
                    r.replayed = "passed"
                elif again.outcome == "hung":
                    r.replayed = "hung"
                else:
                    r.replayed = f"failed: {again.kind}"
                r.trace = path if os.path.exists(path) else ""


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """_kill_group kills a run and whatever it started: each run leads its own session (and so
    its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:  # already gone
        try:
            proc.kill()
        except OSError:
            pass


def _tail(text: str, n: int) -> str:
    lines = text.rstrip().splitlines()
    if len(lines) > n:
        lines = ["...", *lines[-n:]]
    return "\n".join(lines)


def format_report(sw: Sweep) -> str:
    """format_report: the table at the end of a sweep."""
    rs = sw.results
    failed = [r for r in rs if r.outcome == "failed"]
    hung = [r for r in rs if r.outcome == "hung"]
    seeds = sw.seeds
    span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    mode = "chaos" if sw.chaos else "plain runs (--no-chaos: not replayable)"
    procs = ",".join(map(str, sw.procs))
    several = len(sw.procs) > 1
    out = [
        "",
        f"stress {shlex.join([sw.script, *sw.args])}: {len(rs)} runs ({span} x procs {procs}), {mode},"
        f" {sw.jobs} at a time, {sw.elapsed:.1f}s",
        "",
        f"  {'outcome':<32} {'runs':>5}   {'seeds (procs)' if several else 'seeds'}",
        f"  {'passed':<32} {sum(r.outcome == 'ok' for r in rs):>5}",
    ]
    by_kind = Counter(r.kind for r in failed)
    for kind, n in by_kind.most_common():
        which = [r for r in failed if r.kind == kind]
        out.append(f"  {'failed: ' + kind:<32} {n:>5}   {_seed_list(which, procs=several)}")
    if hung:
        out.append(f"  {f'hung (over {sw.timeout:g}s)':<32} {len(hung):>5}   {_seed_list(hung, procs=several)}")
    if failed:
        out += ["", "failures, each with the command that replays it:"]
        for r in failed[:LIST_MOST]:
            msg = f": {r.message}" if r.message else ""
            out.append(f"  seed {r.seed} procs={r.procs}: {r.kind}{msg}")
            out.append(f"    {r.replay}")
            if r.replayed:
                out.append(f"    replayed with a trace: {r.replayed}" + (f"; trace in {r.trace}" if r.trace else ""))
        rest = failed[LIST_MOST:]
        if rest:
            out.append(f"  and {len(rest)} more, replayed by the same command with their seed and procs:")
            out.append(f"    {_seed_list(rest, len(rest), procs=several)}")
        if any(r.procs > 1 for r in failed) and sw.chaos:
            out.append("  (with procs > 1 the OS's thread scheduling also decides: a replay may need several tries)")
        for kind in by_kind:
            first = next(r for r in failed if r.kind == kind)
            tb = first.traceback or first.stderr
            if tb.strip():
                out += ["", f"first {kind} (seed {first.seed} procs={first.procs}):", _tail(tb, TAIL_LINES)]
    if hung:
        out += ["", f"hung runs (over {sw.timeout:g}s), each with the command that replays it:"]
        for r in hung:
            out.append(f"  seed {r.seed} procs={r.procs}")
            out.append(f"    {r.replay}")
        first = hung[0]
        out += ["", f"goroutine dump of the first hung run (seed {first.seed} procs={first.procs}):"]
        out.append(first.dump or "  (none: the run did not print one before it was killed)")
    if any(r.trace for r in failed):
        t = next(r.trace for r in failed if r.trace)
        prog = shlex.join(_display_prog(sw.prog))
        out += [
            "",
            f"open a trace in https://ui.perfetto.dev, or: {prog} trace plot {shlex.quote(t)} -o timeline.png",
        ]
    out.append("")
    if failed or hung:
        out.append(f"FAILED: {len(failed)} failed, {len(hung)} hung, of {len(rs)} runs")
    else:
        out.append(f"ok: {len(rs)} runs passed")
    return "\n".join(out)


def _seed_list(rs: Sequence[RunResult], most: int = 12, procs: bool = True) -> str:
    items = [f"{r.seed}({r.procs})" if procs else str(r.seed) for r in rs[:most]]
    if len(rs) > most:
        items.append(f"... {len(rs) - most} more")
    return " ".join(items)


def cmd_stress(ns: argparse.Namespace, prog: str) -> int:
    """cmd_stress runs `stress` from the parsed command line; returns the exit status."""
    script = ns.script
    if not os.path.exists(script):
        raise StressUsageError(f"{script}: no such file")
    if os.path.isdir(script):
        raise StressUsageError(f"{script}: is a directory, not a Python script")
    seeds = list(range(ns.seed_start, ns.seed_start + ns.seeds))
    sw = Sweep(script, ns.args, seeds, ns.procs, ns.chaos, ns.timeout, ns.jobs, prog)
    try:
        sw.run()
    except KeyboardInterrupt:
        print(f"\n{prog} stress: interrupted after {len(sw.results)} runs", file=sys.stderr)
        return 130
    if sw.usage is not None:
        raise StressUsageError(sw.usage)
    failed = [r for r in sw.results if r.outcome == "failed"]
    if ns.trace and failed:
        # One replay per kind of failure: the first run that failed that way.
        firsts = list({r.kind: r for r in reversed(failed)}.values())[::-1]
        if not sw.quiet:
            print(f"replaying {len(firsts)} failed run(s) with a trace ...", file=sys.stderr)
        sw.replay_with_traces(firsts, ns.trace_dir)
    print(format_report(sw), flush=True)
    if ns.json:
        with open(ns.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "script": script,
                    "args": sw.args,
                    "chaos": sw.chaos,
                    "procs": sw.procs,
                    "seeds": sw.seeds,
                    "runs": [asdict(r) for r in sw.results],
                },
                f,
                indent=1,
            )
    return 1 if any(r.outcome != "ok" for r in sw.results) else 0
