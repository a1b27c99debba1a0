"""The stress servers under hostile clients (docs/netpoller.md, "Servers under hostile clients"):
a client that pipelines large replies and never reads, one enormous command, slowloris trickles,
malformed lengths and framing. Each limit is checked by what the server does (its replies, when it
closes, its CPU time and its memory, measured with psutil on the server's process), on loopback,
with bounded counts and times. The RESP parser's strictness and linear time are checked in-process."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from stress.servers.http_parser import HttpError, RequestParser
from stress.servers.resp_parser import ProtocolError, RespParser, parse_int64, split_args
from tests.test_net_servers import closed_by_peer, connect, recv_until, start, stop

MiB = 1 << 20


def needs_h11() -> None:
    pytest.importorskip("h11", reason="h11 not installed (the optional extra 'servers': pip install -e '.[servers]')")


def server(module: str, procs: int, *args: str) -> Iterator[tuple[int, psutil.Process]]:
    p, port = start(module, "--procs", str(procs), *args)
    try:
        yield port, psutil.Process(p.pid)
    finally:
        stop(p)


LIMITS = ("--idle-timeout", "30", "--request-timeout", "1", "--write-timeout", "1")


@pytest.fixture(scope="module", params=[1, 4], ids=["procs1", "procs4"])
def resp(request: pytest.FixtureRequest) -> Iterator[tuple[int, psutil.Process]]:
    """The RESP server with one P and with more Ps than this machine's cores."""
    yield from server("stress.servers.resp", request.param, *LIMITS, "--max-command", str(48 * MiB))


@pytest.fixture(
    scope="module", params=[("builtin", 1), ("builtin", 4), ("h11", 2)], ids=lambda p: f"{p[0]}-procs{p[1]}"
)
def http(request: pytest.FixtureRequest) -> Iterator[tuple[int, psutil.Process]]:
    """The HTTP server with each of its parsers (stress/servers/http_parser.py, h11)."""
    parser, procs = request.param
    if parser == "h11":
        needs_h11()
    yield from server("stress.servers.http", procs, "--parser", parser, *LIMITS)


def serves(port: int, ping: bytes, pong: bytes) -> bool:
    """serves: a fresh client gets its answer at once (the server is not held up by the others)."""
    s = connect(port)
    try:
        s.sendall(ping)
        return pong in recv_until(s, lambda b: pong in b, limit=5)
    finally:
        s.close()


def server_has_conn(proc: psutil.Process, client: socket.socket) -> bool:
    """server_has_conn: the server process still holds the connection whose other end is client."""
    port = client.getsockname()[1]
    return any(c.raddr and c.raddr[1] == port for c in proc.net_connections(kind="tcp"))


def flood_without_reading(port: int, proc: psutil.Process, request: bytes, limit: float) -> tuple[int, float]:
    """flood_without_reading sends request (a pipeline of requests for large replies) and never
    reads; it samples the server's RSS until the server drops the connection. Returns the RSS
    growth (bytes, peak over the start) and the seconds until the drop."""
    base = proc.memory_info().rss
    s = connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    t0 = time.monotonic()
    s.sendall(request)
    peak = base
    seen = False  # the server has accepted it (it may not have yet when the send returns)
    try:
        while time.monotonic() - t0 < limit:
            peak = max(peak, proc.memory_info().rss)
            held = server_has_conn(proc, s)
            if seen and not held:
                return peak - base, time.monotonic() - t0
            seen = seen or held
            time.sleep(0.05)
        raise AssertionError(f"the server kept a client that reads nothing for {limit} s")
    finally:
        s.close()


def trickle(port: int, n: int, prefix: bytes, limit: float) -> list[float]:
    """trickle opens n connections, sends prefix on each, then one more byte on each every 0.1 s
    (so each byte would re-arm an idle timeout); returns, per connection, the seconds after its
    first byte at which the server closed it. Fails if any is still open after limit seconds."""
    socks = [connect(port) for _ in range(n)]
    closed: dict[int, float] = {}
    t0 = time.monotonic()
    for s in socks:
        s.sendall(prefix)
        s.setblocking(False)
    try:
        while len(closed) < n:
            now = time.monotonic()
            if now - t0 > limit:
                raise AssertionError(f"{n - len(closed)} of {n} trickling clients still open after {limit} s")
            for i, s in enumerate(socks):
                if i in closed:
                    continue
                try:
                    if s.recv(4096) == b"":
                        closed[i] = now - t0
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    closed[i] = now - t0
                    continue
                try:
                    s.send(b"a")
                except OSError:
                    closed[i] = now - t0
            time.sleep(0.1)
    finally:
        for s in socks:
            s.close()
    return [closed[i] for i in range(n)]


def cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


# --- RESP: the parser, in-process ---


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", [[b"GET", b"k"]]),
        (b"*1\r\n$+3\r\nabc\r\n", "invalid bulk length"),
        (b"*1\r\n$ 3\r\nabc\r\n", "invalid bulk length"),
        (b"*1\r\n$03\r\nabc\r\n", "invalid bulk length"),
        (b"*1\r\n$3 \r\nabc\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$\r\n", "invalid bulk length"),
        (b"*1_0\r\n", "invalid multibulk length"),
        (b"*+1\r\n", "invalid multibulk length"),
        (b"*01\r\n", "invalid multibulk length"),
        (b"*-0\r\n", "invalid multibulk length"),
        (b"*2147483648\r\n", "invalid multibulk length"),
        (b"*99999999999999999999\r\n", "invalid multibulk length"),
        (b"*x\r\n", "invalid multibulk length"),
        (b"*1\r\n:3\r\n", "expected '$', got ':'"),
        (b"*1\r\n$3\r\nabcXY", "expected CRLF after bulk string"),
        (b"*0\r\n*-1\r\n*-5\r\n*1\r\n$4\r\nPING\r\n", [[b"PING"]]),  # Redis skips empty commands
        (b"PING\n\r\nECHO x\r\n", [[b"PING"], [b"ECHO", b"x"]]),  # inline: bare \n, blank lines skipped
        (b"SET k \"a b\\x41\\n\" 'it\\'s'\r\n", [[b"SET", b"k", b"a bA\n", b"it's"]]),
        (b'SET k "a"b\r\n', "unbalanced quotes in request"),
        (b'SET k "ab\r\n', "unbalanced quotes in request"),
        (b"*1" + b"1" * 70000, "too big mbulk count string"),
        (b"*1\r\n$1" + b"1" * 70000, "too big bulk count string"),
        (b"GET " + b"k" * 70000, "too big inline request"),
    ],
)
def test_resp_parser_takes_what_redis_takes(data: bytes, want: object) -> None:
    for step in (len(data), 1, 7):  # whole, byte by byte, and in odd pieces: the same result
        p = RespParser(max_bulk=MiB, max_args=1000)
        got: list[list[bytes]] = []
        try:
            for i in range(0, len(data), step):
                p.feed(data[i : i + step])
                while (args := p.next()) is not None:
                    got.append(args)
        except ProtocolError as e:
            assert str(e) == want, (step, data[:40])
            continue
        assert got == want, (step, data[:40])


def test_resp_parser_int64_is_redis_string2ll() -> None:
    for s, v in [
        (b"0", 0),
        (b"7", 7),
        (b"-7", -7),
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
    ]:
        assert parse_int64(s) == v
    for s in [b"", b"-", b"+1", b" 1", b"1 ", b"01", b"-0", b"1_0", b"9223372036854775808", b"-9223372036854775809",
              b"1" * 40, b"1" * 5000, b"\xd9\xa1", b"1.0"]:  # fmt: skip
        assert parse_int64(s) is None, s
    assert split_args(b"a\vb c") == [b"a\vb", b"c"]  # sdssplitargs ends an unquoted word at " \t\n\r" only


def test_resp_parser_any_split_gives_the_same_commands() -> None:
    rng = random.Random(18)
    cmds = [[b"SET", b"k%d" % i, bytes(rng.randrange(256) for _ in range(rng.choice((0, 1, 13, 300, 5000))))]
            for i in range(300)]  # fmt: skip
    data = b"".join(b"*3\r\n" + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in c) for c in cmds)
    for _ in range(5):
        p = RespParser(max_bulk=MiB, max_args=16)
        got = []
        i = 0
        while i < len(data):
            n = rng.choice((1, 2, 5, 64, 1000, 65536))
            p.feed(data[i : i + n])
            i += n
            while (args := p.next()) is not None:
                got.append(args)
        assert got == cmds
        assert p.partial == 0 and p.commands == len(cmds)


