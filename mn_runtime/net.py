"""net: blocking-style networking for goroutines (Go's net package).

    ln = mn.net.listen("tcp", "127.0.0.1:0")
    conn = await ln.accept()
    data = await conn.read(4096)        # parks only this goroutine until data arrives
    await conn.write(data)

Every call looks blocking to the goroutine that makes it; underneath the fd is non-blocking and the
goroutine parks on the netpoller when the kernel says EAGAIN (see docs/netpoller.md). Networks:
"tcp", "tcp4", "tcp6", "unix" for listen/dial, "udp", "udp4", "udp6", "unixgram" for listen_packet.
Addresses are "host:port" ("[::1]:80" for IPv6), a (host, port) tuple, or a path for unix sockets.

Deadlines come in two forms, on every kind of connection: absolute, `set_deadline(t)` and
`set_read_deadline(t)`/`set_write_deadline(t)` with t in `time.monotonic()` seconds (`mn.now()`'s
clock, which is virtual under `run(clock="virtual")`), as Go's SetDeadline; and relative,
`set_timeout(seconds)`, `set_read_timeout(seconds)`, `set_write_timeout(seconds)`, which set the
deadline `seconds` from now (once: like Go's SetDeadline(time.Now().Add(d)), not a per-call idle
timeout). None or math.inf clears. `dial(..., timeout=seconds)` bounds the connect. An operation
past its deadline raises DeadlineExceeded ("i/o timeout"); the connection works again once the
deadline is moved or cleared. A deadline computed from time.time() is a ValueError. `close()`
from any goroutine makes every goroutine blocked on the object raise ClosedError
("use of closed network connection"). Objects that are still open when `run()` returns are closed.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Coroutine
from typing import Any

from . import time as _time
from ._rt.corofn import coroutine_function
from ._rt.fd import FD, MODE_READ, MODE_WRITE, ClosedError, DeadlineExceeded

__all__ = [
    "ClosedError",
    "Conn",
    "DeadlineExceeded",
    "FileConn",
    "Listener",
    "PacketConn",
    "dial",
    "listen",
    "listen_packet",
    "wrap_fd",
]

_STREAM = {"tcp": 0, "tcp4": socket.AF_INET, "tcp6": socket.AF_INET6, "unix": socket.AF_UNIX}
_PACKET = {"udp": 0, "udp4": socket.AF_INET, "udp6": socket.AF_INET6, "unixgram": socket.AF_UNIX}
_BOTH = MODE_READ | MODE_WRITE

# --- addresses ---


def _split_hostport(address: str) -> tuple[str, str]:
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or address[end + 1 : end + 2] != ":":
            raise ValueError(f"malformed address {address!r}: expected '[ipv6-host]:port'")
        return address[1:end], address[end + 2 :]
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"malformed address {address!r}: missing port (expected 'host:port')")
    if ":" in host:
        raise ValueError(f"malformed address {address!r}: IPv6 hosts need brackets, as in '[::1]:80'")
    return host, port


def _port(port: object, address: object) -> int:
    if isinstance(port, str):
        if not port.isdigit():
            raise ValueError(f"malformed address {address!r}: port {port!r} is not a number")
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int):
        raise ValueError(f"malformed address {address!r}: port must be an int")
    if not 0 <= port <= 65535:
        raise ValueError(f"malformed address {address!r}: port {port} out of range 0-65535")
    return port


def _hostport(address: object) -> tuple[str, int]:
    if isinstance(address, str):
        host, port = _split_hostport(address)
        return host, _port(port, address)
    if isinstance(address, tuple) and len(address) in (2, 4) and isinstance(address[0], str):
        return address[0], _port(address[1], address)
    raise ValueError(f"malformed address {address!r}: expected 'host:port' or a (host, port) tuple")


def _family_of(host: str, want: int, network: str) -> int | None:
    """_family_of is host's family if it is a literal IP (checked against want), else None."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    fam = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    if want and fam != want:
        raise ValueError(f"address {host!r} is not an address of network {network!r}")
    return fam


