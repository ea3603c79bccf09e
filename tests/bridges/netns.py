"""A corral daemon inside a network namespace of its own, for the device and network bridges'
tests: ``unshare --net --mount`` with a fresh sysfs mounted inside (so ``/sys/class/net``
shows only that namespace's links), links made with ``ip`` through ``nsenter``. Nothing here
touches the host's interfaces, addresses or routes: every ``ip`` runs in the daemon's
namespace, and refuses to run where that namespace is the test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import missing
from tests.system.conftest import CORRAL, Corral, wait_until

#: Mount a fresh sysfs, run what the test asks first, then become the daemon (same pid).
_SHELL = 'mount -t sysfs sysfs /sys && eval "$1" && shift && exec "$@"'


def need_namespaces() -> None:
    """Skip (fail in CI) where this machine cannot make a network namespace."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        missing("unshare and nsenter (util-linux)")
    if shutil.which("ip") is None:
        missing("ip (iproute2)")
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "sh", "-c", "mount -t sysfs sysfs /sys"],
        capture_output=True,
        timeout=30,
    )
    if probe.returncode != 0:
        missing("network and mount namespaces (root, unshare)")


def up_in_namespace(corral: Corral, before: str = "true") -> int:
    """``corral up`` in a new network and mount namespace, after the shell commands
    ``before`` ran there; the daemon's pid (also the namespace's first process)."""
    need_namespaces()
    with open(corral.output, "ab") as out:
        corral.process = subprocess.Popen(
            ["unshare", "--net", "--mount", "sh", "-c", _SHELL, "sh", before, *CORRAL, "up"],
            cwd=corral.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    wait_until(corral.ping, 20, "the daemon's socket")
    pid = corral.process.pid
    assert namespace_of(pid) != namespace_of(os.getpid()), "the daemon shares our namespace"
    return pid


def namespace_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def ip(pid: int, *args: str) -> str:
    """``ip ARGS`` in the namespace of ``pid``, never in the test's own."""
    if namespace_of(pid) == namespace_of(os.getpid()):
        raise AssertionError(f"refusing to run ip {' '.join(args)} in the host's namespace")
    result = subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "--", "ip", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, f"ip {' '.join(args)}: {result.stderr}"
    return result.stdout


def veth(pid: int, name: str, peer: str) -> None:
    """A pair of linked interfaces (``veth``: the ``dummy`` module may be missing)."""
    ip(pid, "link", "add", name, "type", "veth", "peer", "name", peer)


def schedstat_ns(pid: int) -> int:
    """Nanoseconds ``pid`` has spent on a CPU (the first field of /proc/PID/schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
