"""The devices bridge: the kernel's uevents as ``device-added``/``device-removed`` events and
the ``device(SUBSYSTEM=..., KERNEL=...)`` state.

It listens on ``NETLINK_KOBJECT_UEVENT`` (the kernel's own group, so it works where no udevd
runs; the standard library's socket is all it needs) and, as udev does, subscribes first and
then reads what exists from /sys, so that no device added in between is missed: its first
report is that full set (``replace``). An event carries the uevent's keys (``ACTION``,
``SUBSYSTEM``, ``DEVPATH``, ``INTERFACE``, ...) plus ``KERNEL``, the last part of
``DEVPATH``; the state holds with ``SUBSYSTEM``, ``KERNEL``, ``DEVPATH`` and, where the
device has them, ``DEVNAME``, ``DEVTYPE`` and ``INTERFACE``. If the kernel drops messages
because the bridge fell behind (``ENOBUFS``), it reads /sys again and reports the difference.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import socket
import sys
from collections.abc import Iterator, Mapping

from corral.bridges.link import Link, notify_ready

NETLINK_KOBJECT_UEVENT = 15
#: The multicast group the kernel sends its uevents to (udevd re-sends on group 2).
KERNEL_GROUP = 1
#: Room for a burst of uevents (a USB hub plugged in) before the kernel drops any.
RECEIVE_BUFFER = 8 * 1024 * 1024

#: The keys a held ``device`` state carries besides SUBSYSTEM, KERNEL and DEVPATH: what
#: names the device for its whole life (DRIVER, say, comes and goes with a bind).
HELD_KEYS = ("DEVNAME", "DEVTYPE", "INTERFACE")

#: A key a condition could name (``core/values.py``'s ENV_NAME, not imported: a bridge loads
#: as little as it can).
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

STATE = "device"
ADDED, REMOVED = "device-added", "device-removed"

#: Where the kernel shows its devices; a test may point it elsewhere.
SYS = "/sys"


def _keys(fields: list[bytes]) -> dict[str, str]:
    env: dict[str, str] = {}
    for field in fields:
        key, sep, value = field.decode("utf-8", "replace").partition("=")
        # No event key is named PATH (DESIGN.md): it would replace a job's PATH.
        if sep and ENV_NAME.match(key) and key != "PATH":
            env[key] = value
    return env


def parse_uevent(data: bytes) -> dict[str, str] | None:
    """A kernel uevent (``add@/devices/...\0ACTION=add\0...``) as its keys plus KERNEL;
    None for what is not a kernel uevent (udevd's ``libudev`` messages, say)."""
    header, _, body = data.partition(b"\0")
    if b"@" not in header or header.startswith(b"libudev"):
        return None
    env = _keys(body.split(b"\0"))
    if "ACTION" not in env or "DEVPATH" not in env:
        return None
    env["KERNEL"] = env["DEVPATH"].rsplit("/", 1)[-1]
    return env


def held(env: Mapping[str, str]) -> dict[str, str]:
    """What the ``device`` state of a device holds with."""
    state = {"SUBSYSTEM": env.get("SUBSYSTEM", ""), "KERNEL": env["KERNEL"],
             "DEVPATH": env["DEVPATH"]}  # fmt: skip
    state.update({key: env[key] for key in HELD_KEYS if key in env})
    return state


def _entries(directory: str) -> list[str]:
    try:
        return [os.path.join(directory, name) for name in os.listdir(directory)]
    except OSError:
        return []


def _device_dirs(sys_root: str) -> Iterator[str]:
    """Every device directory a subsystem lists (``class/*/*``, ``bus/*/devices/*``)."""
    for subsystem in _entries(os.path.join(sys_root, "class")):
        yield from _entries(subsystem)
    for bus in _entries(os.path.join(sys_root, "bus")):
        yield from _entries(os.path.join(bus, "devices"))


def read_device(sys_root: str, link: str) -> dict[str, str] | None:
    """One device as a uevent would tell of it: its uevent file's keys, SUBSYSTEM, DEVPATH
    and KERNEL; None if it went away meanwhile."""
    real = os.path.realpath(link)
    try:
        with open(os.path.join(real, "uevent"), "rb") as handle:
            text = handle.read()
        subsystem = os.path.basename(os.readlink(os.path.join(real, "subsystem")))
    except OSError:
        return None
    env = _keys(text.splitlines())
    env["SUBSYSTEM"] = subsystem
    env["DEVPATH"] = real[len(os.path.realpath(sys_root)) :]
    env["KERNEL"] = os.path.basename(real)
    return env


def enumerate_devices(sys_root: str = SYS) -> dict[str, dict[str, str]]:
    """Every device there is now: DEVPATH -> its held state."""
    found: dict[str, dict[str, str]] = {}
    for path in _device_dirs(sys_root):
        env = read_device(sys_root, path)
        if env is not None:
            found[env["DEVPATH"]] = held(env)
    return found


def listed_subsystem(sys_root: str, subsystem: str) -> bool:
    """Whether /sys lists the devices of ``subsystem``: only those are held, so that what a
    restarted bridge reads from /sys is what it heard of before (a net device's ``queues``
    have uevents, but no list)."""
    return any(os.path.isdir(os.path.join(sys_root, kind, subsystem)) for kind in ("class", "bus"))


def open_socket() -> socket.socket:
    """Subscribed to the kernel's uevents, non-blocking."""
    sock = socket.socket(
        socket.AF_NETLINK,
        socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
        NETLINK_KOBJECT_UEVENT,
    )
    for option in (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
            break
        except OSError:  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
            continue
    sock.bind((0, KERNEL_GROUP))
    return sock


class Devices:
    """What exists, and the reports of each change."""

    def __init__(self, link: Link, sys_root: str = SYS) -> None:
        self._link = link
        self._sys = sys_root
        self.devices: dict[str, dict[str, str]] = {}

    def start(self) -> None:
        """The first report: everything there is (subscribe before calling this)."""
        self.devices = enumerate_devices(self._sys)
        self._link.replace_states((STATE, env) for env in self.devices.values())

    def readable(self, sock: socket.socket) -> None:
        while True:
            try:
                data, (sender, _groups) = sock.recvfrom(1 << 16)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno != errno.ENOBUFS:
                    raise
                self.resync()
                continue
            if sender == 0:  # the kernel, not a process posing as it
                self.uevent(data)

    def uevent(self, data: bytes) -> None:
        env = parse_uevent(data)
        if env is None:
            return
        action = env["ACTION"]
        devpath = env["DEVPATH"]
        if action == "add":
            self._appeared(env)
            self._link.emit(ADDED, env)
        elif action == "remove":
            self._gone(devpath)
            self._link.emit(REMOVED, env)
        elif action == "move" and "DEVPATH_OLD" in env:
            self._gone(env["DEVPATH_OLD"])
            self._appeared(env)

    def _appeared(self, env: Mapping[str, str]) -> None:
        devpath = env["DEVPATH"]
        if devpath in self.devices or not listed_subsystem(self._sys, env.get("SUBSYSTEM", "")):
            return
        self.devices[devpath] = state = held(env)
        self._link.hold(STATE, state)

    def _gone(self, devpath: str) -> None:
        state = self.devices.pop(devpath, None)
        if state is not None:
            self._link.release(STATE, state)

    def resync(self) -> None:
        """Messages were lost: read /sys again, and report what changed meanwhile."""
        print("devices: the kernel dropped uevents; reading /sys again", file=sys.stderr)
        before, self.devices = self.devices, enumerate_devices(self._sys)
        for devpath, env in before.items():
            if devpath not in self.devices:
                self._link.emit(REMOVED, {**env, "ACTION": "remove"})
        for devpath, env in self.devices.items():
            if devpath not in before:
                self._link.emit(ADDED, {**env, "ACTION": "add"})
        self._link.replace_states((STATE, env) for env in self.devices.values())


async def serve(link: Link) -> None:
    loop = asyncio.get_running_loop()
    with open_socket() as sock:
        devices = Devices(link)
        devices.start()
        notify_ready()
        loop.add_reader(sock.fileno(), devices.readable, sock)
        try:
            await loop.create_future()  # until cancelled
        finally:
            loop.remove_reader(sock.fileno())