def _resolve_now(network: str, address: object, want: int, stype: int, passive: bool) -> tuple[int, Any]:
    """_resolve_now returns (family, sockaddr); names other than literals go through getaddrinfo."""
    if want == socket.AF_UNIX:
        if isinstance(address, bytes):
            address = os.fsdecode(address)
        if not isinstance(address, (str, os.PathLike)):
            raise ValueError(f"malformed address {address!r}: network {network!r} needs a path")
        path = os.fspath(address)
        if not path or ("\0" in path and not path.startswith("\0")):
            raise ValueError(f"malformed address {address!r}: not a usable socket path")
        return socket.AF_UNIX, path
    host, port = _hostport(address)
    if host == "":
        if passive:
            fam = want or socket.AF_INET
            return fam, ("::" if fam == socket.AF_INET6 else "0.0.0.0", port)
        host = "127.0.0.1" if want != socket.AF_INET6 else "::1"
    fam = _family_of(host, want, network)
    if fam is not None:
        return fam, (host, port)
    try:
        infos = socket.getaddrinfo(host, port, want, stype)
    except socket.gaierror as e:
        raise OSError(e.errno, f"lookup {host!r}: {e.strerror}") from None
    if not infos:
        raise OSError(errno.ENOENT, f"lookup {host!r}: no addresses")
    fam, _, _, _, sa = infos[0]
    return fam, sa


def _network(network: object, table: dict[str, int], what: str) -> int:
    if not isinstance(network, str):
        raise TypeError(f"network must be a str, got {type(network).__name__}")
    try:
        return table[network]
    except KeyError:
        raise ValueError(f"unknown network {network!r} for {what}; expected one of {sorted(table)}") from None


def _deadline(t: object, what: str) -> float | None:
    """_deadline checks an absolute deadline (mn_runtime.time): float, or None to clear."""
    return _time.check_deadline(what, t)


def _timeout(seconds: object, what: str) -> float | None:
    """_timeout turns a relative timeout into an absolute deadline, or None to clear."""
    return _time.deadline_after(what, seconds)


def _nbytes(n: object) -> int:
    if type(n) is int and n > 0:
        return n
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"read size must be an int, got {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"read size must be positive, got {n}")
    return n


def _bytes_like(data: object) -> bytes | memoryview:
    if type(data) is bytes:
        return data
    try:
        return memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"write needs a bytes-like object, got {type(data).__name__}") from None


class _Deadlines:
    """Deadline setters shared by every kind of connection."""

    _fd: FD

    def set_deadline(self, t: float | None) -> None:
        """set_deadline sets the read and write deadlines (time.monotonic() seconds, mn.now()'s
        clock; None or math.inf clears)."""
        self._fd.set_deadline(_BOTH, _deadline(t, "set_deadline()"))

    def set_read_deadline(self, t: float | None) -> None:
        """set_read_deadline sets the read deadline (as set_deadline)."""
        self._fd.set_deadline(MODE_READ, _deadline(t, "set_read_deadline()"))

    def set_write_deadline(self, t: float | None) -> None:
        """set_write_deadline sets the write deadline (as set_deadline)."""
        self._fd.set_deadline(MODE_WRITE, _deadline(t, "set_write_deadline()"))

    def set_timeout(self, seconds: float | None) -> None:
        """set_timeout sets the read and write deadlines `seconds` from now (None or math.inf
        clears); operations still running then raise DeadlineExceeded."""
        self._fd.set_deadline(_BOTH, _timeout(seconds, "set_timeout()"))

    def set_read_timeout(self, seconds: float | None) -> None:
        """set_read_timeout sets the read deadline `seconds` from now (as set_timeout)."""
        self._fd.set_deadline(MODE_READ, _timeout(seconds, "set_read_timeout()"))

    def set_write_timeout(self, seconds: float | None) -> None:
        """set_write_timeout sets the write deadline `seconds` from now (as set_timeout)."""
        self._fd.set_deadline(MODE_WRITE, _timeout(seconds, "set_write_timeout()"))

    def close(self) -> None:
        """close closes the object; goroutines blocked on it raise ClosedError. Idempotent."""
        self._fd.close()

    @property
    def closed(self) -> bool:
        return self._fd.closing

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# --- stream connections ---


