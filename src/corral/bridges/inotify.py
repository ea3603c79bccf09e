"""inotify through ctypes on the C library: the three calls and the event records, nothing
more (``man 7 inotify``). No package is needed for that much."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from collections.abc import Iterator
from typing import NamedTuple

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000

#: What a watched directory reports: its entries made, changed, moved or gone, and itself.
DIRECTORY_EVENTS = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE
    | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR
)  # fmt: skip

_EVENT = struct.Struct("=iIII")


class Event(NamedTuple):
    wd: int
    mask: int
    name: str  # "" for an event of the watched directory itself


def parse_events(data: bytes) -> Iterator[Event]:
    offset = 0
    while offset + _EVENT.size <= len(data):
        wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
        start = offset + _EVENT.size
        name = data[start : start + length].split(b"\0", 1)[0]
        yield Event(wd, mask, os.fsdecode(name))
        offset = start + length


class Inotify:
    """One inotify instance, non-blocking; ``fileno`` for the loop."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise self._error("inotify_init1")
        self.fd = int(fd)

    def fileno(self) -> int:
        return self.fd

    def add(self, path: str, mask: int = DIRECTORY_EVENTS) -> int:
        """Watch a path; the watch descriptor (the same one for a path watched already)."""
        wd = self._libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask))
        if wd < 0:
            raise self._error(path)
        return int(wd)

    def remove(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self.fd, wd)  # gone already: nothing to do

    def read(self) -> list[Event]:
        """What has happened since the last read; [] when nothing has."""
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        return list(parse_events(data))

    def close(self) -> None:
        os.close(self.fd)

    @staticmethod
    def _error(what: str) -> OSError:
        number = ctypes.get_errno()
        return OSError(number, f"inotify: {os.strerror(number)}", what)
