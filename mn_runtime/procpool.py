"""procpool: the runtime's process pool, driven by the netpoller (no pool threads).

    pool = ProcPool(nworkers)              # future.py makes one per run(), on the first offload()
    result = await pool.call(payload, fn)  # payload: the pickled (fn, args, kwargs)
    pool.stop()                            # run() is ending: workers finish their calls and exit
    pool.close()                           # after the runtime's threads are gone: join, close

Each worker is a process started with the 'spawn' method (never 'fork': the runtime has several
threads, and a child forked while one of them holds a lock can hang), connected to the parent by
one AF_UNIX socket pair. The parent's end is a runtime Conn: a goroutine that offloads writes its
call there and reads the reply there, parking on the socket through the netpoller like any
network read. So a call costs no thread of the pool's own: concurrent.futures'
ProcessPoolExecutor runs a manager thread and a queue feeder thread, and each call's result
crosses both (two wake-ups, two GIL hand-offs) before a waiting goroutine is readied.

Frames are an 8-byte big-endian length and a pickle: (fn, args, kwargs) one way; (True, result)
or (False, exception, formatted remote traceback) the other. A worker answers its calls in the
order they were written.

Depth. A worker holds up to DEPTH calls: the one it runs and one queued behind it, so it starts
its next call the moment it sends a reply, without waiting for the reply to reach a goroutine and
the next call to come back (the executor's one queued call does the same). A call goes to an idle
worker first; else to a new worker while fewer than `nworkers` exist (they start on demand); else
behind a busy one. `sem` admits at most DEPTH * nworkers calls, so the rest wait there in FIFO
order. While the pool has fewer than nworkers, a call never queues behind another: a short call
waits behind a long one only when every worker is busy anyway.

Order. Two goroutines that picked the same worker must write their calls in the order they read
the replies: each appends its turn to `w.turns` and writes while holding `w.wmu` (an mn.Mutex),
so the turns are in write order. The goroutine whose turn is first reads the next reply; then it
hands the turn on (a one-slot channel per call).

Death. A worker that dies (killed, os._exit, a crash in C) fails the call it was running with
BrokenProcessPool, naming its exit code; the goroutine that sees its socket end marks it `dead`,
retires it (its slot frees for a fresh worker) and hands the turn on. A call queued behind the one
that was running never started, and neither did one whose write failed: those are retried once
on another worker.

Invariants, under `lock`: `workers` holds the workers live or starting, `nslots` of them, never
above `nworkers`; a worker moves from there to `dying` the moment a goroutine sees it dead (so a
dead worker never counts against a new one), and leaves `dying` once a goroutine has taken on
joining it; close() joins whatever is in either. A live worker's `depth` is the calls picked for
it and not yet over (at most DEPTH); with `sem` admitting at most DEPTH * nworkers calls, a call
admitted always finds an idle worker, a free slot, or a worker with room. `turns` holds a turn for
each call written and not yet answered, in write order. `dead` and `closed` are set once.
"""

from __future__ import annotations

import multiprocessing
import pickle
import socket
import struct
import traceback
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from ._rt import lock as _lock
from ._rt.traps import syscall_trap
from .chan import Chan
from .errors import Throw
from .net import Conn
from .sync import Mutex, Semaphore

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

__all__ = ["BrokenProcessPool", "ProcPool", "RemoteTraceback", "describe"]

_HDR = struct.Struct("!Q")
_READ = 65536  # the most one read asks for: below the allocator's mmap threshold (docs/benchmarks.md)
_JOIN_GRACE = 5.0  # seconds a retired worker gets to exit before it is killed


class RemoteTraceback(Exception):
    """RemoteTraceback is set as the __cause__ of an exception raised in a worker: its text is the
    traceback in the worker process."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


# --- the worker process ---


def _recvexact(sock: socket.socket, n: int) -> bytes | None:
    """_recvexact reads n bytes from a blocking socket; None at end of stream."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:], min(n - got, _READ))
        if k == 0:
            return None
        got += k
    return bytes(buf)


