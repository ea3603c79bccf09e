"""Parse instance addresses: ``NAME``, ``NAME:INSTANCE``, ``NAME KEY=VALUE...``."""

from corral.errors import UsageError

# Imported by the quick CLI path: no ``__future__`` or ``typing`` at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def parse_targets(words: list[str]) -> "list[dict[str, Any]]":
    """Words as protocol targets; ``KEY=VALUE`` belongs to the name before it."""
    targets: list[dict[str, Any]] = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and key and ":" not in key:
            if not targets:
                raise UsageError(f"{word}: KEY=VALUE must follow a service name")
            targets[-1].setdefault("env", {})[key] = value
            continue
        name, sep, instance = word.partition(":")
        if not name:
            raise UsageError(f"{word!r}: expected NAME or NAME:INSTANCE")
        target: dict[str, Any] = {"name": name}
        if sep:
            target["instance"] = instance
        targets.append(target)
    if not targets:
        raise UsageError("expected at least one service name")
    return targets
