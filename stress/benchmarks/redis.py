"""redis-benchmark against the mn_runtime RESP server and its asyncio (and uvloop) twin, in one run.

    python -m stress.benchmarks.redis [--requests 100000] [--clients 50] [--pipeline 16] [--repeat 3]

Each server is started as a subprocess on a free loopback port; redis-benchmark (Debian package
redis-tools) runs SET and GET against each in turn, --repeat rounds; the median ops/s of each is
reported with the ratio to the asyncio server.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import select
import shutil
import statistics
import subprocess
import sys

SERVERS = {
    "mn procs=1": ["stress.servers.resp", "--procs", "1"],
    "mn procs=2": ["stress.servers.resp", "--procs", "2"],
    "asyncio": ["stress.servers.asyncio_resp"],
    "uvloop": ["stress.servers.asyncio_resp", "--uvloop"],
}


def start(args: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    p = subprocess.Popen([sys.executable, "-m", *args, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE)
    assert p.stdout is not None
    r, _, _ = select.select([p.stdout], [], [], 20)
    m = re.match(rb"listening on [^:]+:(\d+)", p.stdout.readline() if r else b"")
    if not m:
        p.kill()
        raise SystemExit(f"server {args} did not start")
    return p, int(m.group(1))


def bench(exe: str, port: int, a: argparse.Namespace) -> dict[str, float]:
    cmd = [exe, "-h", "127.0.0.1", "-p", str(port), "-c", str(a.clients), "-n", str(a.requests)]
    cmd += ["-P", str(a.pipeline), "-t", "set,get", "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if out.returncode != 0 or "error" in out.stderr.lower():
        raise SystemExit(f"redis-benchmark failed: {out.stderr[-500:]}")
    res = {}
    for row in csv.reader(io.StringIO(out.stdout)):
        if row and row[0] in ("SET", "GET"):
            res[row[0]] = float(row[1])
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--pipeline", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--servers", default=",".join(SERVERS))
    a = ap.parse_args()
    exe = shutil.which("redis-benchmark")
    if exe is None:
        raise SystemExit("redis-benchmark not found (Debian package redis-tools)")
    # Every server runs for the whole measurement and they take turns, --repeat rounds: a noisy
    # stretch of a shared host then hits all of them alike.
    names = a.servers.split(",")
    procs: list[subprocess.Popen[bytes]] = []
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    try:
        ports = {}
        for name in names:
            p, ports[name] = start(SERVERS[name])
            procs.append(p)
        for _ in range(a.repeat):
            for name in names:
                runs[name].append(bench(exe, ports[name], a))
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    results = {name: {op: statistics.median(r[op] for r in rs) for op in ("SET", "GET")} for name, rs in runs.items()}
    print(f"redis-benchmark -c {a.clients} -n {a.requests} -P {a.pipeline}, median of {a.repeat}")
    print(f"{'server':<14}{'SET ops/s':>12}{'GET ops/s':>12}{'SET vs asyncio':>16}{'GET vs asyncio':>16}")
    base = results.get("asyncio")
    for name, r in results.items():
        rs = f"{r['SET'] / base['SET']:.2f}x" if base else "-"
        rg = f"{r['GET'] / base['GET']:.2f}x" if base else "-"
        print(f"{name:<14}{r['SET']:>12.0f}{r['GET']:>12.0f}{rs:>16}{rg:>16}")


if __name__ == "__main__":
    main()
