"""A real terminal for the tests of what people type at: a program on a pseudo-terminal (its
controlling terminal), keys written to it, and the screen's text read back with a deadline."""

from __future__ import annotations

import fcntl
import os
import re
import select
import subprocess
import termios
import time
from collections.abc import Sequence

#: Escape sequences (colour, cursor moves, bracketed paste), which a test never compares.
ESCAPES = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|\][^\x07]*\x07|[()][0-9A-B]|[=>])")


def _take_terminal() -> None:
    """In the child: the pty on fd 0 becomes its controlling terminal (as a login would)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """One program on a pty, 100 columns wide."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: str | None = None) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x18\x00\x64\x00\x00\x00\x00\x00")  # 24x100
        self.process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
            start_new_session=True, preexec_fn=_take_terminal,
        )  # fmt: skip
        os.close(slave)
        self.seen = ""

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def expect(self, text: str | re.Pattern[str], timeout: float = 15.0) -> str:
        """Read until ``text`` has appeared since the last expect; what was read up to it."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(text if isinstance(text, re.Pattern) else re.escape(text), self.seen)
            if found:
                shown, self.seen = self.seen[: found.end()], self.seen[found.end() :]
                return shown
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {text!r}; "
                                     f"the screen said {self.seen[-2000:]!r}")  # fmt: skip
            if not self._read(left):
                raise AssertionError(f"the program ended before {text!r}: {self.seen[-2000:]!r}")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], min(timeout, 0.5))
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the program closed its end
            return False
        if not chunk:
            return False
        self.seen += ESCAPES.sub("", chunk.decode(errors="replace")).replace("\r", "")
        return True

    def wait(self, timeout: float = 15.0) -> int:
        """The program's exit status, reading (and keeping) what it still prints."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            self._read(0.1)
        return self.process.wait(timeout=max(0.0, deadline - time.monotonic()) + 0.1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        os.close(self.master)
