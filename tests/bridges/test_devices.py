"""The devices bridge's reading of uevents and of /sys, on messages and a sysfs tree the test
writes (the kernel's own are in ``tests/system/test_bridges_devices.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from corral.bridges.devices import Devices, enumerate_devices, parse_uevent
from tests.bridges.fakes import RecordingLink


def uevent(action: str, devpath: str, subsystem: str, **keys: str) -> bytes:
    fields = [f"{action}@{devpath}", f"ACTION={action}", f"DEVPATH={devpath}",
              f"SUBSYSTEM={subsystem}", "SEQNUM=7", *(f"{k}={v}" for k, v in keys.items())]  # fmt: skip
    return "\0".join(fields).encode() + b"\0"


def device(sys_root: Path, devpath: str, subsystem: str, kind: str, **keys: str) -> None:
    """A device directory with its uevent file, listed under class/ or bus/."""
    directory = sys_root / devpath.lstrip("/")
    directory.mkdir(parents=True)
    (directory / "uevent").write_text("".join(f"{k}={v}\n" for k, v in keys.items()))
    lister = sys_root / kind / subsystem
    if kind == "bus":
        lister = lister / "devices"
    lister.mkdir(parents=True, exist_ok=True)
    os.symlink(directory, lister / directory.name)
    (directory / "subsystem").symlink_to(sys_root / kind / subsystem)


def test_a_uevent_gives_its_keys_and_kernel() -> None:
    env = parse_uevent(uevent("add", "/devices/virtual/tty/tty3", "tty", MAJOR="4", DEVNAME="tty3"))
    assert env == {"ACTION": "add", "DEVPATH": "/devices/virtual/tty/tty3", "SUBSYSTEM": "tty",
                   "SEQNUM": "7", "MAJOR": "4", "DEVNAME": "tty3", "KERNEL": "tty3"}  # fmt: skip


def test_what_is_not_a_kernel_uevent_or_not_a_variable_is_left_out() -> None:
    assert parse_uevent(b"libudev\0\xfe\xed\xca\xfe") is None
    assert parse_uevent(b"garbage") is None
    env = parse_uevent(uevent("add", "/devices/x", "misc") + b"PATH=/evil\0bad key=1\0")
    assert env is not None and "PATH" not in env and "bad key" not in env


def test_sys_is_read_as_the_uevents_would_tell(tmp_path: Path) -> None:
    device(tmp_path, "/devices/virtual/net/lo", "net", "class", INTERFACE="lo", IFINDEX="1")
    device(tmp_path, "/devices/pnp0/00:04", "pnp", "bus", DRIVER="rtc_cmos")
    assert enumerate_devices(str(tmp_path)) == {
        "/devices/virtual/net/lo": {"SUBSYSTEM": "net", "KERNEL": "lo",
                                    "DEVPATH": "/devices/virtual/net/lo", "INTERFACE": "lo"},
        "/devices/pnp0/00:04": {"SUBSYSTEM": "pnp", "KERNEL": "00:04",
                                "DEVPATH": "/devices/pnp0/00:04"},
    }  # fmt: skip


def test_the_first_report_is_everything_then_each_add_and_remove(tmp_path: Path) -> None:
    device(tmp_path, "/devices/virtual/net/lo", "net", "class")
    link = RecordingLink()
    devices = Devices(link, str(tmp_path))  # type: ignore[arg-type]
    devices.start()
    lo = {"SUBSYSTEM": "net", "KERNEL": "lo", "DEVPATH": "/devices/virtual/net/lo"}
    assert link.take() == [("replace", [("device", lo)])]
    added = uevent("add", "/devices/virtual/net/v0", "net", INTERFACE="v0")
    devices.uevent(added)
    v0 = {"SUBSYSTEM": "net", "KERNEL": "v0", "DEVPATH": "/devices/virtual/net/v0",
          "INTERFACE": "v0"}  # fmt: skip
    assert link.take() == [
        ("hold", ("device", v0)),
        ("emit", ("device-added", parse_uevent(added))),
    ]
    devices.uevent(uevent("add", "/devices/virtual/net/v0/queues/rx-0", "queues"))
    assert [kind for kind, _ in link.take()] == ["emit"]  # /sys lists no queues: not held
    removed = uevent("remove", "/devices/virtual/net/v0", "net", INTERFACE="v0")
    devices.uevent(removed)
    assert link.take() == [("release", ("device", v0)),
                           ("emit", ("device-removed", parse_uevent(removed)))]  # fmt: skip


def test_lost_uevents_are_made_up_for_by_reading_sys_again(tmp_path: Path) -> None:
    device(tmp_path, "/devices/virtual/net/lo", "net", "class")
    device(tmp_path, "/devices/virtual/net/old", "net", "class")
    link = RecordingLink()
    devices = Devices(link, str(tmp_path))  # type: ignore[arg-type]
    devices.start()
    link.take()
    (tmp_path / "class" / "net" / "old").unlink()
    device(tmp_path, "/devices/virtual/net/new", "net", "class")
    devices.resync()
    said = link.take()
    assert [(kind, what[0], what[1]["KERNEL"]) for kind, what in said[:2]] == [
        ("emit", "device-removed", "old"), ("emit", "device-added", "new")]  # fmt: skip
    assert said[2][0] == "replace"
    assert sorted(env["KERNEL"] for _, env in said[2][1]) == ["lo", "new"]
