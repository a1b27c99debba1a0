"""resp_parser: an incremental parser of Redis-protocol (RESP2) requests, the server's side.

    p = RespParser(max_bulk=1 << 20, max_args=1 << 16, max_command=64 << 20)
    p.feed(data)                       # as bytes arrive
    while (args := p.next()) is not None:
        ...                            # one command: a list of bytes

It takes what Redis's request reader takes (networking.c: processMultibulkBuffer and
processInlineBuffer), with the same error messages:

- a multibulk request `*N\\r\\n` then N bulk strings `$L\\r\\n<L bytes>\\r\\n`; N <= 0 is an
  empty command (skipped); N and L are read as Redis's string2ll reads them: an optional `-`, then
  decimal digits with no leading zero, fitting in 64 bits. So `$+3`, `$ 3`, `*1_0` and `$03` are
  protocol errors (Python's int() takes all four);
- an inline command: a line (ending in `\\n`, a `\\r` before it dropped) split into words as
  redis-cli's sdssplitargs splits them, with "double" (escapes `\\n \\r \\t \\b \\a \\xHH`)
  and 'single' quotes;
- a count or length line, or an unterminated inline line, over 64 KiB is an error, as in Redis.

Beyond Redis's own checks: a bulk string must be followed by `\\r\\n` (Redis skips the two bytes
unread), and a whole command may not be larger than `max_command` bytes (Redis bounds only its
query buffer, at 1 GiB by default); a command that declares more is refused as soon as the length
that passes the limit is read, before its bytes arrive.

Linear time: the parser keeps its place inside an incomplete command (the arguments read so far,
the length of the bulk string it waits for, where its search for a line end stopped), so each
byte is examined and copied a bounded number of times however the command is split across reads.
Consumed bytes are dropped from the front of the buffer once they are at least half of it, so
that too costs O(1) per byte.
"""

from __future__ import annotations

import re

MAX_LINE = 64 * 1024  # Redis's PROTO_INLINE_MAX_SIZE
INT_MAX = (1 << 31) - 1  # Redis keeps a multibulk count in an int
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


class ProtocolError(ValueError):
    """ProtocolError: the client broke the protocol; str() is what Redis writes after "Protocol error: "."""


def parse_int64(s: bytes | bytearray) -> int | None:
    """parse_int64 reads s as Redis's string2ll does: `0`, or an optional `-` and digits without a
    leading zero, in the signed 64-bit range; None for anything else (signs, spaces, `_`, ...)."""
    n = len(s)
    if n == 0 or n > 20:  # 20 = len("-9223372036854775808"): no int() over a huge digit string
        return None
    if s.isdigit():  # bytes.isdigit is ASCII-only
        if s[0] == 48 and n > 1:
            return None
        v = int(s)
        return v if v <= INT64_MAX else None
    if s[0] == 45 and n > 1 and s[1] != 48 and s[1:].isdigit():
        v = -int(s[1:])
        return v if v >= INT64_MIN else None
    return None


_SPACE = frozenset(b" \t\n\v\f\r")  # isspace(): skipped between words, and after a closing quote
_WORD_END = frozenset(b" \t\n\r")  # what ends an unquoted word (not \v or \f, as in sdssplitargs)
_PLAIN = re.compile(b"[\"'\v\f\x00]")
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_HEX = frozenset(b"0123456789abcdefABCDEF")


def split_args(line: bytes) -> list[bytes]:
    """split_args splits an inline command line into words as Redis's sdssplitargs does; raises
    ProtocolError("unbalanced quotes in request") for an unclosed quote or a closing quote not
    followed by a space."""
    if _PLAIN.search(line) is None:  # no quotes nor odd spaces: plain whitespace splitting
        return line.split()
    line = line.split(b"\0", 1)[0]  # sdssplitargs reads a C string: a NUL ends the line
    out: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i == n:
            return out
        word = bytearray()
        quote = 0  # 0, or the open quote character
        while True:
            if i == n:
                if quote:
                    raise ProtocolError("unbalanced quotes in request")
                break
            ch = line[i]
            if quote == 34:  # "...": escapes
                if ch == 92 and i + 3 < n and line[i + 1] == 120 and line[i + 2] in _HEX and line[i + 3] in _HEX:
                    word.append(int(line[i + 2 : i + 4], 16))
                    i += 4
                    continue
                if ch == 92 and i + 1 < n:
                    word.append(_ESCAPES.get(line[i + 1], line[i + 1]))
                    i += 2
                    continue
                if ch == 34:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise ProtocolError("unbalanced quotes in request")
                    i += 1
                    break
                word.append(ch)
            elif quote == 39:  # '...': only \' is an escape
                if ch == 92 and i + 1 < n and line[i + 1] == 39:
                    word.append(39)
                    i += 2
                    continue
                if ch == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        raise ProtocolError("unbalanced quotes in request")
                    i += 1
                    break
                word.append(ch)
            elif ch in _WORD_END:
                i += 1
                break
            elif ch in (34, 39):
                quote = ch
            else:
                word.append(ch)
            i += 1
        out.append(bytes(word))


