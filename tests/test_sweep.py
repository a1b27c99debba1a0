"""`python -m mn_runtime stress`: the chaos seed sweep of a user's program finds a check-then-act
race, passes the fixed program on every seed, reports hangs with their goroutine dump, and the
replay command it prints reproduces the failure (with a trace under --trace)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mn_runtime import tracetools

ROOT = Path(__file__).resolve().parent.parent
RACY = ROOT / "tests" / "progs" / "racy_counter.py"


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for k in ("MN_DEBUG", "MN_TRACE", "MN_CHAOS", "MN_PROCS"):
        env.pop(k, None)
    return env


def stress(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mn_runtime", "stress", *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=timeout,
    )


def _runs(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["runs"]  # type: ignore[no-any-return]


def _argv(command: str) -> list[str]:
    """_argv turns a printed replay command into argv for this interpreter."""
    argv = shlex.split(command)
    assert argv[1:3] == ["-m", "mn_runtime"], command
    assert argv[0] in ("python", "python3") or os.path.realpath(argv[0]) == os.path.realpath(sys.executable)
    return [sys.executable, *argv[1:]]


def test_sweep_finds_the_race_and_the_replay_reproduces_it(tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    r = stress("--seeds", "8", "--jobs", "2", "--json", str(out), str(RACY))
    assert r.returncode == 1, r.stdout + r.stderr
    runs = _runs(out)
    assert [x["seed"] for x in runs] == list(range(8)) and all(x["procs"] == 1 for x in runs)
    failed = [x for x in runs if x["outcome"] == "failed"]
    assert failed, r.stdout
    assert all(x["kind"] == "AssertionError" and "overbooked" in x["message"] for x in failed)
    assert "failed: AssertionError" in r.stdout and "FAILED:" in r.stdout
    assert f"stress {RACY}: 8/8 runs" in r.stderr  # the progress line
    first = failed[0]
    assert first["replay"] in r.stdout  # each failure's command is in the table
    assert "overbooked" in r.stdout and "racy_counter.py" in r.stdout  # its traceback
    # At procs=1 the seed fixes the interleaving: the replay fails the same way every time.
    for _ in range(2):
        again = subprocess.run(_argv(first["replay"]), capture_output=True, text=True, env=_env(), timeout=60)
        assert again.returncode == 1, again.stderr
        assert "AssertionError: overbooked" in again.stderr
    # and a passing seed passes again
    ok = [x for x in runs if x["outcome"] == "ok"]
    if ok:
        again = subprocess.run(_argv(ok[0]["replay"]), capture_output=True, text=True, env=_env(), timeout=60)
        assert again.returncode == 0, again.stderr


def test_fixed_program_passes_every_seed_at_several_procs(tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    # --fixed follows the script's name, so the script gets it (it holds a Mutex across check and act).
    r = stress("--seeds", "4", "--procs", "1,2", "--jobs", "2", "--json", str(out), str(RACY), "--fixed")
    assert r.returncode == 0, r.stdout + r.stderr
    runs = _runs(out)
    assert len(runs) == 8 and {(x["seed"], x["procs"]) for x in runs} == {(s, p) for s in range(4) for p in (1, 2)}
    assert all(x["outcome"] == "ok" for x in runs)
    assert "ok: 8 runs passed" in r.stdout


def test_hang_is_reported_with_its_goroutine_dump(tmp_path: Path) -> None:
    prog = tmp_path / "stuck.py"
    prog.write_text(
        "import mn_runtime as mn\n"
        "async def waiter(ch):\n    await ch.recv()\n"
        "async def main():\n    ch = mn.Chan()\n    mn.go(waiter, ch)\n    await mn.sleep(3600)\n"
    )
    r = stress("--seeds", "1", "--timeout", "8", str(prog))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "hung (over 8s)" in r.stdout
    assert "goroutine dump of the first hung run (seed 0 procs=1):" in r.stdout
    dump = r.stdout.split("goroutine dump of the first hung run", 1)[1]
    assert "SIGQUIT: quit" in dump and "[sleep" in dump and "[chan receive" in dump and "stuck.py:3" in dump
    assert "run --procs 1 --chaos 0" in r.stdout


def test_trace_replays_the_failing_seed(tmp_path: Path) -> None:
    out = tmp_path / "runs.json"
    traces = tmp_path / "traces"
    r = stress("--seeds", "6", "--jobs", "2", "--trace", "--trace-dir", str(traces), "--json", str(out), str(RACY))
    assert r.returncode == 1, r.stdout + r.stderr
    failed = [x for x in _runs(out) if x["outcome"] == "failed"]
    assert failed
    # The first failure of each kind (here one kind) is replayed with a trace; the rest are not.
    x = failed[0]
    assert x["replayed"] == "failed: AssertionError"  # the replay failed the same way
    assert x["trace"] == str(traces / f"racy_counter-seed{x['seed']}-procs1.trace.json")
    assert f"--trace {x['trace']}" in x["replay"] and x["replay"] in r.stdout
    s = tracetools.summarize(tracetools.load_trace(x["trace"]))
    assert s.goroutines == 7  # main and six bookers
    assert all(y["trace"] == "" and y["replayed"] == "" for y in failed[1:])
    assert sorted(os.listdir(traces)) == [os.path.basename(x["trace"])]
    assert "open a trace in https://ui.perfetto.dev" in r.stdout


def test_outcomes_exit_status_crash_and_usage(tmp_path: Path) -> None:
    status = tmp_path / "status.py"
    status.write_text("async def main():\n    return 3\n")
    crash = tmp_path / "crash.py"
    crash.write_text("import os\nasync def main():\n    os._exit(7)\n")
    out = tmp_path / "runs.json"
    r = stress("--seeds", "2", "--json", str(out), str(status))
    assert r.returncode == 1 and "failed: exit status 3" in r.stdout, r.stdout
    assert [x["kind"] for x in _runs(out)] == ["exit status 3"] * 2
    r = stress("--seeds", "1", "--json", str(out), str(crash))
    assert r.returncode == 1 and [x["kind"] for x in _runs(out)] == ["exit status 7"], r.stdout
    # A script that cannot run at all is one usage error, not a failure per seed.
    nomain = tmp_path / "nomain.py"
    nomain.write_text("x = 1\n")
    r = stress("--seeds", "3", str(nomain))
    assert r.returncode == 2 and "defines no main()" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = stress(str(tmp_path / "missing.py"))
    assert r.returncode == 2 and "missing.py: no such file" in r.stderr
    r = stress("--procs", "1,0", str(status))
    assert r.returncode == 2 and "each procs value must be at least 1" in r.stderr


def test_works_from_any_directory_with_options_after_the_script(tmp_path: Path) -> None:
    """`stress SCRIPT [args] --seeds N --procs P`: the sweep's own options may follow the script;
    the script keeps its other arguments (--fixed)."""
    shutil.copy(RACY, tmp_path / "prog.py")
    env = _env()
    env.pop("PYTHONPATH")  # the installed package, as a user has it; no checkout on the path
    r = subprocess.run(
        [sys.executable, "-m", "mn_runtime", "stress", "prog.py", "--fixed", "--seeds", "2", "--procs", "1,2"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok: 4 runs passed" in r.stdout


def test_hoist_options_keeps_script_words_and_double_dash() -> None:
    from mn_runtime.sweep import hoist_options

    assert hoist_options(["p.py", "a", "--seeds", "3", "--procs=1,2", "--chaos", "b"]) == [
        "--seeds",
        "3",
        "--procs=1,2",
        "--chaos",
        "p.py",
        "a",
        "b",
    ]
    assert hoist_options(["--jobs", "2", "p.py", "--", "--seeds", "3"]) == ["--jobs", "2", "p.py", "--seeds", "3"]
    assert hoist_options(["--seeds", "3", "p.py", "x"]) == ["--seeds", "3", "p.py", "x"]


def test_ctrl_c_ends_the_sweep_and_its_runs(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    prog = tmp_path / "slow.py"
    prog.write_text(
        "import os, sys\nimport mn_runtime as mn\n"
        "async def main():\n"
        "    open(os.path.join(sys.argv[1], str(os.getpid())), 'w').close()\n"
        "    await mn.sleep(3600)\n"
    )
    p = subprocess.Popen(
        [sys.executable, "-m", "mn_runtime", "stress", "--seeds", "4", "--jobs", "2", str(prog), str(pids)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not os.listdir(pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert os.listdir(pids), "no run started"
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=30)
        assert time.monotonic() - t0 < 20
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 130, err
    assert "stress: interrupted after" in err
    for name in os.listdir(pids):
        try:
            os.kill(int(name), 0)
        except ProcessLookupError:
            continue
        raise AssertionError(f"run {name} still alive after the sweep ended")