def test_resp_parser_caps_a_command_before_its_bytes_arrive() -> None:
    p = RespParser(max_bulk=MiB, max_args=100, max_command=2 * MiB)
    p.feed(b"*5\r\n$4\r\nMSET\r\n$1\r\na\r\n$1048576\r\n" + b"x" * MiB + b"\r\n$1\r\nb\r\n")
    assert p.next() is None and p.partial > MiB
    p.feed(b"$1048576\r\n")
    with pytest.raises(ProtocolError, match="command larger than 2097152 bytes"):
        p.next()


def test_resp_parser_one_big_command_in_linear_time() -> None:
    """A command fed in small pieces costs time proportional to its size: 4x the values, about 4x
    the time (a parser that re-reads the command from its start at every piece, as the previous
    one did, takes 16x: 0.23 s -> 3.6 s here)."""

    def command(k: int) -> bytes:
        v = b"v" * 16384
        return b"*%d\r\n$4\r\nMSET\r\n" % (1 + 2 * k) + b"".join(
            b"$6\r\nk%05d\r\n$16384\r\n%s\r\n" % (i, v) for i in range(k)
        )

    def parse_time(data: bytes) -> float:
        best = float("inf")
        for _ in range(5):
            p = RespParser(max_bulk=MiB, max_args=1 << 16)
            t0 = time.process_time()
            for i in range(0, len(data), 4096):
                p.feed(data[i : i + 4096])
                p.next()
            best = min(best, time.process_time() - t0)
            assert p.commands == 1
        return best

    small, large = command(64), command(256)
    t_small, t_large = parse_time(small), parse_time(large)
    assert t_large < 10 * max(t_small, 0.002), (t_small, t_large)


# --- RESP: the server ---


