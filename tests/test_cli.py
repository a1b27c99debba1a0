"""The command line: run, trace summary/plot, one-line errors with exit status 2, --version, the
program's name as invoked, options after the script belong to the script, SIGQUIT's goroutine dump."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mn_runtime import tracetools

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MN_DEBUG", None)
    env.pop("MN_TRACE", None)
    return subprocess.run(
        [sys.executable, "-m", "mn_runtime", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60
    )


def _usage_error(r: subprocess.CompletedProcess[str], text: str) -> None:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], r.stderr


SCRIPT = """
import json, sys
import mn_runtime as mn

async def work(i):
    for _ in range(3):
        await mn.gosched()
    return i

async def main():
    gs = [mn.go(work, i) for i in range(int(sys.argv[1]))]
    total = sum([await g.join() for g in gs])
    st = mn.stats()
    with open(sys.argv[2], "w") as f:
        json.dump({"total": total, "gs_run": st["gs_run"], "steals": st["steals"], "handoffs": st["handoffs"]}, f)
"""


def test_run_trace_and_summary_agree_with_stats(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    trace = tmp_path / "t.json"
    out = tmp_path / "stats.json"
    r = cli("run", "--procs", "2", "--trace", str(trace), str(script), "10", str(out))
    assert r.returncode == 0, r.stderr
    st = json.loads(out.read_text())
    assert st["total"] == 45
    s = tracetools.summarize(tracetools.load_trace(trace))
    assert s.gs_run == st["gs_run"]
    assert s.handoffs == st["handoffs"]
    assert s.steals >= st["steals"]  # the trace also sees runnext steals, which p.nsteal does not count
    assert sum(m.gs_run for m in s.ms.values()) == s.gs_run
    assert s.goroutines == 11
    r = cli("trace", "summary", str(trace))
    assert r.returncode == 0, r.stderr
    assert f"{st['gs_run']} Gs run" in r.stdout
    assert "scheduling latency (runnable -> running)" in r.stdout and "p99" in r.stdout
    assert "longest-running goroutines" in r.stdout and "work" in r.stdout


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    script = tmp_path / "prog.py"
    script.write_text(SCRIPT)
    trace = tmp_path / "t.json"
    assert cli("run", "--trace", str(trace), str(script), "4", str(tmp_path / "s.json")).returncode == 0
    png = tmp_path / "timeline.png"
    r = cli("trace", "plot", str(trace), "-o", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    _usage_error(cli("trace", "plot", str(trace), "-o", str(tmp_path / "x.gif")), "must end in .png, .svg or .pdf")


def test_run_schedtrace_option(tmp_path: Path) -> None:
    script = tmp_path / "sleepy.py"
    script.write_text("import mn_runtime as mn\nasync def main():\n    await mn.sleep(0.1)\n")
    r = cli("run", "--schedtrace", "20", "--procs", "3", str(script))
    assert r.returncode == 0, r.stderr
    assert any(ln.startswith("SCHED ") and "gomaxprocs=3" in ln for ln in r.stderr.splitlines())


def test_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    _usage_error(cli("run", str(tmp_path / "missing.py")), "missing.py: no such file")
    nomain = tmp_path / "nomain.py"
    nomain.write_text("x = 1\n")
    _usage_error(cli("run", str(nomain)), "defines no main()")
    sync = tmp_path / "sync.py"
    sync.write_text("def main():\n    pass\n")
    _usage_error(cli("run", str(sync)), "main is not an async function")
    bad = tmp_path / "bad.py"
    bad.write_text("async def main(:\n")
    _usage_error(cli("run", str(bad)), "syntax error")
    _usage_error(cli("trace", "summary", str(tmp_path / "none.json")), "no such trace file")
    trunc = tmp_path / "trunc.json"
    trunc.write_text('{"displayTimeUnit":"ms","traceEvents":[\n{"ph":"X","pid":1')
    _usage_error(cli("trace", "summary", str(trunc)), "truncated")
    _usage_error(cli("trace", "plot", str(trunc), "-o", str(tmp_path / "p.png")), "truncated")
    other = tmp_path / "other.json"
    other.write_text('{"traceEvents": []}')
    _usage_error(cli("trace", "summary", str(other)), "not one written by mn_runtime")
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    _usage_error(cli("trace", "summary", str(binary)), "not a trace file")
    ok = tmp_path / "ok.py"
    ok.write_text("async def main():\n    pass\n")
    _usage_error(cli("run", "--trace", str(tmp_path / "no" / "dir" / "t.json"), str(ok)), "No such file")


def test_script_exception_keeps_its_traceback(tmp_path: Path) -> None:
    script = tmp_path / "boom.py"
    script.write_text("async def main():\n    raise ValueError('boom in user code')\n")
    r = cli("run", str(script))
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "boom in user code" in r.stderr


def test_version() -> None:
    import mn_runtime

    r = cli("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"mn_runtime {mn_runtime.__version__}"


def test_help_names_the_command_as_invoked(tmp_path: Path) -> None:
    r = cli("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: python -m mn_runtime "), r.stdout
    # The console script: its own name, whatever it is installed as (run as a file with that name).
    exe = tmp_path / "mn-runtime"
    exe.write_text(f"#!{sys.executable}\nimport sys\nfrom mn_runtime.__main__ import main\nsys.exit(main())\n")
    exe.chmod(0o755)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: mn-runtime run "), r.stdout
    assert "everything after SCRIPT goes to the script" in " ".join(r.stdout.split())


def test_options_after_the_script_belong_to_the_script(tmp_path: Path) -> None:
    script = tmp_path / "args.py"
    script.write_text(
        "import sys\nimport mn_runtime as mn\nasync def main():\n    print(mn.gomaxprocs(), sys.argv[1:])\n"
    )
    r = cli("run", "--procs", "2", str(script), "--procs", "3", "--trace", "x", "--", "-v")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "2 ['--procs', '3', '--trace', 'x', '--', '-v']"
    assert not (tmp_path / "x").exists()


def test_run_chaos_option_replays(tmp_path: Path) -> None:
    prog = ROOT / "tests" / "progs" / "racy_counter.py"
    outs = [cli("run", "--procs", "1", "--chaos", "3", str(prog)) for _ in range(2)]
    for r in outs:
        assert r.returncode == 1 and "AssertionError: overbooked" in r.stderr, r.stderr
    r = cli("run", "--chaos", "-1", str(prog))
    assert r.returncode == 2 and "expected a non-negative integer seed, got -1" in r.stderr, r.stderr


def test_sigquit_prints_the_goroutine_dump_and_exits_2(tmp_path: Path) -> None:
    script = tmp_path / "stuck.py"
    script.write_text(
        "import mn_runtime as mn\n"
        "async def waiter(ch):\n    await ch.recv()\n"
        "async def main():\n    ch = mn.Chan()\n    mn.go(waiter, ch)\n    print('ready', flush=True)\n"
        "    await mn.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("MN_DEBUG", None)
    p = subprocess.Popen(
        [sys.executable, "-m", "mn_runtime", "run", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(0.3)  # let main reach its sleep and the waiter its receive
        p.send_signal(signal.SIGQUIT)
        _, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 2, err
    assert err.startswith("SIGQUIT: quit"), err
    # Both goroutines are listed; each is parked by now unless the machine is very slow.
    assert "goroutine 1 [" in err and "goroutine 2 [" in err and "waiter" in err, err
    assert "stuck.py" in err
