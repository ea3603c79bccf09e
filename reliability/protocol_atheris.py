"""The protocol fuzz's long run: atheris (libFuzzer for Python) grows lines from the real
requests, guided by the coverage of corral's request decoding, and every line it makes
goes to a real daemon, which must answer it.

    python -m reliability.protocol_atheris [-max_total_time=3600] [other libFuzzer flags]

Needs ``pip install atheris``. A line that makes the decoder raise anything but
ProtocolError, goes unanswered, gets an internal error, or leaves the daemon dead is a
crash: libFuzzer saves it (``crash-*`` in the current directory) and stops. The seeds are
the real requests of ``protocol_cases.REAL``; ``down`` is left out.
"""

from __future__ import annotations

import inspect
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from reliability import protocol_cases as cases
from reliability.harness import Daemon, NoReply


class Target:
    """One daemon and one connection to it; ``one`` is what libFuzzer calls per input."""

    def __init__(self, daemon: Daemon, decode: Any, protocol_error: type[Exception]) -> None:
        self._daemon = daemon
        self._decode = decode
        self._protocol_error = protocol_error
        self._client = daemon.client(timeout=20)

    def one(self, data: bytes) -> None:
        line = data.split(b"\n", 1)[0]
        if not line.strip():
            return
        try:
            request = self._decode(line)
        except self._protocol_error:
            request = None
        if request is not None and request.cmd in cases.NEVER:
            return
        follows = request is not None and request.args.get("follow") is True
        reply = self._ask(line + b"\n", fresh=follows)
        good = cases.is_reply(reply) if request is not None else cases.is_error(reply)
        if not good:
            raise AssertionError(f"{line[:200]!r} -> {reply}")
        if not self._daemon.alive():
            raise AssertionError(f"the daemon died:\n{self._daemon.log()[-3000:]}")

    def _ask(self, line: bytes, fresh: bool) -> dict[str, Any]:
        try:
            if fresh:  # a stream: its later lines must not be read as the next replies
                with self._daemon.client(timeout=20) as client:
                    return client.send_line(line)
            return self._client.send_line(line)
        except NoReply as exc:
            raise AssertionError(f"{line[:200]!r}: no reply ({exc})") from None


def main() -> int:
    import atheris  # type: ignore[import-untyped]  # optional: the long run only

    from corral.control import protocol

    for value in list(vars(protocol).values()):  # imported already (by protocol_cases)
        if inspect.isfunction(value) and value.__module__ == protocol.__name__:
            atheris.instrument_func(value)
    # One directory, emptied at each start: libFuzzer's exit() leaves it behind.
    root = Path(tempfile.gettempdir()) / "corral-atheris"
    shutil.rmtree(root, ignore_errors=True)
    seeds = root / "seeds"
    seeds.mkdir(parents=True)
    for index, request in enumerate(cases.REAL):
        (seeds / f"real-{index}").write_bytes(cases.encode(request))
    # libFuzzer ends this process with exit(): no ``with`` block's end would stop the daemon.
    with Daemon(root / "daemon", cases.CONFIG, die_with_parent=True) as daemon:
        daemon.start()
        target = Target(daemon, protocol.decode_request, protocol.ProtocolError)
        atheris.Setup([sys.argv[0], *sys.argv[1:], str(seeds)], target.one)
        atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
