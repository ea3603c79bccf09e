"""An alarm on the wall clock that also says when the clock was set: Linux's ``timerfd`` on
``CLOCK_REALTIME`` with ``TFD_TIMER_CANCEL_ON_SET`` (the way systemd follows the clock).

asyncio's timers run on the monotonic clock, which a calendar timer must not: set forward,
the wall clock reaches 03:00 long before the monotonic one would. An absolute ``timerfd``
expires when the wall clock reaches the moment, however it got there, and with
``CANCEL_ON_SET`` its fd also turns readable when the clock is set, so the calendar is looked
at again. It is one fd on the bridge's loop: nothing runs while nothing is due. (Python 3.13
has ``os.timerfd_create``; this uses libc through ctypes for 3.11.)
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Literal

CLOCK_REALTIME = 0
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1
TFD_TIMER_CANCEL_ON_SET = 2


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_settime.argtypes = [
    ctypes.c_int,
    ctypes.c_int,
    ctypes.POINTER(_Itimerspec),
    ctypes.POINTER(_Itimerspec),
]


def _check(result: int) -> int:
    if result < 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))
    return result


class WallAlarm:
    """One alarm at an epoch moment; ``fileno`` is readable when it rings or the clock is set."""

    def __init__(self) -> None:
        self._fd = _check(_libc.timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC))
        self.at: float | None = None

    def fileno(self) -> int:
        return self._fd

    def arm(self, at: float | None) -> None:
        """Ring at the epoch moment ``at`` (at once if it is past); None: never."""
        self.at = at
        spec = _Itimerspec()
        flags = 0
        if at is not None:
            seconds = max(at, 1.0)  # all zero would disarm it
            spec.it_value.tv_sec = int(seconds)
            spec.it_value.tv_nsec = min(int((seconds - int(seconds)) * 1e9), 999_999_999)
            flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET
        _check(_libc.timerfd_settime(self._fd, flags, ctypes.byref(spec), None))

    def read(self) -> Literal["rang", "clock set"] | None:
        """What made the fd readable; None when nothing did."""
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return None
        except OSError as exc:
            if exc.errno == errno.ECANCELED:
                return "clock set"
            raise
        return "rang"

    def close(self) -> None:
        os.close(self._fd)