def resp_cmd(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def test_resp_incr_overflows_as_redis(resp: tuple[int, psutil.Process]) -> None:
    port, _ = resp
    s = connect(port)
    cmds = [
        (resp_cmd(b"SET", b"ov", b"9223372036854775806"), b"+OK\r\n"),
        (resp_cmd(b"INCR", b"ov"), b":9223372036854775807\r\n"),
        (resp_cmd(b"INCR", b"ov"), b"-ERR increment or decrement would overflow\r\n"),
        (resp_cmd(b"GET", b"ov"), b"$19\r\n9223372036854775807\r\n"),  # unchanged
        (resp_cmd(b"INCRBY", b"ov", b"-9223372036854775807"), b":0\r\n"),
        (resp_cmd(b"DECRBY", b"ov", b"-9223372036854775808"), b"-ERR decrement would overflow\r\n"),
        (resp_cmd(b"INCRBY", b"ov", b"-9223372036854775808"), b":-9223372036854775808\r\n"),
        (resp_cmd(b"DECR", b"ov"), b"-ERR increment or decrement would overflow\r\n"),
        (resp_cmd(b"INCRBY", b"ov", b"1" * 40), b"-ERR value is not an integer or out of range\r\n"),
        (resp_cmd(b"INCRBY", b"ov", b"+1"), b"-ERR value is not an integer or out of range\r\n"),
        (resp_cmd(b"INCRBY", b"ov", b" 1"), b"-ERR value is not an integer or out of range\r\n"),
        (resp_cmd(b"INCRBY", b"ov", b"0_1"), b"-ERR value is not an integer or out of range\r\n"),
        (resp_cmd(b"SET", b"ov", b"12345678901234567890123"), b"+OK\r\n"),
        (resp_cmd(b"INCR", b"ov"), b"-ERR value is not an integer or out of range\r\n"),
        (resp_cmd(b"SET", b"ov", b"007"), b"+OK\r\n"),
        (resp_cmd(b"INCR", b"ov"), b"-ERR value is not an integer or out of range\r\n"),
    ]
    s.sendall(b"".join(c for c, _ in cmds))
    want = b"".join(r for _, r in cmds)
    assert recv_until(s, lambda b: len(b) >= len(want)) == want
    s.close()


def test_resp_strict_lengths_close_the_connection(resp: tuple[int, psutil.Process]) -> None:
    port, _ = resp
    for bad, msg in [
        (b"*1\r\n$+4\r\nPING\r\n", b"invalid bulk length"),
        (b"*1\r\n$ 4\r\nPING\r\n", b"invalid bulk length"),
        (b"*1_0\r\n", b"invalid multibulk length"),
    ]:
        s = connect(port)
        s.sendall(bad)
        assert recv_until(s, lambda b: b.endswith(b"\r\n")) == b"-ERR Protocol error: " + msg + b"\r\n"
        assert closed_by_peer(s)
        s.close()


def test_resp_command_size_is_capped(resp: tuple[int, psutil.Process]) -> None:
    """--max-command 48 MiB: the bulk length that passes it is refused at once, before its bytes."""
    port, _ = resp
    s = connect(port)
    s.sendall(b"*100\r\n$4\r\nMSET\r\n$1\r\nk\r\n$1048576\r\n")
    for _ in range(47):
        s.sendall(b"x" * MiB + b"\r\n$1\r\nk\r\n$1048576\r\n")
    got = recv_until(s, lambda b: b.endswith(b"\r\n"))
    assert got == b"-ERR Protocol error: command larger than %d bytes\r\n" % (48 * MiB)
    assert closed_by_peer(s)
    s.close()
    assert serves(port, b"PING\r\n", b"+PONG\r\n")


def test_resp_one_big_mset_costs_what_the_same_bytes_as_sets_cost(resp: tuple[int, psutil.Process]) -> None:
    """One MSET of 32 values of 1 MiB against 32 pipelined SETs of them, in server CPU time (the
    previous parser: 5.6 s against 0.06-0.34 s)."""
    port, proc = resp
    v = b"m" * MiB
    sets = b"".join(resp_cmd(b"SET", b"bs%d" % i, v) for i in range(32))
    mset = resp_cmd(b"MSET", *[x for i in range(32) for x in (b"bm%d" % i, v)])
    costs = []
    for data, want in ((sets, b"+OK\r\n" * 32), (mset, b"+OK\r\n")):
        s = connect(port)
        c0 = cpu(proc)
        s.sendall(data)
        assert recv_until(s, lambda b, w=want: len(b) >= len(w), limit=30) == want
        costs.append(cpu(proc) - c0)
        s.close()
    assert costs[1] < 4 * costs[0] + 0.5, costs
    assert serves(port, b"PING\r\n", b"+PONG\r\n")


def test_resp_client_that_never_reads_holds_bounded_memory(resp: tuple[int, psutil.Process]) -> None:
    """2,000 pipelined GETs of a 1 MiB value (2 GiB of replies) from a client that reads nothing:
    the server writes what the socket takes, stops parsing, and drops the client after the write
    timeout (1 s); its RSS grows by a few MiB (the previous server: 0.8-1.1 GiB)."""
    port, proc = resp
    s = connect(port)
    s.sendall(resp_cmd(b"SET", b"big", b"b" * MiB))
    assert recv_until(s, lambda b: b == b"+OK\r\n") == b"+OK\r\n"
    s.close()
    growth, took = flood_without_reading(port, proc, resp_cmd(b"GET", b"big") * 2000, limit=10)
    assert growth < 48 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"
    assert 0.8 < took < 8, took
    assert serves(port, b"PING\r\n", b"+PONG\r\n")


def test_resp_mget_of_one_big_value_many_times_is_bounded(resp: tuple[int, psutil.Process]) -> None:
    """MGET naming one 1 MiB key 4,000 times asks for a 4 GiB reply in a 60 KB command: the
    reply holds references to the value, so memory stays bounded while it is written."""
    port, proc = resp
    s = connect(port)
    s.sendall(resp_cmd(b"SET", b"big2", b"c" * MiB))
    assert recv_until(s, lambda b: b == b"+OK\r\n") == b"+OK\r\n"
    s.close()
    growth, _ = flood_without_reading(port, proc, resp_cmd(b"MGET", *[b"big2"] * 4000), limit=10)
    assert growth < 48 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"


def test_resp_slowloris_is_cut_off_by_the_request_timeout(resp: tuple[int, psutil.Process]) -> None:
    """40 clients each trickle one command a byte per 0.1 s; --request-timeout 1 closes each about
    a second after its first byte, though the idle timeout (30 s) is re-armed by every byte."""
    port, _ = resp
    done: list[bool] = []
    t = threading.Thread(target=lambda: done.append(serves(port, b"PING\r\n", b"+PONG\r\n")))
    t.start()
    times = trickle(port, 40, b"*2\r\n$3\r\nGET\r\n$1000\r\n", limit=10)
    t.join(10)
    assert done == [True]
    assert min(times) > 0.8 and max(times) < 6, times


# --- HTTP ---


def parse_all(data: bytes, step: int) -> list[object]:
    p = RequestParser(max_header=8192, max_body=MiB)
    got: list[object] = []
    try:
        for i in range(0, len(data), step):
            p.feed(data[i : i + step])
            while (r := p.next()) is not None:
                got.append((r.method, r.target, r.keep_alive, r.body))
    except HttpError as e:
        got.append((e.status, str(e)))
    return got


H = b"Host: x\r\n"


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (b"GET / HTTP/1.1\r\n" + H + b"\r\n", [(b"GET", b"/", True, b"")]),
        (
            b"GET / HTTP/1.1\nHost: x\n\nGET /a HTTP/1.1\r\nHost: x\n\r\n",
            [(b"GET", b"/", True, b""), (b"GET", b"/a", True, b"")],
        ),
        (b"\r\nGET / HTTP/1.0\r\n\r\n", [(b"GET", b"/", False, b"")]),  # an empty line first is skipped
        (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", [(b"GET", b"/", True, b"")]),
        (b"GET / HTTP/1.1\r\n" + H + b"Connection: foo, close\r\n\r\n", [(b"GET", b"/", False, b"")]),
        (
            b"POST /e HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nhello",
            [(400, "conflicting Content-Length headers")],
        ),
        (
            b"POST /e HTTP/1.1\r\n" + H + b"Content-Length: 4, 5\r\n\r\nhello",
            [(400, "conflicting Content-Length headers")],
        ),
        (
            b"POST /e HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nContent-Length: 4\r\n\r\nping",
            [(b"POST", b"/e", True, b"ping")],
        ),
        (b"POST /e HTTP/1.1\r\n" + H + b"Content-Length: +4\r\n\r\nping", [(400, "bad Content-Length")]),
        (b"POST /e HTTP/1.1\r\n" + H + b"Content-Length: 99999999\r\n\r\n", [(413, "request body too large")]),
        (
            b"POST /e HTTP/1.1\r\n"
            + H
            + b"Transfer-Encoding: chunked\r\n\r\n4;a=b\r\nping\r\n3\n-ok\n0\r\nT: 1\r\n\r\n",
            [(b"POST", b"/e", True, b"ping-ok")],
        ),
        (
            b"POST /e HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
            [(400, "both Content-Length and Transfer-Encoding")],
        ),
        (
            b"POST /e HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
            [(501, "only the chunked transfer coding is supported")],
        ),
        (
            b"POST /e HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            [(400, "Transfer-Encoding in an HTTP/1.0 request")],
        ),
        (
            b"POST /e HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0x4\r\nping\r\n0\r\n\r\n",
            [(400, "bad chunk size line")],
        ),
        (
            b"POST /e HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n4\r\npingXX",
            [(400, "chunk not followed by a line end")],
        ),
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", [(400, "malformed header line")]),
        (b"GET / HTTP/1.1\r\n" + H + b" folded\r\n\r\n", [(400, "folded header line (obs-fold)")]),
        (b"GET / HTTP/1.1\r\n\r\n", [(400, "missing Host header")]),
        (b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", [(400, "more than one Host header")]),
        (b"GET / HTTP/2.0\r\n\r\n", [(505, "HTTP version not supported")]),
        (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", [(400, "malformed request line")]),
        (b"GET / HTTP/1.1\r\nHost: x\rY\r\n\r\n", [(400, "bare CR in the request head")]),
        (b"GET / HTTP/1.1\r\nHost: x\x00\r\n\r\n", [(400, "control character in a header value")]),
        (b"GET / HTTP/1.1\r\n" + H + b"X: " + b"a" * 9000 + b"\r\n\r\n", [(431, "request header block too large")]),
        (b"GET / HTTP/1.1\r\n" + H + b"X: " + b"a" * 9000, [(431, "request header block too large")]),
    ],
)
def test_http_parser_is_strict(data: bytes, want: list[object]) -> None:
    for step in (len(data), 1, 7):  # whole, byte by byte, and in odd pieces: the same result
        assert parse_all(data, step) == want, step


def http_get(path: bytes) -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"


def test_http_conflicting_content_length_is_400(http: tuple[int, psutil.Process]) -> None:
    port, _ = http
    s = connect(port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nhello")
    got = recv_until(s, lambda b: b"\r\n\r\n" in b)
    assert got.startswith(b"HTTP/1.1 400 "), got
    assert closed_by_peer(s)
    s.close()
    s = connect(port)  # the same value twice is one length (RFC 9112 6.3)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nping")
    got = recv_until(s, lambda b: b.endswith(b"ping"))
    assert got.startswith(b"HTTP/1.1 200 "), got
    s.close()


def test_http_bare_lf_requests_are_answered(http: tuple[int, psutil.Process]) -> None:
    port, _ = http
    s = connect(port)
    s.sendall(b"GET / HTTP/1.1\nHost: x\n\nGET /bytes/3 HTTP/1.1\nHost: x\n\n")
    got = recv_until(s, lambda b: b.endswith(b"xxx"))
    assert got.count(b"HTTP/1.1 200 OK") == 2 and b"hello, world\n" in got, got
    s.close()


def test_http_expect_100_continue(http: tuple[int, psutil.Process]) -> None:
    port, _ = http
    s = connect(port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    assert recv_until(s, lambda b: b"\r\n\r\n" in b).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(b"ping")
    assert recv_until(s, lambda b: b.endswith(b"ping")).count(b"HTTP/1.1 200 OK") == 1
    s.close()


def test_http_chunked_body_and_limits(http: tuple[int, psutil.Process]) -> None:
    port, _ = http
    s = connect(port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
    got = recv_until(s, lambda b: b"\r\n\r\n" in b)
    assert got.startswith((b"HTTP/1.1 501 ", b"HTTP/1.1 400 ")), got  # h11 answers 400
    assert closed_by_peer(s)
    s.close()
    s = connect(port)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nping\r\n3\r\n-ok\r\n0\r\n\r\n")
    got = recv_until(s, lambda b: b.endswith(b"ping-ok"))
    assert got.startswith(b"HTTP/1.1 200 "), got
    chunk = b"10000\r\n" + b"z" * 65536 + b"\r\n"  # 17 of them: over --max-body (1 MiB), no length up front
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 17)
    except OSError:
        pass  # the server may have answered and closed before taking it all
    got = recv_until(s, lambda b: b"413" in b)
    assert b"HTTP/1.1 413 " in got
    s.close()


def test_http_client_that_never_reads_holds_bounded_memory(http: tuple[int, psutil.Process]) -> None:
    """300 pipelined GET /bytes/1048576 from a client that reads nothing (the previous server: 18 ->
    320 MiB, held while the client stayed): bounded, and dropped after the write timeout (1 s)."""
    port, proc = http
    growth, took = flood_without_reading(port, proc, http_get(b"/bytes/1048576") * 300, limit=10)
    assert growth < 48 * MiB, f"RSS grew by {growth / MiB:.0f} MiB"
    assert 0.8 < took < 8, took
    assert serves(port, http_get(b"/"), b"hello, world\n")


def test_http_slowloris_is_cut_off_by_the_request_timeout(http: tuple[int, psutil.Process]) -> None:
    port, _ = http
    done: list[bool] = []
    t = threading.Thread(target=lambda: done.append(serves(port, http_get(b"/"), b"hello, world\n")))
    t.start()
    times = trickle(port, 40, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", limit=10)
    t.join(10)
    assert done == [True]
    assert min(times) > 0.8 and max(times) < 6, times


def test_http_server_without_h11_says_what_to_install() -> None:
    """Without h11 the server runs with its own parser, and --parser h11 says what to install."""
    code = (
        "import sys; sys.modules['h11'] = None; "
        "from stress.servers.http import main; main(['--listen', '127.0.0.1:0', '--parser', 'h11'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "needs the h11 package" in out.stderr and "pip install -e '.[servers]'" in out.stderr, out.stderr
    code = "import sys; sys.modules['h11'] = None; from stress.servers.http import main; main(sys.argv[1:])"
    p, port = start("stress.servers.http", code=code)
    try:
        assert serves(port, http_get(b"/"), b"hello, world\n")
    finally:
        stop(p)