class Conn(_Deadlines):
    """A stream connection (TCP or unix); made by dial() or Listener.accept()."""

    __slots__ = ("_fd", "_sock", "local_addr", "remote_addr")

    def __init__(self, sock: socket.socket, remote: Any = None) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as Go does
        self._sock = sock
        self._fd = FD(sock.fileno(), sock)
        self.local_addr: Any = sock.getsockname()
        self.remote_addr: Any = remote if remote is not None else sock.getpeername()

    # read, readinto and write return the FD's coroutine rather than awaiting it in one of their
    # own: one coroutine per call on the hottest path of every server (bad arguments still raise
    # at the call).

    @coroutine_function
    def read(self, n: int) -> Coroutine[Any, Any, bytes]:
        """read returns up to n bytes as soon as any arrive; b"" at end of stream."""
        n = _nbytes(n)
        return self._fd.io(MODE_READ, self._sock.recv, n, stream=n)

    @coroutine_function
    def readinto(self, buf: bytearray | memoryview) -> Coroutine[Any, Any, int]:
        """readinto fills buf with what has arrived; returns the count (0 at end of stream)."""
        return self._fd.io(MODE_READ, self._sock.recv_into, buf, stream=memoryview(buf).nbytes)

    @coroutine_function
    def write(self, data: bytes | bytearray | memoryview) -> Coroutine[Any, Any, int]:
        """write writes all of data (parking while the socket buffer is full); returns len(data)."""
        return self._fd.write_all(_bytes_like(data), self._sock.send)

    def close_write(self) -> None:
        """close_write shuts down the sending side: the peer reads end of stream, reading goes on."""
        fd = self._fd
        fd.incref()
        try:
            self._sock.shutdown(socket.SHUT_WR)
        finally:
            fd.decref()

    def __repr__(self) -> str:
        state = "closed" if self._fd.closing else "open"
        return f"<mn_runtime.net.Conn {self.local_addr!r} -> {self.remote_addr!r} {state}>"


class Listener(_Deadlines):
    """A listening stream socket; made by listen()."""

    __slots__ = ("_fd", "_sock", "addr")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fd = FD(sock.fileno(), sock)
        self.addr: Any = sock.getsockname()

    def _accept1(self) -> tuple[int, Any]:
        while True:
            try:
                return self._sock._accept()  # type: ignore[attr-defined]
            except ConnectionAbortedError:
                continue  # the client gave up before we took it; take the next (as Go)

    async def accept(self) -> Conn:
        """accept waits for the next connection and returns it."""
        fd, addr = await self._fd.io(MODE_READ, self._accept1)
        sock = socket.socket(self._sock.family, self._sock.type, self._sock.proto, fileno=fd)
        try:
            return Conn(sock, addr if self._sock.family != socket.AF_UNIX else None)
        except BaseException:
            sock.close()
            raise

    def __repr__(self) -> str:
        return f"<mn_runtime.net.Listener {self.addr!r} {'closed' if self._fd.closing else 'open'}>"


def listen(network: str, address: Any, *, backlog: int = 4096) -> Listener:
    """listen opens a listening socket: network "tcp", "tcp4", "tcp6" or "unix"."""
    want = _network(network, _STREAM, "listen")
    fam, sa = _resolve_now(network, address, want, socket.SOCK_STREAM, True)
    sock = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        if fam != socket.AF_UNIX:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        _bind(sock, network, sa)
        sock.listen(backlog)
        return Listener(sock)
    except BaseException:
        sock.close()
        raise


def _bind(sock: socket.socket, network: str, sa: Any) -> None:
    """_bind binds sock to sa; a failure names the address, as Go's "listen tcp 127.0.0.1:80: bind:
    address already in use" (the OSError keeps its errno and subclass)."""
    try:
        sock.bind(sa)
    except OSError as e:
        if e.errno is None:
            raise
        if isinstance(sa, tuple):
            host = sa[0]
            where = f"[{host}]:{sa[1]}" if ":" in host else f"{host}:{sa[1]}"
        else:
            where = sa.decode(errors="replace") if isinstance(sa, bytes) else str(sa)
        raise OSError(e.errno, f"listen {network} {where}: bind: {e.strerror}") from None


