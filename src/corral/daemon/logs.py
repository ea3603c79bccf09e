"""Output capture: pipes read without blocking, per-service files with rotation, a memory
ring for ``corral logs``, and a fan-out to followers that never waits on a slow reader.

Each process writes into a pipe whose read end the loop watches. A read takes what is there
(at most READ_SIZE) and splits it into lines; a line longer than MAX_LINE is cut into pieces,
so a service that prints without newlines cannot grow a buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

from msgspec import Struct

from corral.core.definition import LogConfig

READ_SIZE = 65536
MAX_LINE = 16384


class LogLine(Struct, frozen=True):
    """One line of output, as kept in the ring and sent to followers."""

    time: float
    service: str
    instance: str
    process: str
    text: str

    def as_dict(self) -> dict[str, object]:
        return {
            "time": self.time,
            "service": self.service,
            "instance": self.instance,
            "process": self.process,
            "text": self.text,
        }


Follower = Callable[[LogLine], None]


class RotatingFile:
    """An append-only file that rotates to NAME.1 .. NAME.keep once it passes max_size.

    Only the files written most recently stay open (``OPEN_LIMIT`` of them): each fd corral
    holds is copied into every child it spawns and closed again at its exec, and a thousand
    idle log files held open made every respawn 0.7 ms slower."""

    __slots__ = ("_fd", "_size", "keep", "max_size", "path")
    OPEN_LIMIT = 64
    _open_files: OrderedDict[RotatingFile, None] = OrderedDict()  # least recent first
    _made: ClassVar[set[str]] = set()  # directories made (or found) already

    def __init__(self, path: str, max_size: int, keep: int) -> None:
        self.path = path
        self.max_size = max_size
        self.keep = keep
        self._fd: int | None = None
        self._size = -1  # not known until the file is first opened, at its first write
        directory = os.path.dirname(path) or "."
        if directory not in RotatingFile._made:  # one makedirs per directory, not per file
            try:
                os.makedirs(directory, exist_ok=True)
                RotatingFile._made.add(directory)
            except OSError:  # its writes will fail the same way, and lose only their lines
                pass

    def write_lines(self, lines: list[bytes]) -> None:
        """Append lines, rotating between two lines whenever the next would pass max_size;
        one write per file segment, not per line."""
        pending: list[bytes] = []
        pending_size = 0
        if self._size < 0:
            try:
                self._opened()
            except OSError:  # as a full disk: the daemon goes on, the ring has the lines
                return
        for line in lines:
            if self._size + pending_size + len(line) > self.max_size and self._size + pending_size:
                self._flush(pending)
                pending, pending_size = [], 0
                self._rotate()
            pending.append(line)
            pending_size += len(line)
        self._flush(pending)

    def _flush(self, pending: list[bytes]) -> None:
        if not pending:
            return
        data = b"".join(pending)
        try:
            os.write(self._opened(), data)
            self._size += len(data)
        except OSError:
            pass  # a full disk must not take the daemon down; the ring still has the line

    def _opened(self, flags: int = os.O_APPEND) -> int:
        """The file's fd, opened now if it is not; the least recently written is closed
        when too many are open."""
        recent = RotatingFile._open_files
        if self._fd is None:
            flags |= os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
            try:
                self._fd = os.open(self.path, flags, 0o640)
            except FileNotFoundError:  # its directory went away since: make it again
                os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
                self._fd = os.open(self.path, flags, 0o640)
            if self._size < 0:
                self._size = os.fstat(self._fd).st_size
            while len(recent) >= self.OPEN_LIMIT:
                recent.popitem(last=False)[0]._release()
        recent[self] = None
        recent.move_to_end(self)
        return self._fd

    def _release(self) -> None:
        RotatingFile._open_files.pop(self, None)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _rotate(self) -> None:
        """Move the file aside (or empty it, with ``keep`` 0). A failure costs this file
        its rotation, never the caller an exception: the next write tries again."""
        self._release()
        try:
            if self.keep > 0:
                self._shift_kept()
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile: none to keep
                    os.replace(self.path, f"{self.path}.1")
                self._opened()
            else:
                self._opened(os.O_TRUNC)
        except OSError:
            pass  # as a full disk: the ring still has the lines
        self._size = 0

    def _shift_kept(self) -> None:
        """NAME.1 to NAME.2 and on, as far as they run without a gap (NAME.keep dropped):
        a stat per file, not per number up to ``keep``, which a config may make 10**12."""
        found = 0
        while found < self.keep and os.path.exists(f"{self.path}.{found + 1}"):
            found += 1
        for index in range(min(found, self.keep - 1), 0, -1):
            os.replace(f"{self.path}.{index}", f"{self.path}.{index + 1}")

    def close(self) -> None:
        self._release()


class ServiceLog:
    """Everything one service printed: the ring, the file, and who follows it. The ring and
    the followers get a line at once; the file at the end of the loop's turn, in one write
    (a respawn's spawn does not wait behind its log line)."""

    __slots__ = ("_unwritten", "file", "followers", "limit", "name", "ring")

    def __init__(self, name: str, config: LogConfig, log_dir: str) -> None:
        self.name = name
        self.limit = max(config.lines, 1)
        self.ring: list[LogLine] = []  # the last ``limit`` lines, and at most a quarter more
        self.followers: dict[Follower, None] = {}
        self.file: RotatingFile | None = self._open(config, log_dir)
        self._unwritten: list[bytes] | None = None  # for the file, until the turn ends

    def _open(self, config: LogConfig, log_dir: str) -> RotatingFile | None:
        if config.file is None:
            return None
        path = config.file or os.path.join(log_dir, f"{self.name}.log")
        return RotatingFile(path, config.max_size, config.keep)

    def reconfigure(self, config: LogConfig, log_dir: str) -> None:
        """A reload changed ``log``: keep the lines and followers, reopen the file."""
        self.limit = max(config.lines, 1)
        del self.ring[: -self.limit]
        self.close()
        self.file = self._open(config, log_dir)

    def add(self, lines: list[LogLine]) -> None:
        ring = self.ring
        ring.extend(lines)
        if len(ring) > self.limit + max(self.limit // 4, 16):
            del ring[: -self.limit]  # a list, not a deque: 0.6 KB less for each quiet service
        if self.file is not None:
            stamp = clock_text("%Y-%m-%dT%H:%M:%S", lines[0].time)
            encoded = [f"{stamp} {_tag(ln)}{ln.text}\n".encode("utf-8", "replace") for ln in lines]
            if self._unwritten is not None:
                self._unwritten.extend(encoded)
            else:
                self._unwritten = encoded
                try:
                    asyncio.get_running_loop().call_soon(self.flush)
                except RuntimeError:  # no loop (a test, a tool): now
                    self.flush()
        for follower in list(self.followers):
            for line in lines:
                follower(line)

    def tail(self, count: int | None, instance: str | None = None) -> list[LogLine]:
        ring = self.ring[-self.limit :]
        lines = [ln for ln in ring if instance is None or ln.instance == instance]
        return lines if count is None else lines[-count:] if count else []

    def flush(self) -> None:
        unwritten, self._unwritten = self._unwritten, None
        if unwritten and self.file is not None:
            self.file.write_lines(unwritten)

    def close(self) -> None:
        self.flush()
        if self.file is not None:
            self.file.close()


_clock_texts: dict[tuple[str, int], str] = {}


def clock_text(form: str, when: float) -> str:
    """``when`` as local time in ``form``, made once per second and form: the thousand
    lines of a start-up burst share one ``strftime``."""
    key = (form, int(when))
    text = _clock_texts.get(key)
    if text is None:
        if len(_clock_texts) > 16:
            _clock_texts.clear()
        text = _clock_texts[key] = time.strftime(form, time.localtime(when))
    return text


def _tag(line: LogLine) -> str:
    parts = [
        p
        for p in (
            line.instance and f":{line.instance}",
            line.process != "main" and f"[{line.process}]",
        )
        if p
    ]
    return ("".join(parts) + " ") if parts else ""


class Capture:
    """Reads one process's output pipe on the loop and hands complete lines to ``sink``."""

    __slots__ = ("_fd", "_loop", "_on_close", "_partial", "_sink")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        sink: Callable[[list[str]], None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._loop = loop
        self._fd = fd
        self._sink = sink
        self._on_close = on_close
        self._partial = b""
        os.set_blocking(fd, False)
        # Watched from the end of this turn of the loop, which is when reading could start
        # anyway: a burst of spawns (a cold start) reaches its last exec without waiting on
        # a thousand registrations (9 µs each).
        loop.call_soon(self._watch)

    def _watch(self) -> None:
        if self._fd >= 0:
            self._loop.add_reader(self._fd, self._read)

    def _read(self) -> bool:
        """One read, its complete lines to the sink; False once the pipe has nothing more
        for now (or ever: then it is closed)."""
        try:
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.close()
            return False
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        while len(self._partial) > MAX_LINE:
            complete.append(self._partial[:MAX_LINE])
            self._partial = self._partial[MAX_LINE:]
        if complete:
            self._sink([c.decode("utf-8", "replace").rstrip("\r") for c in complete])
        return True

    def drain(self, reads: int = 16) -> None:
        """Take in what the pipe holds now (its writer has exited, say), without waiting
        for the loop; at most ``reads`` reads, in case others still write."""
        for _ in range(reads):
            if self._fd < 0 or not self._read():
                return

    def close(self) -> None:
        """Stop reading; ``on_close`` is told before the fd is unwatched and closed, so a
        respawn waiting on this pipe's end does not wait on that bookkeeping too (60 µs of
        cold loop at a thousand services). The fd stays open until then, so no new pipe
        made meanwhile can take its number."""
        fd = self._fd
        if fd < 0:
            return
        self._fd = -1
        if self._partial:
            self._sink([self._partial.decode("utf-8", "replace")])
            self._partial = b""
        try:
            if self._on_close is not None:
                self._on_close()
        finally:
            self._loop.remove_reader(fd)
            os.close(fd)


COLOURS = ("36", "33", "32", "35", "34", "91", "96", "93", "92", "95", "94")


class Console:
    """Honcho-style lines on corral's stdout in the foreground: ``HH:MM:SS name | text``.

    Coloured per service only on a terminal. Writes go through a non-blocking transport when
    stdout is a pipe or terminal; past HIGH_WATER buffered bytes lines are dropped (and
    counted) rather than stalling the loop behind a slow terminal. Lines of one turn of the
    loop go out in one write at its end: after the turn's spawns, not before them, and one
    system call for the thousand "running" lines of a cold start.
    """

    HIGH_WATER = 4 * 1024 * 1024

    def __init__(self, fd: int, colour: bool) -> None:
        self._fd = fd
        self._colour = colour
        self._width = 6
        self._colours: dict[str, str] = {}
        self._transport: asyncio.WriteTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[bytes] = []
        self.dropped = 0

    async def open(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        try:
            pipe = os.fdopen(os.dup(self._fd), "wb", buffering=0)
            self._transport, _ = await loop.connect_write_pipe(asyncio.Protocol, pipe)
        except (ValueError, OSError):
            self._transport = None  # a regular file: plain writes are fine

    def _name_colour(self, name: str) -> str:
        if name not in self._colours:
            self._colours[name] = COLOURS[len(self._colours) % len(COLOURS)]
        return self._colours[name]

    def lines(self, name: str, texts: list[str], when: float | None = None) -> None:
        self._width = max(self._width, len(name))
        stamp = clock_text("%H:%M:%S", time.time() if when is None else when)
        label = name.ljust(self._width)
        if self._colour:
            code = "90" if name == "corral" else self._name_colour(name)
            prefix = f"\x1b[{code}m{stamp} {label} |\x1b[0m "
        else:
            prefix = f"{stamp} {label} | "
        self.write("".join(f"{prefix}{text}\n" for text in texts).encode("utf-8", "replace"))

    def write(self, data: bytes) -> None:
        if self._loop is None:
            self._write(data)
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """Write what this turn of the loop said (also called before the daemon exits)."""
        if self._pending:
            data = b"".join(self._pending)
            self._pending = []
            self._write(data)

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            if self._transport.is_closing():
                return
            if self._transport.get_write_buffer_size() > self.HIGH_WATER:
                self.dropped += 1
                return
            self._transport.write(data)
            return
        try:
            os.write(self._fd, data)
        except OSError:
            pass
