"""What a bridge is: a child process of corral's that turns something of the world (devices,
the network, files, timers, D-Bus) into corral's events and states, over the control socket.

A bridge runs apart from the daemon so that a crash of its own (a library that throws, a bus
that vanishes) never takes the daemon down; corral supervises it like any service and starts
it again. It finds the daemon through ``CORRAL_SOCKET``, which corral gives every process it
runs, and names itself (``source``): the states it reports are kept per bridge. Its first word
after connecting is everything it holds (``replace_states``), so a bridge that was restarted
leaves no stale state behind; after that it reports changes (``hold``/``release``) and events
(``emit``). Each call is one request and waits for its reply, so the bridge's order is the
order the daemon sees.

This is the synchronous form, for a bridge of one's own run as a user service. corral's own
bridges (``devices.py``, ``network.py``, ``files.py``) each run an asyncio loop instead
(``runner.py``, ``python -m corral.bridges NAME``) and talk through ``link.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from corral.control.client import Client
from corral.errors import DaemonUnreachable

#: One state of the world: its name and the variables it holds for.
State = tuple[str, Mapping[str, str]]


class Bridge:
    """One bridge's connection to the daemon."""

    def __init__(self, source: str, socket: str | None = None) -> None:
        path = socket or os.environ.get("CORRAL_SOCKET")
        if not path:
            raise DaemonUnreachable(
                "a bridge needs CORRAL_SOCKET (corral sets it for its children)"
            )
        self.source = source
        self._client = Client(path)

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def replace_states(self, states: Iterable[State]) -> None:
        """Everything this bridge holds now; what it held before and is not here, no longer."""
        self._states([{"name": name, "env": dict(env)} for name, env in states], replace=True)

    def hold(self, name: str, env: Mapping[str, str]) -> None:
        self._states([{"name": name, "env": dict(env), "holds": True}])

    def release(self, name: str, env: Mapping[str, str]) -> None:
        self._states([{"name": name, "env": dict(env), "holds": False}])

    def emit(self, event: str, env: Mapping[str, str]) -> None:
        """An event; the bridge does not wait for what it starts or stops."""
        self._client.request("emit", event=event, env=dict(env), wait=False)

    def _states(self, states: list[dict[str, Any]], replace: bool = False) -> None:
        self._client.request("state", source=self.source, states=states, replace=replace)