async def dial(network: str, address: Any, timeout: float | None = None) -> Conn:
    """dial connects to address; timeout (seconds; None or math.inf: none) bounds the connect,
    raising DeadlineExceeded."""
    want = _network(network, _STREAM, "dial")
    deadline = _timeout(timeout, "dial() timeout")
    if want != socket.AF_UNIX and isinstance(address, (str, tuple)):
        host = _hostport(address)[0]
        if host and _family_of(host, want, network) is None:
            from .runtime import syscall

            fam, sa = await syscall(_resolve_now, network, address, want, socket.SOCK_STREAM, False)
        else:
            fam, sa = _resolve_now(network, address, want, socket.SOCK_STREAM, False)
    else:
        fam, sa = _resolve_now(network, address, want, socket.SOCK_STREAM, False)
    sock = socket.socket(fam, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    fd: FD | None = None
    try:
        fd = FD(sock.fileno(), sock)
        if deadline is not None:
            fd.set_deadline(MODE_WRITE, deadline)
        await _connect(fd, sock, sa)
        if deadline is not None:
            fd.set_deadline(MODE_WRITE, None)
        conn = Conn.__new__(Conn)
        if fam != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn._sock = sock
        conn._fd = fd
        conn.local_addr = sock.getsockname()
        conn.remote_addr = sock.getpeername() if fam != socket.AF_UNIX else sa
        return conn
    except BaseException:
        if fd is not None:
            fd.close()
        else:
            sock.close()
        raise


async def _connect(fd: FD, sock: socket.socket, sa: Any) -> None:
    """_connect is Go's fd.connect: start a non-blocking connect, wait writable, check SO_ERROR."""
    await fd.lock(MODE_WRITE)
    try:
        fd.checkerr(MODE_WRITE)
        err = sock.connect_ex(sa)
        if err in (0, errno.EISCONN):
            return
        if err not in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
            raise OSError(err, f"dial {sa!r}: {os.strerror(err)}")
        while True:
            # A socket registered before it connects may report writable early (an unconnected
            # socket polls as EPOLLOUT|EPOLLHUP), so check getpeername as Go does.
            await fd.wait(MODE_WRITE)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in (errno.EINPROGRESS, errno.EALREADY, errno.EINTR):
                continue
            if err:
                raise OSError(err, f"dial {sa!r}: {os.strerror(err)}")
            try:
                sock.getpeername()
                return
            except OSError:
                continue
    finally:
        fd.unlock(MODE_WRITE)


# --- packets ---


class PacketConn(_Deadlines):
    """A datagram socket (UDP or unixgram); made by listen_packet()."""

    __slots__ = ("_fam", "_fd", "_sock", "addr")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._fam = sock.family
        self._fd = FD(sock.fileno(), sock)
        self.addr: Any = sock.getsockname()

    async def read_from(self, n: int) -> tuple[bytes, Any]:
        """read_from waits for one datagram and returns (up to n bytes of it, sender address)."""
        return await self._fd.io(MODE_READ, self._sock.recvfrom, _nbytes(n))

    async def write_to(self, data: bytes | bytearray | memoryview, addr: Any) -> int:
        """write_to sends data as one datagram to addr ("host:port", a tuple, or a path)."""
        view = _bytes_like(data)
        if self._fam == socket.AF_UNIX:
            sa: Any = _resolve_now("unixgram", addr, socket.AF_UNIX, socket.SOCK_DGRAM, False)[1]
        else:
            sa = _hostport(addr)
        return await self._fd.io(MODE_WRITE, self._sock.sendto, view, sa)

    def __repr__(self) -> str:
        return f"<mn_runtime.net.PacketConn {self.addr!r} {'closed' if self._fd.closing else 'open'}>"


def listen_packet(network: str, address: Any) -> PacketConn:
    """listen_packet opens a datagram socket bound to address: "udp", "udp4", "udp6", "unixgram"."""
    want = _network(network, _PACKET, "listen_packet")
    fam, sa = _resolve_now(network, address, want, socket.SOCK_DGRAM, True)
    sock = socket.socket(fam, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    try:
        _bind(sock, network, sa)
        return PacketConn(sock)
    except BaseException:
        sock.close()
        raise


# --- any pollable fd ---


class FileConn(_Deadlines):
    """A pollable fd (a pipe end, a FIFO, a tty, a subprocess's stdout) with Conn's semantics."""

    __slots__ = ("_fd", "fileno")

    def __init__(self, fd: int) -> None:
        self.fileno = fd
        self._fd = FD(fd)

    async def read(self, n: int) -> bytes:
        """read returns up to n bytes as soon as any are there; b"" at end of file."""
        return await self._fd.io(MODE_READ, os.read, self.fileno, _nbytes(n))

    async def write(self, data: bytes | bytearray | memoryview) -> int:
        """write writes all of data; returns len(data)."""
        fd = self.fileno
        return await self._fd.write_all(_bytes_like(data), lambda v: os.write(fd, v))

    def __repr__(self) -> str:
        return f"<mn_runtime.net.FileConn fd={self.fileno} {'closed' if self._fd.closing else 'open'}>"


def wrap_fd(fd: int | Any) -> FileConn:
    """wrap_fd takes ownership of a pollable fd (an int, or an object with fileno(), which is then
    detached from it) and returns a FileConn; closing the FileConn closes the fd. Regular files are
    not pollable: OSError."""
    if not isinstance(fd, int) and hasattr(fd, "fileno"):
        newfd = os.dup(fd.fileno())
        fd.close()
        fd = newfd
    if isinstance(fd, bool) or not isinstance(fd, int):
        raise TypeError(f"wrap_fd needs an fd (int) or an object with fileno(), got {type(fd).__name__}")
    if fd < 0:
        raise ValueError(f"wrap_fd: invalid fd {fd}")
    try:
        return FileConn(fd)
    except PermissionError:
        os.close(fd)
        raise OSError(errno.EPERM, f"wrap_fd: fd {fd} is not pollable (a regular file?)") from None
