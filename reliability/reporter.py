"""What a process corral started was given, printed as one line ``REPORT {json}``: its fds
(and what each is), its ``CORRAL_*`` variables, its uid and gid, and what it got when it
tried corral's control socket. Then, with ``stay``, it sleeps as a service does.

    python reporter.py [--ready-fd N] [stay]

Standard library only, and nothing of corral's: it may run as another user, under a
python that user can run.
"""

import json
import os
import socket
import sys


def fds() -> dict[int, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the listing's own fd, closed by now
    return found


def reach(path: str) -> str:
    """What a ``ping`` on the control socket got: the reply line, or the error."""
    if not path:
        return "no CORRAL_SOCKET"
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(path)
            sock.sendall(b'{"cmd": "ping"}\n')
            return sock.makefile("rb").readline().decode("utf-8", "replace").strip() or "EOF"
    except OSError as exc:
        return f"{exc.__class__.__name__}: {exc.strerror or exc}"


def notify_ready() -> None:
    address = os.environ.get("NOTIFY_SOCKET", "")
    if address:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"READY=1", "\0" + address[1:] if address[0] == "@" else address)


def main(args: list[str]) -> None:
    report = {
        "fds": fds(),
        "corral": {k: v for k, v in os.environ.items() if k.startswith("CORRAL_")},
        "uid": os.getuid(),
        "gid": os.getgid(),
        "reach": reach(os.environ.get("CORRAL_SOCKET", "")),
    }
    print("REPORT " + json.dumps(report), flush=True)
    notify_ready()
    if "--ready-fd" in args:
        os.write(int(args[args.index("--ready-fd") + 1]), b"\n")
    if "stay" in args:
        os.execvp("sleep", ["sleep", "3600"])


if __name__ == "__main__":
    main(sys.argv[1:])
