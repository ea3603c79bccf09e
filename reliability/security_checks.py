"""The checks of the security part, each against a running daemon (``security.py`` runs
them; tests/reliability/test_security.py too, one by one)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reliability.harness import Daemon, Report, wait_until

REPORTER = Path(__file__).resolve().parent / "reporter.py"
#: A uid nobody has (no passwd entry): "another uid created in the test".
OTHER_UID = 54321
ALLOWED_MARKS = frozenset({"CORRAL_JOB", "CORRAL_INSTANCE", "CORRAL_SOCKET", "CORRAL_CALL_CHAIN"})
#: (and an action's ``CORRAL_ACTION``, which docs/config.md gives it)


def python_for_others() -> str:
    """A python another user may run (this one may live in root's home)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("no python3 in /usr/bin or /usr/local/bin for another user to run")


def reporting_config(python: str, reporter: str, home: str) -> str:
    """A service for every way corral starts a process, each running the reporter."""
    run = f'"{python}", "-I", "{reporter}"'
    return f"""\
[service.plain]
exec = [{run}, "stay"]

[service.script]
script = "exec {python} -I {reporter} stay"

[service.cwd]
exec = [{run}, "stay"]
cwd = "/"

[service.umask]
exec = [{run}, "stay"]
umask = "027"

[service.notify]
exec = [{run}, "stay"]
type = "notify"

[service.readyfd]
exec = [{run}, "--ready-fd", "5", "stay"]
ready_fd = 5

[service.socket]
exec = [{run}, "stay"]
sockets = [{{ listen = "unix:{home}/service.sock" }}]

[service.hooked]
exec = [{run}, "stay"]
pre_start = [{run}]

[service.acting]
exec = ["sleep", "3600"]
actions = {{ report = [{run}] }}

[service.inst]
exec = [{run}, "stay", "${{K}}"]
instance = "${{K}}"

[service.nobody]
exec = [{run}, "stay"]
user = "nobody"
"""


#: fds each service's keys ask for, beyond 0, 1 and 2.
GIVEN_FDS = {"readyfd": {5}, "socket": {3}}
EXPECTED_REPORTS = {
    ("plain", "", "main"), ("script", "", "main"), ("cwd", "", "main"), ("umask", "", "main"),
    ("notify", "", "main"), ("readyfd", "", "main"), ("socket", "", "main"),
    ("hooked", "", "main"), ("hooked", "", "pre-start"), ("inst", "k1", "main"),
    ("acting", "", "action"), ("nobody", "", "main"),
}  # fmt: skip


def reports(daemon: Daemon) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The REPORT lines in the daemon's logs, by (service, instance, process)."""
    found = {}
    for line in daemon.request("logs", lines=None)["result"]:
        if line["text"].startswith("REPORT "):
            key = (line["service"], line["instance"], line["process"])
            found[key] = json.loads(line["text"][7:])
    return found


def _settle(daemon: Daemon) -> dict[tuple[str, str, str], dict[str, Any]]:
    reply = daemon.request("start", targets=[{"name": "inst", "env": {"K": "k1"}}], timeout=60)
    assert reply["ok"], reply
    reply = daemon.request("wait", timeout=30)
    assert reply["ok"], reply
    action = daemon.request("action", target={"name": "acting"}, action="report", timeout=60)
    assert action["ok"], action

    def all_in() -> dict[tuple[str, str, str], dict[str, Any]] | None:
        found = reports(daemon)
        return found if found.keys() >= EXPECTED_REPORTS - {("acting", "", "action")} else None

    found = wait_until(all_in, 30, "every process's report")
    text = action["result"]["output"]
    found[("acting", "", "action")] = json.loads(text[text.index("REPORT ") + 7 :].split("\n")[0])
    return found


def what_processes_get(daemon: Daemon, report: Report, label: str) -> None:
    """No fd and no CORRAL_* variable beyond what DESIGN.md and the keys give."""
    found = _settle(daemon)
    extra_fds, bad_marks = [], []
    for (service, instance, process), seen in sorted(found.items()):
        allowed = {0, 1, 2} | GIVEN_FDS.get(service, set())
        fds = {int(fd): target for fd, target in seen["fds"].items()}
        if set(fds) - allowed or fds.get(0) != "/dev/null":
            extra_fds.append(f"{service}:{instance} {process}: {fds}")
        marks = seen["corral"]
        given = ALLOWED_MARKS | ({"CORRAL_ACTION"} if process == "action" else set())
        for key in set(marks) - given:
            bad_marks.append(f"{service} {process}: {key}")
        expected = {"CORRAL_JOB": service, "CORRAL_INSTANCE": instance,
                    "CORRAL_SOCKET": daemon.socket}  # fmt: skip
        if any(marks.get(k) != v for k, v in expected.items()):
            bad_marks.append(f"{service}:{instance} {process}: {marks}")
    report.figure(f"{label}: processes examined", f"{len(found)} ({len(EXPECTED_REPORTS)} ways)")
    report.check(f"{label}: every way of starting a process examined",
                 found.keys() >= EXPECTED_REPORTS, EXPECTED_REPORTS - found.keys())  # fmt: skip
    report.check(f"{label}: no fd beyond 0-2 and those asked for", not extra_fds, extra_fds[:3])
    report.check(f"{label}: CORRAL_JOB/INSTANCE/SOCKET right, no other CORRAL_* of corral's",
                 not bad_marks, bad_marks[:3])  # fmt: skip


def socket_mode(daemon: Daemon, report: Report) -> None:
    info = os.stat(daemon.socket)
    mode = stat.S_IMODE(info.st_mode)
    report.figure("socket mode, owner", f"{mode:04o}, uid {info.st_uid}")
    report.check(
        "the socket is 0600 and corral's own",
        stat.S_ISSOCK(info.st_mode) and mode == 0o600 and info.st_uid == os.getuid(),
        f"{mode:04o} uid {info.st_uid}",
    )


@contextlib.contextmanager
def opened_up(daemon: Daemon) -> Iterator[None]:
    """The socket and its directory open to every user, for as long as the block runs."""
    directory = os.path.dirname(daemon.socket)
    modes = {path: stat.S_IMODE(os.stat(path).st_mode) for path in (directory, daemon.socket)}
    os.chmod(directory, 0o755)
    os.chmod(daemon.socket, 0o666)
    try:
        yield
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)


