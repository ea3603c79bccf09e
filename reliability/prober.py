"""Times one request to the daemon over and over, in a process of its own, until its stdin
closes; then prints the latencies (seconds) as one JSON object.

A process of its own so that what it measures is the daemon and the socket, not the wait
for the GIL of the harness threads that kill services and scan /proc meanwhile.

    python reliability/prober.py SOCKET INTERVAL [CMD]
"""

from __future__ import annotations

import json
import select
import socket
import sys
import time


def main() -> int:
    path, interval = sys.argv[1], float(sys.argv[2])
    line = json.dumps({"cmd": sys.argv[3] if len(sys.argv) > 3 else "status"}).encode() + b"\n"
    latencies: list[float] = []
    errors: list[str] = []
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(30)
    sock.connect(path)
    reader = sock.makefile("rb")
    while not select.select([sys.stdin], [], [], interval)[0]:
        began = time.perf_counter()
        try:
            sock.sendall(line)
            reply = reader.readline()
        except OSError as exc:
            errors.append(f"{exc.__class__.__name__}: {exc}")
            break
        if not reply.endswith(b"\n"):
            errors.append("the daemon closed the connection")
            break
        latencies.append(time.perf_counter() - began)
        if not json.loads(reply).get("ok"):
            errors.append(reply.decode(errors="replace")[:200])
    json.dump({"latencies": latencies, "errors": errors}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
