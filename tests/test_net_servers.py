"""The stress servers as subprocesses, driven by real clients (redis-benchmark, wrk) and by hostile
raw sockets. Clients are skipped, with the reason, when their binary is missing (.ci/run installs
redis-tools and wrk)."""

from __future__ import annotations

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start(module: str, *args: str, code: str | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """start runs `python -m module` (or `python -c code`, code running that module's main) with
    --listen 127.0.0.1:0 and args; returns the process and the port it printed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.Popen(
        [sys.executable, *(("-c", code) if code else ("-m", module)), "--listen", "127.0.0.1:0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert p.stdout is not None
    r, _, _ = select.select([p.stdout], [], [], 20)
    line = p.stdout.readline().decode() if r else ""
    m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        p.kill()
        _, err = p.communicate(timeout=5)
        raise AssertionError(f"{module} did not start: {line!r} {err.decode()[-2000:]}")
    return p, int(m.group(1))


def stop(p: subprocess.Popen[bytes]) -> None:
    p.terminate()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


@pytest.fixture
def resp() -> Iterator[int]:
    p, port = start("stress.servers.resp", "--procs", "2", "--idle-timeout", "0.5", "--max-bulk", "4096")
    try:
        yield port
    finally:
        stop(p)
    assert p.returncode in (0, -15), p.stderr.read().decode()[-2000:] if p.stderr else ""


@pytest.fixture
def http() -> Iterator[int]:
    p, port = start("stress.servers.http", "--procs", "2", "--idle-timeout", "0.5")
    try:
        yield port
    finally:
        stop(p)


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def recv_until(s: socket.socket, pred: object, limit: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + limit
    while not pred(buf):  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; got {buf[-300:]!r}")
        d = s.recv(65536)
        if not d:
            break
        buf += d
    return buf


def closed_by_peer(s: socket.socket) -> bool:
    s.settimeout(5)
    try:
        while s.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_resp_server_redis_benchmark(resp: int) -> None:
    exe = shutil.which("redis-benchmark")
    if exe is None:
        pytest.skip("redis-benchmark not installed (Debian package redis-tools; .ci/run installs it)")
    out = subprocess.run(
        [exe, "-h", "127.0.0.1", "-p", str(resp), "-c", "50", "-n", "20000", "-P", "16", "-t", "set,get", "--csv"],
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "error" not in (out.stdout + out.stderr).lower(), out.stdout + out.stderr
    rows = {line.split(",")[0].strip('"'): line for line in out.stdout.splitlines() if line.startswith('"')}
    assert {"SET", "GET"} <= rows.keys(), out.stdout
    s = connect(resp)
    s.sendall(b"*2\r\n$3\r\nGET\r\n$16\r\nkey:__rand_int__\r\n")
    got = recv_until(s, lambda b: len(b) >= 9)
    assert got.startswith(b"$3\r\n") and len(got) == 9, got  # the 3-byte value redis-benchmark SET
    s.close()


def test_resp_server_hostile_clients_do_not_hurt_others(resp: int) -> None:
    good = connect(resp)
    idle = connect(resp)
    big = connect(resp)
    big.sendall(b"*2\r\n$3\r\nGET\r\n$999999999\r\n")
    assert recv_until(big, lambda b: b.endswith(b"\r\n")).startswith(b"-ERR Protocol error: invalid bulk length")
    assert closed_by_peer(big)
    bad = connect(resp)
    bad.sendall(b"*x\r\n")
    assert recv_until(bad, lambda b: b.endswith(b"\r\n")).startswith(b"-ERR Protocol error")
    assert closed_by_peer(bad)
    longline = connect(resp)
    longline.sendall(b"*1" + b"1" * 70000)
    assert b"Protocol error" in recv_until(longline, lambda b: b.endswith(b"\r\n"))
    # Pipelined commands on the good client, meanwhile.
    good.sendall(b"DEL ctr\r\n" + b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n" * 100 + b"PING\r\n")
    got = recv_until(good, lambda b: b.endswith(b"+PONG\r\n"))
    assert got.endswith(b":99\r\n:100\r\n+PONG\r\n") and got.count(b"\r\n") == 102
    t0 = time.monotonic()
    assert closed_by_peer(idle)  # --idle-timeout 0.5
    assert time.monotonic() - t0 < 4
    fresh = connect(resp)  # the server still accepts and serves after all that
    fresh.sendall(b"PING\r\n")
    assert recv_until(fresh, lambda b: b.endswith(b"\r\n")) == b"+PONG\r\n"
    fresh.close()
    for s in (good, idle, big, bad, longline):
        s.close()


def test_asyncio_twin_speaks_the_same_protocol() -> None:
    p, port = start("stress.servers.asyncio_resp")
    try:
        s = connect(port)
        s.sendall(
            b"SET k v\r\nGET k\r\n*3\r\n$4\r\nMSET\r\n$1\r\na\r\n$1\r\nb\r\n*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nz\r\n"
        )
        assert recv_until(s, lambda b: b.endswith(b"$-1\r\n")) == b"+OK\r\n$1\r\nv\r\n+OK\r\n*2\r\n$1\r\nb\r\n$-1\r\n"
        s.close()
    finally:
        stop(p)


def test_http_server_wrk(http: int) -> None:
    exe = shutil.which("wrk")
    if exe is None:
        pytest.skip("wrk not installed (Debian package wrk; .ci/run installs it)")
    out = subprocess.run(
        [exe, "-t", "2", "-c", "20", "-d", "2s", f"http://127.0.0.1:{http}/"],
        capture_output=True,
        timeout=60,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Socket errors" not in out.stdout, out.stdout
    assert "Non-2xx" not in out.stdout, out.stdout
    m = re.search(r"(\d+) requests in", out.stdout)
    assert m and int(m.group(1)) > 100, out.stdout


def test_http_server_hostile_clients_do_not_hurt_others(http: int) -> None:
    good = connect(http)
    idle = connect(http)
    huge = connect(http)
    huge.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
    assert recv_until(huge, lambda b: b"\r\n\r\n" in b).startswith(b"HTTP/1.1 431 ")
    assert closed_by_peer(huge)
    garbage = connect(http)
    garbage.sendall(b"\x16\x03\x01 hello\r\n\r\n")
    assert recv_until(garbage, lambda b: b"\r\n\r\n" in b).startswith(b"HTTP/1.1 400 ")
    assert closed_by_peer(garbage)
    body = connect(http)
    body.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n")
    assert recv_until(body, lambda b: b"\r\n\r\n" in b).startswith(b"HTTP/1.1 413 ")
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    good.sendall(req * 3 + b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nping")
    got = recv_until(good, lambda b: b.endswith(b"ping"))
    assert got.count(b"HTTP/1.1 200 OK") == 4 and got.count(b"hello, world\n") == 3
    t0 = time.monotonic()
    assert closed_by_peer(idle)  # --idle-timeout 0.5
    assert time.monotonic() - t0 < 4
    fresh = connect(http)
    fresh.sendall(b"GET /bytes/5 HTTP/1.0\r\n\r\n")
    got = recv_until(fresh, lambda b: b.endswith(b"xxxxx"))
    assert got.startswith(b"HTTP/1.1 200 OK") and b"Connection: close" in got
    for s in (good, idle, huge, garbage, body, fresh):
        s.close()
