"""The files bridge: inotify as the ``path-exists(FILE=...)`` state and debounced
``path-changed FILE=...`` events.

It watches what the conditions name, and only that: the daemon answers its ``watched``
request with the ``FILE=`` values of every ``path-exists``/``path-changed`` (absolute paths,
a glob allowed in the last part: ``/srv/spool/*.csv``), and sends the list again after each
reload that changes it. A path is watched through its directory, so that a file replaced by
a rename (what editors do) is seen like one written in place; a directory that does not exist
yet is waited for from its nearest existing parent. A named path that is a directory also
counts as changed when an entry in it changes.

``path-exists`` reports at once; ``path-changed`` waits until the path has been quiet for
``QUIET`` seconds (a burst of writes is one event), and no longer than ``LONGEST`` after its
first change (a file written without pause still reports).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
import posixpath
import sys
from collections.abc import Iterable
from typing import NamedTuple

from corral.bridges import inotify
from corral.bridges.link import Link, notify_ready

STATE = "path-exists"
CHANGED = "path-changed"
QUIET = 0.2
LONGEST = 2.0

_GLOB_CHARS = frozenset("*?[")
#: Events that may change which directories to watch.
_STRUCTURAL = inotify.IN_ISDIR | inotify.IN_DELETE_SELF | inotify.IN_MOVE_SELF


class Pattern(NamedTuple):
    """One ``FILE=`` value: a path, or a glob in the last part of one."""

    text: str
    directory: str
    name: str
    glob: bool

    @classmethod
    def of(cls, text: str) -> Pattern:
        name = posixpath.basename(text)
        return cls(text, posixpath.dirname(text), name, bool(_GLOB_CHARS & set(name)))

    def names(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.name) if self.glob else name == self.name


def nearest_directory(path: str) -> str:
    """``path`` if it is a directory, else its nearest ancestor that is."""
    while not os.path.isdir(path) and path != "/":
        path = posixpath.dirname(path)
    return path


class Files:
    """What the watched paths are, which exist, and what changed and is yet to be told."""

    def __init__(self, link: Link, notify: inotify.Inotify) -> None:
        self._link = link
        self._inotify = notify
        self._loop = asyncio.get_running_loop()
        self.patterns: list[Pattern] = []
        self.watches: dict[str, int] = {}  # directory -> watch descriptor
        self._directories: dict[int, str] = {}
        self._waiting_in: set[str] = set()  # parents watched for a directory to appear
        self.existing: set[str] = set()
        self.pending: dict[str, tuple[float, float]] = {}  # path -> first, last change
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, values: Iterable[str], first: bool) -> None:
        """The paths to watch (the daemon's ``watched``); the first time, report them all."""
        self.patterns = [Pattern.of(value) for value in dict.fromkeys(values)]
        found = self._scan()
        if first:
            self.existing = found
            self._link.replace_states((STATE, {"FILE": path}) for path in sorted(found))
        else:
            self._report(found, changed=False)

    # -- directories and what exists -------------------------------------------------------

    def _scan(self) -> set[str]:
        """Watch the directories the patterns need now; what exists."""
        needed: set[str] = set()
        own: set[str] = set()
        for pattern in self.patterns:
            directory = nearest_directory(pattern.directory)
            needed.add(directory)
            if directory == pattern.directory:
                own.add(directory)
            if not pattern.glob and os.path.isdir(pattern.text):
                needed.add(pattern.text)
                own.add(pattern.text)
        for directory in needed - set(self.watches):
            try:
                wd = self._inotify.add(directory)
            except OSError as exc:
                print(f"files: cannot watch {directory}: {exc.strerror}", file=sys.stderr)
                continue
            self.watches[directory] = wd
            self._directories[wd] = directory
        for directory in set(self.watches) - needed:
            wd = self.watches.pop(directory)
            self._directories.pop(wd, None)
            self._inotify.remove(wd)
        self._waiting_in = needed - own
        return self._existing()

    def _existing(self) -> set[str]:
        found: set[str] = set()
        for pattern in self.patterns:
            if not pattern.glob:
                if os.path.exists(pattern.text):
                    found.add(pattern.text)
                continue
            try:
                names = os.listdir(pattern.directory)
            except OSError:
                continue
            found.update(
                posixpath.join(pattern.directory, name) for name in names if pattern.names(name)
            )
        return found

    def _report(self, found: set[str], changed: bool) -> None:
        gone, new = self.existing - found, found - self.existing
        self.existing = found
        self._link.states(
            [(STATE, {"FILE": path}, False) for path in sorted(gone)]
            + [(STATE, {"FILE": path}, True) for path in sorted(new)]
        )
        if changed:
            for path in gone | new:
                self.changed(path)

    # -- inotify ---------------------------------------------------------------------------

    def readable(self) -> None:
        rescan = False
        for event in self._inotify.read():
            if event.mask & inotify.IN_Q_OVERFLOW:
                rescan = True
                continue
            directory = self._directories.get(event.wd)
            if directory is None:
                continue
            if event.mask & inotify.IN_IGNORED:  # the directory went: so did its watch
                del self._directories[event.wd]
                self.watches.pop(directory, None)
                rescan = True
                continue
            if event.mask & _STRUCTURAL or directory in self._waiting_in:
                rescan = True
            if event.name:
                self._entry(directory, event.name)
        self._report(self._scan() if rescan else self._existing(), changed=True)

    def _entry(self, directory: str, name: str) -> None:
        """Something happened to ``name`` in ``directory``: which watched paths changed."""
        for pattern in self.patterns:
            if pattern.directory == directory and pattern.names(name):
                self.changed(posixpath.join(directory, name))
            elif pattern.text == directory and not pattern.glob:
                self.changed(directory)

    # -- debouncing ------------------------------------------------------------------------

    def changed(self, path: str) -> None:
        now = self._loop.time()
        first, _ = self.pending.get(path, (now, now))
        self.pending[path] = (first, now)
        self._arm()

    def _due(self, path: str) -> float:
        first, last = self.pending[path]
        return min(last + QUIET, first + LONGEST)

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.pending:
            self._timer = self._loop.call_at(min(map(self._due, self.pending)), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        for path in [path for path in self.pending if self._due(path) <= now + 1e-3]:
            del self.pending[path]
            self._link.emit(CHANGED, {"FILE": path})
        self._arm()


async def serve(link: Link) -> None:
    loop = asyncio.get_running_loop()
    notify = inotify.Inotify()
    files = Files(link, notify)
    loop.add_reader(notify.fileno(), files.readable)
    try:
        first = True
        async for message in link.follow("watched", source="files", follow=True):
            values = message if first else message.get("watched")
            if not isinstance(values, dict):
                continue
            files.watch(values.get("FILE", []), first)
            if first:
                notify_ready()
                first = False
    finally:
        loop.remove_reader(notify.fileno())
        notify.close()
