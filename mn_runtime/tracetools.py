"""tracetools: reading execution traces written by mn_runtime.trace: a summary and a timeline picture.

    python -m mn_runtime trace summary out.json
    python -m mn_runtime trace plot out.json -o timeline.png      # needs mn_runtime[plot]

Both read only the trace file, so they work on traces from other machines. The numbers come from
the G slices on the M tracks (one per stretch of a G running on an M) and the instant events.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TraceError", "TraceSummary", "format_summary", "load_trace", "plot_timeline", "summarize"]

PID_M, PID_P, PID_RT = 1, 2, 3


class TraceError(ValueError):
    """The file is not a readable mn_runtime trace (missing, truncated, not JSON, wrong shape)."""


def load_trace(path: str | os.PathLike[str]) -> dict[str, Any]:
    """load_trace reads and checks a trace file; raises TraceError with a one-line reason."""
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise TraceError(f"{p}: no such trace file") from None
    except IsADirectoryError:
        raise TraceError(f"{p}: is a directory, not a trace file") from None
    except OSError as e:
        raise TraceError(f"{p}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TraceError(f"{p}: not a trace file (not UTF-8 text)") from None
    except json.JSONDecodeError as e:
        raise TraceError(f"{p}: not a complete JSON trace (truncated?): {e.msg} at line {e.lineno}") from None
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        raise TraceError(f"{p}: JSON but not a trace-event file (no traceEvents list)")
    if not isinstance(data.get("otherData"), dict) or "procs" not in data["otherData"]:
        raise TraceError(f"{p}: a trace-event file, but not one written by mn_runtime (no otherData.procs)")
    return data


@dataclass
class MTrack:
    """MTrack: what one M did during the trace."""

    id: int
    busy_us: float = 0.0
    syscall_us: float = 0.0
    gs_run: int = 0
    slices: int = 0
    steals: int = 0


@dataclass
class TraceSummary:
    procs: int
    duration_us: float
    ms: dict[int, MTrack] = field(default_factory=dict)
    gs_run: int = 0
    goroutines: int = 0
    steals: int = 0
    handoffs: int = 0
    netpoll_injects: int = 0
    netpoll_injected: int = 0
    preempt_requests: int = 0
    parks: dict[str, int] = field(default_factory=dict)
    latencies_us: list[float] = field(default_factory=list)
    g_time_us: dict[tuple[int, str], float] = field(default_factory=dict)

    def latency_percentile(self, q: float) -> float:
        """latency_percentile: nearest-rank q-quantile (0 < q <= 1) of scheduling latency, µs."""
        lat = self.latencies_us
        if not lat:
            return 0.0
        return lat[max(0, math.ceil(q * len(lat)) - 1)]

    def longest(self, n: int = 10) -> list[tuple[int, str, float]]:
        """longest: the n Gs with the most running time, as (id, function, µs)."""
        top = sorted(self.g_time_us.items(), key=lambda kv: -kv[1])[:n]
        return [(gid, name, us) for (gid, name), us in top]


def summarize(data: dict[str, Any]) -> TraceSummary:
    """summarize computes per-M utilization, Gs run, steals, handoffs, latency and the longest Gs.

    gs_run counts G slices that began with a schedule (not the continuation of a G after a
    syscall), which is what stats()["gs_run"] counts.
    """
    other = data["otherData"]
    s = TraceSummary(procs=int(other["procs"]), duration_us=float(other.get("duration_us", 0.0)))
    gids: set[int] = set()
    for ev in data["traceEvents"]:
        if not isinstance(ev, dict) or ev.get("pid") != PID_M:
            if isinstance(ev, dict) and ev.get("ph") == "X" and ev.get("cat") == "netpoll":
                s.netpoll_injects += 1
                s.netpoll_injected += int(ev.get("args", {}).get("n", 0))
            elif isinstance(ev, dict) and ev.get("ph") == "i" and ev.get("pid") == PID_RT:
                cat = ev.get("cat")
                if cat == "handoff":
                    s.handoffs += 1
                elif cat == "preempt":
                    s.preempt_requests += 1
            continue
        ph = ev.get("ph")
        if ph not in ("X", "i"):
            continue
        tid = int(ev["tid"])
        mt = s.ms.get(tid)
        if mt is None:
            mt = s.ms[tid] = MTrack(tid)
        cat = ev.get("cat")
        args = ev.get("args", {})
        if ph == "X" and cat == "g":
            dur = float(ev.get("dur", 0.0))
            mt.busy_us += dur
            mt.slices += 1
            gid = int(args.get("g", -1))
            gids.add(gid)
            name = str(ev.get("name", "")).partition(" ")[2]
            key = (gid, name)
            s.g_time_us[key] = s.g_time_us.get(key, 0.0) + dur
            if "resumed" not in args and "before_trace" not in args:
                mt.gs_run += 1
                s.gs_run += 1
            if "latency_us" in args:
                s.latencies_us.append(float(args["latency_us"]))
        elif ph == "X" and cat == "syscall":
            mt.syscall_us += float(ev.get("dur", 0.0))
        elif ph == "i" and cat == "steal":
            mt.steals += 1
            s.steals += 1
        elif ph == "i" and cat == "park":
            reason = str(ev.get("name", "park: ?")).partition(": ")[2]
            s.parks[reason] = s.parks.get(reason, 0) + 1
    s.goroutines = len(gids)
    s.latencies_us.sort()
    return s


def format_summary(s: TraceSummary, top: int = 10) -> str:
    """format_summary renders a TraceSummary as the text `trace summary` prints."""
    dur = s.duration_us or 1.0
    out = [
        f"trace: {s.duration_us / 1e3:.1f} ms, {s.procs} Ps, {len(s.ms)} Ms, {s.goroutines} goroutines,"
        f" {s.gs_run} Gs run",
        f"steals {s.steals}  handoffs {s.handoffs}  preempt requests {s.preempt_requests}"
        f"  netpoll injects {s.netpoll_injects} ({s.netpoll_injected} Gs)",
        "",
        f"{'M':>4} {'util %':>7} {'busy ms':>9} {'syscall ms':>11} {'Gs run':>7} {'slices':>7} {'steals':>7}",
    ]
    for mid in sorted(s.ms):
        m = s.ms[mid]
        out.append(
            f"{'M' + str(mid):>4} {100 * m.busy_us / dur:7.1f} {m.busy_us / 1e3:9.2f} {m.syscall_us / 1e3:11.2f}"
            f" {m.gs_run:7d} {m.slices:7d} {m.steals:7d}"
        )
    lat = s.latencies_us
    out.append("")
    if lat:
        out.append(
            f"scheduling latency (runnable -> running), {len(lat)} samples: p50 {s.latency_percentile(0.5):.1f} us"
            f"  p90 {s.latency_percentile(0.9):.1f} us  p99 {s.latency_percentile(0.99):.1f} us  max {lat[-1]:.1f} us"
        )
    else:
        out.append("scheduling latency: no samples")
    if s.parks:
        out.append("parks: " + ", ".join(f"{r} {n}" for r, n in sorted(s.parks.items(), key=lambda kv: -kv[1])))
    out.append("")
    out.append(f"longest-running goroutines (top {top}):")
    for gid, name, us in s.longest(top):
        out.append(f"  G{gid:<6} {us / 1e3:9.2f} ms  {name}")
    return "\n".join(out)


def plot_timeline(data: dict[str, Any], out: str | os.PathLike[str], title: str | None = None) -> None:
    """plot_timeline draws Ms as rows and G slices as coloured spans (PNG, SVG, PDF by suffix),
    with steals (triangles), netpoll injections (dots, top row) and syscalls (grey) marked.

    Raises ImportError when matplotlib is missing (install mn_runtime[plot]).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    evs = data["traceEvents"]
    mids = sorted({int(e["tid"]) for e in evs if e.get("pid") == PID_M and e.get("ph") == "X"})
    row = {mid: i for i, mid in enumerate(mids)}
    npoll_row = len(mids)
    spans: dict[int, list[tuple[float, float]]] = {}
    colors: dict[int, list[Any]] = {}
    sys_spans: dict[int, list[tuple[float, float]]] = {}
    steals: list[tuple[float, int]] = []
    wakes: list[float] = []
    handoffs: list[float] = []
    cmap = plt.get_cmap("tab20")
    for e in evs:
        ph, pid, cat = e.get("ph"), e.get("pid"), e.get("cat")
        ts = float(e.get("ts", 0.0)) / 1e3
        if pid == PID_M and ph == "X" and cat == "g":
            tid = int(e["tid"])
            spans.setdefault(tid, []).append((ts, float(e.get("dur", 0.0)) / 1e3))
            colors.setdefault(tid, []).append(cmap(int(e.get("args", {}).get("g", 0)) % 20))
        elif pid == PID_M and ph == "X" and cat == "syscall":
            sys_spans.setdefault(int(e["tid"]), []).append((ts, float(e.get("dur", 0.0)) / 1e3))
        elif pid == PID_M and ph == "i" and cat == "steal":
            steals.append((ts, row.get(int(e["tid"]), 0)))
        elif pid == PID_RT and ph == "X" and cat == "netpoll":
            wakes.append(ts)
        elif pid == PID_RT and ph == "i" and cat == "handoff":
            handoffs.append(ts)
    height = max(2.5, 0.55 * (len(mids) + 1) + 1.5)
    fig, ax = plt.subplots(figsize=(14, height), dpi=110)
    for tid, sl in spans.items():
        ax.broken_barh(sl, (row[tid] - 0.4, 0.8), facecolors=colors[tid], edgecolor="none")
    for tid, sl in sys_spans.items():
        ax.broken_barh(sl, (row[tid] - 0.4, 0.8), facecolors="#bbbbbb", edgecolor="#666666", hatch="//")
    if steals:
        ax.scatter([t for t, _ in steals], [r - 0.5 for _, r in steals], marker="v", color="crimson", s=28, zorder=3)
    if wakes:
        ax.scatter(wakes, [npoll_row] * len(wakes), marker="o", color="navy", s=14, zorder=3)
    for t in handoffs:
        ax.axvline(t, color="darkorange", lw=0.8, ls="--", zorder=2)
    ax.set_yticks([*range(len(mids)), npoll_row])
    ax.set_yticklabels([f"M{m}" for m in mids] + ["netpoll"])
    ax.set_ylim(-0.7, npoll_row + 0.7)
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    ax.grid(axis="x", alpha=0.3)
    procs = data["otherData"].get("procs", "?")
    ax.set_title(title or f"mn_runtime timeline: {len(mids)} Ms, {procs} Ps (colour = goroutine)")
    ax.legend(
        handles=[
            Patch(facecolor=cmap(3), label="G running (colour per G)"),
            Patch(facecolor="#bbbbbb", hatch="//", edgecolor="#666666", label="blocking syscall"),
            Line2D([], [], marker="v", color="crimson", ls="none", label="steal"),
            Line2D([], [], marker="o", color="navy", ls="none", label="netpoll wake-up (batch injected)"),
            Line2D([], [], color="darkorange", ls="--", label="P handoff"),
        ],
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18 if len(mids) < 4 else -0.1),
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(os.fspath(out))
    plt.close(fig)
