"""A bridge's link to the daemon, recorded instead of sent: what the pure parts of a bridge
said, in order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class RecordingLink:
    """Has the reporting methods of ``corral.bridges.link.Link``; keeps what it was told."""

    source = "test"

    def __init__(self) -> None:
        self.said: list[tuple[str, Any]] = []

    def replace_states(self, states: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        listed = [(name, dict(env)) for name, env in states]
        self.said.append(("replace", sorted(listed, key=lambda state: sorted(state[1].items()))))

    def hold(self, name: str, env: Mapping[str, str]) -> None:
        self.said.append(("hold", (name, dict(env))))

    def release(self, name: str, env: Mapping[str, str]) -> None:
        self.said.append(("release", (name, dict(env))))

    def states(self, changes: Iterable[tuple[str, Mapping[str, str], bool]]) -> None:
        for name, env, holds in changes:
            (self.hold if holds else self.release)(name, env)

    def emit(self, event: str, env: Mapping[str, str]) -> None:
        self.said.append(("emit", (event, dict(env))))

    def take(self) -> list[tuple[str, Any]]:
        said, self.said = self.said, []
        return said
