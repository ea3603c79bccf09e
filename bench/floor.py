"""The floor: N plain ``posix_spawn`` calls, then respawn each child the moment it exits.

What any supervisor must at least do, with nothing else: no config, no state, no logs.
Usage: floor.py N PROGRAM ARG. SIGTERM kills every child and exits.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    count, program, arg = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    argv = [program, arg]
    children = {os.posix_spawn(program, argv, os.environ) for _ in range(count)}

    def stop(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(0, signal.SIGTERM)  # the children share the floor's process group
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        pid, _status = os.wait()
        children.discard(pid)
        children.add(os.posix_spawn(program, argv, os.environ))


if __name__ == "__main__":
    main()