def connect_as(uid: int, path: str) -> str:
    """What a process of ``uid`` (and that gid, no other group) gets from a ``ping`` on
    ``path``: the lines the daemon sent before closing, or the error."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                sock.sendall(b'{"cmd": "ping"}\n')
                got = sock.makefile("rb").read()
            os.write(write, got or b"EOF without a line")
        except BaseException as exc:  # whatever it is, the parent is told
            os.write(write, f"{exc.__class__.__name__}: {exc}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        got = reader.read()
    os.waitpid(pid, 0)
    return got.decode("utf-8", "replace")


def other_uid(daemon: Daemon, report: Report, attempts: int) -> None:
    """Another uid is refused on every connection, even with the socket opened to all."""
    with opened_up(daemon):
        outcomes = [connect_as(OTHER_UID, daemon.socket) for _ in range(attempts)]
        served = daemon.request("ping")["ok"]
    refused = [o for o in outcomes if "permission denied: uid 54321" in o and "pong" not in o]
    others = [o for o in outcomes if o not in refused]
    report.figure("connections of another uid (refused / all)", f"{len(refused)} / {attempts}")
    report.check("another uid is refused on every connection", not others, others[:3])
    report.check("corral's own uid is served meanwhile", served)


def user_service(daemon: Daemon, report: Report) -> None:
    """``user = "nobody"``: that uid, no way to the socket, refused when given one."""
    nobody = int(_field("/etc/passwd", "nobody", 2))
    first = reports(daemon)[("nobody", "", "main")]
    pid = next(r["pid"] for r in daemon.status() if r["name"] == "nobody")
    with open(f"/proc/{pid}/status") as status:
        uids = next(line.split()[1:] for line in status if line.startswith("Uid:"))
    report.check("a user= service runs as that uid", first["uid"] == nobody and
                 uids == [str(nobody)] * 4, (first["uid"], uids))  # fmt: skip
    report.check("a user= service cannot reach the socket", "PermissionError" in first["reach"],
                 first["reach"])  # fmt: skip
    with opened_up(daemon):
        reply = daemon.request("restart", targets=[{"name": "nobody"}], timeout=60)
        assert reply["ok"], reply

        def fresh() -> dict[str, Any] | None:
            seen = reports(daemon)[("nobody", "", "main")]
            return seen if seen != first else None

        again = wait_until(fresh, 30, "the restarted service's report")
    report.figure("a user= service given the way to the socket gets", again["reach"][:100])
    report.check("a user= service is refused once it can reach the socket",
                 "permission denied" in again["reach"] and "pong" not in again["reach"],
                 again["reach"])  # fmt: skip


def _field(path: str, name: str, index: int) -> str:
    with open(path) as handle:
        return next(line.split(":")[index] for line in handle if line.split(":")[0] == name)


#: Instance values and names that try to leave corral's directories.
HOSTILE = ["../../../escape-{mark}", "/tmp/escape-{mark}", "..", ".", "a/../../escape-{mark}",
           "%2F..%2Fescape-{mark}", "x" * 300 + "{mark}", "-rf {mark}", "~root/{mark}",
           "$(touch {mark})", "\u202e{mark}", " {mark} "]  # fmt: skip


def hostile_names(daemon: Daemon, report: Report) -> None:
    """Hostile instance values and ``logs`` names: nothing made or read outside."""
    mark = f"corral-mark-{os.getpid()}"
    replies = []
    for value in HOSTILE:
        key = value.format(mark=mark)
        target = {"name": "inst", "env": {"K": key}}
        replies.append(daemon.request("start", targets=[target], timeout=60))
        replies.append(daemon.request("logs", targets=[{"name": "inst", "instance": key}]))
    for name in ("../../../../etc/passwd", "/etc/passwd", "inst/../../etc", ".corral/../x"):
        replies.append(daemon.request("logs", name=name))
        replies.append(daemon.request("config_show", name=name))
        replies.append(daemon.request("action", target={"name": "acting"}, action=name))
    unclear = [r for r in replies if not r["ok"] and r["error"]["code"] not in (1, 2, 3)]
    leaked = [r for r in replies if "root:x:0:0" in json.dumps(r)]
    stop = daemon.request("stop", targets=[{"name": "inst"}], timeout=60)
    outside = _marked_outside(mark, daemon)
    report.figure("hostile instance values and names tried", len(replies))
    report.check("hostile names get a reply or a clear error", not unclear, unclear[:3])
    report.check("no file outside corral's read through a name", not leaked, leaked[:1])
    report.check("nothing made outside corral's directories", not outside, outside[:5])
    report.check("the hostile instances stop", stop["ok"], stop)


def _marked_outside(mark: str, daemon: Daemon) -> list[str]:
    """Paths whose names carry ``mark`` anywhere corral could have made one, but inside
    the daemon's own directory and cgroup."""
    own = str(daemon.root)
    bases = {"/tmp", "/var/tmp", "/run", "/dev/shm", str(daemon.root.parent), os.getcwd()}
    bases |= _cgroup_dirs(daemon.pid)
    found = []
    for base in bases:
        for directory, subdirs, files in os.walk(base):
            ours = directory.startswith(own) or f"/corral-{daemon.pid}" in directory
            if ours or directory.count("/") - base.count("/") > 6:
                subdirs[:] = []
                continue
            found += [os.path.join(directory, n) for n in subdirs + files if mark in n]
    return sorted(set(found))


def _cgroup_dirs(pid: int) -> set[str]:
    """The cgroup v2 directory holding the daemon's, where there is one."""
    with open("/proc/self/mounts") as mounts:
        mount = next((f[1] for f in map(str.split, mounts) if f[2:3] == ["cgroup2"]), None)
    with open(f"/proc/{pid}/cgroup") as handle:
        own = next((line[3:].strip() for line in handle if line.startswith("0::")), None)
    if mount is None or own is None:
        return set()
    return {os.path.dirname(os.path.join(mount, own.lstrip("/"))) or mount}


def copy_reporter(directory: Path) -> Path:
    """The reporter where another user may read it."""
    target = directory / "reporter.py"
    shutil.copy(REPORTER, target)
    target.chmod(0o644)
    return target