def _reply(call: bytes) -> bytes:
    """_reply runs one pickled call and returns its pickled reply; nothing it raises escapes."""
    fn: Any = None
    try:
        fn, args, kwargs = pickle.loads(call)
        result = fn(*args, **kwargs)
    except BaseException as e:
        tb = "".join(traceback.format_exception(e))
        try:
            return pickle.dumps((False, e, tb), pickle.HIGHEST_PROTOCOL)
        except Exception as pe:
            stand_in = RuntimeError(f"{type(e).__name__}: {e} (the exception could not be pickled: {pe})")
            return pickle.dumps((False, stand_in, tb), pickle.HIGHEST_PROTOCOL)
    try:
        return pickle.dumps((True, result), pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        err = TypeError(
            f"offload(): the result of {describe(fn)!r} ({type(result).__name__}) cannot be pickled to return it"
            f" from the worker process ({type(e).__name__}: {e})"
        )
        return pickle.dumps((False, err, ""), pickle.HIGHEST_PROTOCOL)


def _worker_main(sock: socket.socket) -> None:
    """_worker_main is a worker process's whole life: answer calls until the parent's end closes."""
    with sock:
        try:
            while True:
                hdr = _recvexact(sock, _HDR.size)
                if hdr is None:
                    return
                call = _recvexact(sock, _HDR.unpack(hdr)[0])
                if call is None:
                    return
                out = _reply(call)  # a Ctrl-C during the call is the call's exception
                sock.sendall(_HDR.pack(len(out)) + out)
        except (OSError, KeyboardInterrupt):
            # The parent is gone (run() ended while this call ran), or a Ctrl-C reached the
            # whole process group while this worker waited: the parent decides what comes next.
            return


def describe(fn: Any) -> str:
    """describe names a function in error messages: its qualified name, else its repr."""
    return getattr(fn, "__qualname__", None) or repr(fn)


# --- the parent's side ---

DEPTH = 2  # calls a worker holds: the one it runs, and one queued behind it


class _Worker:
    """_Worker is one worker process and the parent's end of its socket pair."""

    __slots__ = ("buf", "conn", "dead", "depth", "pid", "proc", "sock", "turns", "wmu")

    def __init__(self) -> None:
        self.proc: BaseProcess | None = None  # set once the process exists (_spawn)
        self.pid: int | None = None  # kept for messages: the process object is closed once joined
        self.sock: socket.socket | None = None
        self.conn: Conn | None = None
        self.wmu = Mutex()  # held while appending a turn and writing its call
        self.buf = bytearray()  # bytes read past the last reply
        self.depth = 0
        self.turns: deque[Chan[bool]] = deque()
        self.dead = False

    async def reply(self) -> bytes:
        """reply reads one reply frame; EOFError when the worker closed its end (it exited)."""
        conn = self.conn
        assert conn is not None
        buf = self.buf  # may hold the start of this reply, or all of it, from an earlier read
        while len(buf) < _HDR.size or len(buf) < (need := _HDR.size + _HDR.unpack_from(buf)[0]):
            d = await conn.read(_READ)
            if not d:
                raise EOFError
            buf += d
        out = bytes(buf[_HDR.size : need])
        del buf[:need]
        return out


def _exitcode(proc: BaseProcess) -> int | None:
    """_exitcode waits a moment for a worker whose socket ended to exit (blocking)."""
    proc.join(_JOIN_GRACE)
    if proc.exitcode is None:
        proc.kill()
        proc.join()
    code = proc.exitcode
    proc.close()  # its sentinel fd
    return code


class _Retry(Exception):
    """_Retry: the worker died before this call started; it may go to another worker."""


class ProcPool:
    """ProcPool is the runtime's process pool for one run(); see the module docstring."""

    __slots__ = ("closed", "ctx", "dying", "lock", "nslots", "nworkers", "sem", "workers")

    def __init__(self, nworkers: int) -> None:
        if nworkers < 1:
            raise ValueError(f"ProcPool needs at least one worker, got {nworkers}")
        self.nworkers = nworkers
        self.ctx = multiprocessing.get_context("spawn")
        self.lock = _lock.new("procpool.lock")
        self.sem = Semaphore(DEPTH * nworkers)
        self.nslots = 0
        self.workers: list[_Worker] = []
        self.dying: list[_Worker] = []  # dead, and nobody has taken on joining them yet
        self.closed = False

    def _pick(self) -> tuple[_Worker, bool]:
        """_pick chooses the worker for a call admitted by sem and counts the call in its depth:
        an idle one, else a new one (True: the caller starts it, holding its wmu), else the
        busy one that holds one call (the first found). Under sem's bound one always has room."""
        # A new worker's wmu is taken before procpool.lock (sync.lock ranks below it), on a spare
        # made only while a slot may be free.
        spare = None
        if self.nslots < self.nworkers:  # a hint, decided again under the lock
            spare = _Worker()
            taken = spare.wmu.try_lock()
            assert taken
        with self.lock:
            if self.closed:
                raise BrokenProcessPool("offload(): the runtime's process pool is shut down (run() is ending)")
            room = None
            for w in self.workers:
                if w.depth == 0:
                    w.depth = 1
                    return w, False
                if room is None and w.depth < DEPTH:
                    room = w
            if self.nslots < self.nworkers:
                if spare is not None:
                    self.nslots += 1
                    spare.depth = 1
                    self.workers.append(spare)
                    return spare, True
                # else a slot freed since the hint: start a worker in it (below, once more)
            elif room is not None:
                room.depth += 1
                return room, False
            else:
                raise Throw(f"procpool: no worker has room for a call sem admitted ({self.nslots} workers)")
        return self._pick()

    def _spawn(self, w: _Worker) -> None:
        """_spawn starts w's process (blocking: run as a syscall): either every part of w is set
        or, on an error, nothing is and no fd is left open. w is in `workers` already, so close()
        joins the process even if run() ends meanwhile and the goroutine that started it never
        resumes; one started after stop() is told to stop at once."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                conn = Conn(parent)
            except BaseException:
                parent.close()
                raise
            try:
                proc = self.ctx.Process(target=_worker_main, args=(child,), name="mn-pool-worker", daemon=True)
                proc.start()
            except BaseException:
                conn.close()
                raise
        finally:
            child.close()  # the worker has its own copy
        with self.lock:
            w.proc, w.pid, w.sock, w.conn = proc, proc.pid, parent, conn
            if self.closed:
                parent.shutdown(socket.SHUT_WR)

    def _done(self, w: _Worker) -> None:
        """_done: a call on w is over (answered, failed, or never written); w's depth and sem's
        count give it back."""
        with self.lock:
            w.depth -= 1
        self.sem.release()

    def _markdead_locked(self, w: _Worker) -> None:
        """_markdead_locked (procpool.lock held): w is dead; out of `workers` (its slot frees for a
        new worker) and, if its process exists, into `dying` until someone joins it."""
        if w.dead:
            return
        w.dead = True
        self.workers.remove(w)
        self.nslots -= 1
        if w.proc is not None:
            self.dying.append(w)

    async def _retire(self, w: _Worker) -> int | None:
        """_retire ends a dead worker: the first goroutine to get here closes the parent's end,
        joins the process and returns its exit code; any other returns None at once."""
        with self.lock:
            self._markdead_locked(w)
            first = w in self.dying
            if first:
                self.dying.remove(w)
            proc = w.proc
        if not first or proc is None:
            return None
        if w.conn is not None:
            w.conn.close()
        return await syscall_trap(_exitcode, (proc,), {})

    def _handon(self, w: _Worker) -> None:
        """_handon: this call's turn is over; the next call's goroutine may read its reply."""
        with self.lock:
            w.turns.popleft()
            nxt = w.turns[0] if w.turns else None
        if nxt is not None:
            nxt.try_send(True)

    async def call(self, payload: bytes, fn: Any) -> Any:
        """call runs one pickled call on a worker and returns its result (or raises its exception,
        with the worker's traceback as __cause__); fn only names the call in errors.

        A BaseException at an await (GeneratorExit, KeyboardInterrupt) is run() ending and
        abandoning this goroutine: nothing is given back (giving back could ready another
        abandoned goroutine), and stop() and close() end the workers."""
        frame = _HDR.pack(len(payload)) + payload
        for attempt in range(2):
            await self.sem.acquire()
            try:
                w, new = self._pick()
            except Exception:
                self.sem.release()
                raise
            try:
                return await self._call(w, new, frame, fn)
            except _Retry:
                if attempt == 1:
                    raise BrokenProcessPool(_died(w, None, fn, "before it took the call, twice")) from None
        raise AssertionError("unreachable")

    async def _call(self, w: _Worker, new: bool, frame: bytes, fn: Any) -> Any:
        """_call writes the call to w (picked, its depth counted) and reads its reply in turn.
        A new w is started here, with its wmu held since _pick."""
        mine: Chan[bool] = Chan(1)
        held = new
        try:
            if new:
                await syscall_trap(self._spawn, (w,), {})
            else:
                await w.wmu.lock()
                held = True
            with self.lock:
                if w.dead:
                    raise _Retry
                w.turns.append(mine)
                first = len(w.turns) == 1
            conn = w.conn
            assert conn is not None
            try:
                await conn.write(frame)
            except OSError:
                # Gone before it had the call (died idle, or at start-up): it never ran.
                self._handon_dead(w, mine)
                await self._retire(w)
                raise _Retry from None
        except Exception:
            if new and w.proc is None:  # it never started: calls queued on it go elsewhere
                with self.lock:
                    self._markdead_locked(w)
            if held:
                w.wmu.unlock()
            self._done(w)
            raise
        w.wmu.unlock()
        try:
            if not first:
                await mine.recv()  # the calls ahead were answered (or the worker died)
                with self.lock:
                    dead = w.dead
                if dead:  # it died running a call ahead of this one, which never started
                    self._handon_dead(w, mine)
                    raise _Retry
            try:
                reply = await w.reply()
            except (OSError, EOFError):
                self._handon_dead(w, mine)
                code = await self._retire(w)
                raise BrokenProcessPool(_died(w, code, fn, "while running the call")) from None
            self._handon(w)
        except Exception:
            self._done(w)
            raise
        self._done(w)
        return _unpack(reply)

    def _handon_dead(self, w: _Worker, mine: Chan[bool]) -> None:
        """_handon_dead: w is dead; take this call's turn out and wake every call queued on w, so
        each sees `dead` and goes elsewhere."""
        with self.lock:
            self._markdead_locked(w)
            if mine in w.turns:
                w.turns.remove(mine)
            waiting = list(w.turns)
        for t in waiting:
            t.try_send(True)

    def stop(self) -> None:
        """stop (run() is ending; the scheduler is stopped): no call starts any more, and every
        worker sees the end of its socket once it has answered the calls it holds, and exits. The
        fds stay open until close(): an M that has not yet seen the stop may still touch them."""
        with self.lock:
            self.closed = True
            socks = [w.sock for w in self.workers if w.sock is not None]
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the worker is gone already

    def close(self) -> None:
        """close (after stop, once the runtime's threads are joined): waits for every worker to
        exit (its calls run to their end, as run() waits for a syscall) and closes the sockets."""
        with self.lock:
            workers = self.workers + self.dying
            self.workers.clear()
            self.dying.clear()
            self.nslots = 0
        for w in workers:
            if w.proc is not None:
                w.proc.join()
                w.proc.close()  # its sentinel fd
            if w.sock is not None:
                w.sock.close()


def _died(w: _Worker, code: int | None, fn: Any, when: str) -> str:
    if code is None:
        how = "died"  # another goroutine joined it and has its exit code
    elif code < 0:
        how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    return (
        f"offload(): the pool's worker process (pid {w.pid}) {how} {when} {describe(fn)!r};"
        " a fresh worker takes the next call (a worker that dies at start-up is often a program whose"
        " entry point lacks `if __name__ == '__main__':`, docs/cpu.md)"
    )


def _unpack(reply: bytes) -> Any:
    msg = pickle.loads(reply)
    if msg[0]:
        return msg[1]
    _, exc, tb = msg
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
    raise exc
