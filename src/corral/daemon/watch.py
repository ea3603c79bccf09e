"""Notice config sources changing on disk: inotify, read from the loop, debounced.

The kernel wakes the loop only when something changes in a watched directory; a timer runs
only between a change and the reload it causes (``DEBOUNCE`` after the last change), so an
editor's burst of writes, renames and deletes gives one reload, and an idle daemon has no
timer at all. Directories are watched rather than files, because editors and ``mv`` replace
a file by renaming another over it, which a watch on the old file would miss.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
from collections.abc import Callable

# Not IN_MODIFY: it comes at every write(), so a file written in pieces would be reloaded
# half-written; IN_CLOSE_WRITE (or the rename an editor does) says the writer is done.
IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = (
    IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
    | IN_MOVE_SELF | IN_ATTRIB
)  # fmt: skip

#: Seconds of quiet after the last change before the reload.
DEBOUNCE = 0.2
_EVENT = struct.Struct("iIII")


class SourceWatch:
    """Calls ``on_change`` once sources have been quiet for ``debounce`` seconds."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sources: list[str],
        on_change: Callable[[], None],
        debounce: float = DEBOUNCE,
    ) -> None:
        self._loop = loop
        self._on_change = on_change
        self._debounce = debounce
        self._timer: asyncio.TimerHandle | None = None
        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        # wd -> (directory, names that matter there, or None for every *.toml)
        self._watches: dict[int, tuple[str, set[str] | None]] = {}
        for source in sources:
            if os.path.isdir(source):
                self._watch(source, None)
            else:
                directory, name = os.path.split(os.path.abspath(source))
                self._watch(directory, {name})
        loop.add_reader(self._fd, self._readable)

    def _watch(self, directory: str, names: set[str] | None) -> None:
        wd = self._add_watch(self._fd, os.fsencode(directory), MASK)
        if wd < 0:
            return  # gone or unreadable: a reload will say what is wrong with it
        old = self._watches.get(wd)
        if old is not None and old[1] is not None and names is not None:
            names = old[1] | names
        elif old is not None:
            names = None
        self._watches[wd] = (directory, names)

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, 64 * 1024)
        except BlockingIOError:
            return
        relevant = False
        offset = 0
        while offset + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
            raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
            offset += _EVENT.size + length
            name = os.fsdecode(raw.rstrip(b"\0"))
            watched = self._watches.get(wd)
            if watched is None:
                continue
            names = watched[1]
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF):
                relevant = True
            elif names is None:
                relevant |= name.endswith(".toml") and not name.startswith(".")
            else:
                relevant |= name in names
        if relevant:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_later(self._debounce, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._on_change()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
