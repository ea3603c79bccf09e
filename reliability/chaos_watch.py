"""What the chaos soak watches while it runs: the status rows (who is down, for how long),
zombies the daemon has not reaped, strays of old incarnations, and the daemon's fds and PSS.

Each observer reads the real thing (the socket, /proc) on its own schedule and keeps only
what the report needs; none of them changes anything.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from reliability.harness import (
    Client,
    NoReply,
    Proc,
    corral_marks,
    descendants,
    fd_count,
    process_table,
    pss_kb,
)

Key = tuple[str, str]


class Rows:
    """The latest status rows, fetched every ``interval``; tracks, for every instance whose
    goal is start, how long it stays away from ``running`` (its longest outage), and every
    instance ever seen ``failed``."""

    def __init__(self, socket: str, interval: float = 0.05) -> None:
        self._socket = socket
        self._interval = interval
        self.rows: list[dict[str, Any]] = []
        self.down_since: dict[Key, float] = {}
        self.longest_outage: tuple[float, Key | None] = (0.0, None)
        self.failed_seen: dict[Key, str] = {}
        self.errors: list[str] = []

    def run(self, stop: threading.Event) -> None:
        with Client(self._socket) as client:
            while not stop.wait(self._interval):
                try:
                    reply = client.request("status")
                except NoReply as exc:
                    self.errors.append(f"status: no reply ({exc})")
                    return
                if reply.get("ok"):
                    self._seen(reply["result"], time.monotonic())

    def _seen(self, rows: list[dict[str, Any]], now: float) -> None:
        self.rows = rows
        for row in rows:
            key = (row["name"], row["instance"])
            if row["state"] == "failed":
                self.failed_seen.setdefault(key, row.get("error") or "")
            if row["goal"] == "start" and row["state"] != "running":
                self.down_since.setdefault(key, now)
            elif key in self.down_since:
                self._ended(key, now - self.down_since.pop(key))

    def _ended(self, key: Key, outage: float) -> None:
        if outage > self.longest_outage[0]:
            self.longest_outage = (outage, key)

    def main_pids(self) -> list[int]:
        return [r["pid"] for r in self.rows if r["state"] == "running" and r["pid"]]

    def running_main(self) -> dict[Key, int]:
        return {
            (r["name"], r["instance"]): r["pid"]
            for r in self.rows
            if r["state"] == "running" and r["pid"]
        }

    def at_rest(self) -> set[Key]:
        return {
            (r["name"], r["instance"]) for r in self.rows if r["state"] in ("waiting", "failed")
        }


class Zombies:
    """Children of the daemon left unreaped: each zombie is remembered by (pid, start time)
    from the first scan that saw it; one still there ``bound`` seconds later is too old."""

    def __init__(self, daemon: int, bound: float = 2.0) -> None:
        self._daemon = daemon
        self._bound = bound
        self._first_seen: dict[tuple[int, int], float] = {}
        self.too_old: set[tuple[int, int]] = set()
        self.seen = 0

    def scan(self, table: dict[int, Proc], now: float) -> None:
        current = {
            (p.pid, p.start) for p in table.values() if p.state == "Z" and p.ppid == self._daemon
        }
        for key in current - self._first_seen.keys():
            self._first_seen[key] = now
            self.seen += 1
        for key in current:
            if now - self._first_seen[key] >= self._bound:
                self.too_old.add(key)
        for key in self._first_seen.keys() - current:
            del self._first_seen[key]


class Strays:
    """Processes of an instance that outlived their incarnation: in no process group of the
    instance's current main process and started before it, or alive while the instance is at
    rest. One sighting can be a process already SIGKILLed and not yet gone; a stray is one
    seen so in two scans ``grace`` seconds apart."""

    def __init__(self, daemon: int, socket: str, grace: float = 1.0) -> None:
        self._daemon = daemon
        self._socket = socket
        self._grace = grace
        self._suspects: dict[tuple[int, int], float] = {}
        self.found: dict[tuple[int, int], str] = {}
        self.service_pids: dict[int, Key] = {}

    def scan(self, table: dict[int, Proc], rows: Rows, now: float) -> None:
        mains = rows.running_main()
        resting = rows.at_rest()
        suspects: dict[tuple[int, int], float] = {}
        service_pids: dict[int, Key] = {}  # made whole, then swapped in: the killer reads it
        for pid in descendants(self._daemon, table):
            marks = corral_marks(pid)
            if marks.get("CORRAL_SOCKET") != self._socket or "CORRAL_JOB" not in marks:
                continue
            key = (marks["CORRAL_JOB"], marks.get("CORRAL_INSTANCE", ""))
            service_pids[pid] = key
            why = self._why_stray(table[pid], key, mains, resting, table)
            if why is None:
                continue
            ident = (pid, table[pid].start)
            since = self._suspects.get(ident, now)
            suspects[ident] = since
            if now - since >= self._grace:
                self.found.setdefault(ident, f"pid {pid} of {key[0]}:{key[1]} ({why})")
        self._suspects = suspects
        self.service_pids = service_pids

    @staticmethod
    def _why_stray(
        item: Proc, key: Key, mains: dict[Key, int], resting: set[Key], table: dict[int, Proc]
    ) -> str | None:
        if key in resting:
            return "its instance is at rest"
        main = table.get(mains.get(key, -1))
        if main is None or item.pid == main.pid or item.pgid == main.pgid:
            return None
        if item.start < main.start:
            return f"older than main {main.pid}, in another process group"
        return None


class Resources:
    """The daemon's fd count and PSS, sampled over the run."""

    def __init__(self, daemon: int) -> None:
        self._daemon = daemon
        self.fds: list[int] = []
        self.pss: list[int] = []

    def sample(self) -> tuple[int, int]:
        fds, pss = fd_count(self._daemon), pss_kb(self._daemon)
        self.fds.append(fds)
        self.pss.append(pss)
        return fds, pss


class Watch:
    """The observers on one thread: zombies every half second, strays and resources every
    ``stray_every`` seconds."""

    def __init__(self, daemon: int, socket: str, rows: Rows, stray_every: float = 2.0) -> None:
        self.rows = rows
        self.zombies = Zombies(daemon)
        self.strays = Strays(daemon, socket)
        self.resources = Resources(daemon)
        self._stray_every = stray_every

    def run(self, stop: threading.Event) -> None:
        next_deep = 0.0
        while not stop.wait(0.5):
            now = time.monotonic()
            table = process_table()
            self.zombies.scan(table, now)
            if now >= next_deep:
                self.strays.scan(table, self.rows, now)
                self.resources.sample()
                next_deep = now + self._stray_every

    def settle_scan(self, scans: int = 3, gap: float = 1.1) -> None:
        """Scans after the chaos, with fresh rows each time: strays must be gone for good."""
        for _ in range(scans):
            now = time.monotonic()
            table = process_table()
            self.zombies.scan(table, now)
            self.strays.scan(table, self.rows, now)
            time.sleep(gap)