class RespParser:
    """RespParser turns a stream of bytes into commands; see the module docstring. Owned by one
    connection's goroutine (not safe to share)."""

    __slots__ = ("_args", "_buf", "_bulk", "_left", "_pos", "_scan", "_size", "commands", "max_args", "max_bulk",
                 "max_command")  # fmt: skip

    def __init__(self, max_bulk: int = 512 << 20, max_args: int = 1 << 20, max_command: int = 1 << 30) -> None:
        for name, v in (("max_bulk", max_bulk), ("max_args", max_args), ("max_command", max_command)):
            if type(v) is not int or v < 1:
                raise ValueError(f"RespParser: {name} must be a positive int, not {v!r}")
        self.max_bulk = max_bulk
        self.max_args = max_args
        self.max_command = max_command
        self.commands = 0  # commands returned so far
        self._buf = bytearray()
        self._pos = 0  # where the next unparsed item starts in _buf
        self._scan = 0  # where an unfinished line's search for its end resumes (>= _pos when used)
        self._args: list[bytes] | None = None  # the arguments of the multibulk command in progress
        self._left = 0  # its arguments still to come
        self._bulk = -1  # the length of the bulk string awaited, -1 while its `$` line is awaited
        self._size = 0  # bytes of the command in progress consumed so far

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """feed appends bytes received from the client."""
        buf = self._buf
        pos = self._pos
        if pos and pos * 2 >= len(buf):
            del buf[:pos]
            self._scan -= pos
            self._pos = 0
        buf += data

    @property
    def partial(self) -> int:
        """partial is the number of bytes received of a command not yet complete (0: none)."""
        return self._size + len(self._buf) - self._pos

    def next(self) -> list[bytes] | None:
        """next returns the next complete command (a non-empty list of arguments), or None until
        more bytes are fed; raises ProtocolError (after which the stream cannot be resynchronised,
        and the connection should be closed)."""
        # The state lives in locals while a command is parsed and is saved only when the command
        # is incomplete (the common pipelined command is read in one pass, like a whole-buffer
        # parser), so a command split across reads resumes where it stopped.
        buf = self._buf
        nbuf = len(buf)
        pos = self._pos
        scan = self._scan  # only the first search of a call can start past pos
        args = self._args
        if args is None:
            while True:  # skip empty commands
                if pos >= nbuf:
                    self._pos = pos
                    return None
                if buf[pos] != 42:  # not '*': an inline command, as typed into telnet
                    self._pos = pos
                    args = self._inline()
                    if args is None:
                        return None
                    if args:
                        self.commands += 1
                        return args
                    pos = self._pos
                    continue
                end = buf.find(b"\r\n", scan if scan > pos else pos)
                if end < 0:
                    self._pos = pos
                    self._incomplete_line("too big mbulk count string")
                    return None
                digits = buf[pos + 1 : end]
                if digits.isdigit() and len(digits) < 10 and (digits[0] != 48 or len(digits) == 1):
                    left = int(digits)  # parse_int64's common case, inline
                else:
                    left = parse_int64(digits)
                if left is None or left > INT_MAX or left > self.max_args:
                    raise ProtocolError("invalid multibulk length")
                size = end + 2 - pos
                pos = end + 2
                if left > 0:
                    break
                # an empty command (*0, *-1): nothing to run, as in Redis
            args = []
            bulk = -1
        else:
            left = self._left
            bulk = self._bulk
            size = self._size
        while left:
            if bulk < 0:
                if pos >= nbuf:
                    break
                if buf[pos] != 36:  # '$'
                    raise ProtocolError(f"expected '$', got '{chr(buf[pos])}'")
                end = buf.find(b"\r\n", scan if scan > pos else pos)
                if end < 0:
                    self._pos = pos
                    self._size = size
                    self._incomplete_line("too big bulk count string")
                    break
                digits = buf[pos + 1 : end]
                if digits.isdigit() and len(digits) < 19 and (digits[0] != 48 or len(digits) == 1):
                    bulk = int(digits)  # parse_int64's common case, inline
                else:
                    bulk = parse_int64(digits)
                if bulk is None or bulk < 0 or bulk > self.max_bulk:
                    raise ProtocolError("invalid bulk length")
                size += end + 2 - pos
                if size + bulk + 2 > self.max_command:
                    raise ProtocolError(f"command larger than {self.max_command} bytes")
                pos = end + 2
            end = pos + bulk
            if end + 2 > nbuf:
                break
            if buf[end] != 13 or buf[end + 1] != 10:
                raise ProtocolError("expected CRLF after bulk string")
            if bulk < 4096:
                args.append(bytes(buf[pos:end]))
            else:
                with memoryview(buf) as view:  # one copy, not two
                    args.append(view[pos:end].tobytes())
            pos = end + 2
            size += bulk + 2
            bulk = -1
            left -= 1
        if left:  # incomplete: keep the place
            self._pos = pos
            if self._scan < pos:
                self._scan = pos
            self._args = args
            self._left = left
            self._bulk = bulk
            self._size = size
            return None
        self._pos = self._scan = pos
        self._args = None
        self._size = 0
        self.commands += 1
        return args

    def _incomplete_line(self, too_big: str) -> None:
        """_incomplete_line: the line at _pos has no end yet; it may not grow past the limits, and
        the search for its end resumes where this one stopped."""
        have = len(self._buf) - self._pos
        if have > MAX_LINE:
            raise ProtocolError(too_big)
        if self._size + have > self.max_command:
            raise ProtocolError(f"command larger than {self.max_command} bytes")
        self._scan = len(self._buf) - 1  # a '\r' last may be followed by the '\n' yet to come

    def _inline(self) -> list[bytes] | None:
        """_inline consumes an inline command line (ending in \\n) and splits it; None if it has
        not arrived whole yet, [] for a blank line."""
        buf = self._buf
        pos = self._pos
        end = buf.find(b"\n", max(self._scan, pos))
        if end < 0:
            if len(buf) - pos > MAX_LINE:
                raise ProtocolError("too big inline request")
            self._scan = len(buf)
            return None
        stop = end - 1 if end > pos and buf[end - 1] == 13 else end
        line = bytes(buf[pos:stop])
        self._pos = self._scan = end + 1
        self._size = 0
        return split_args(line)
